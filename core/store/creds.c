/*
 * creds.c -- the credential chain, region and endpoint resolution for S3
 * (the order is the contract in creds.h).
 *
 * Shared-file parsing. ~/.aws/credentials and ~/.aws/config are INI files
 * read whole (capped at 1 MiB) and scanned line by line: "[name]" or
 * "[profile name]" opens a section, "key = value" sets a key, and indented
 * lines after "s3 =" are keys of that sub-section (looked up as
 * "s3.<key>"). Comments start with '#' or ';'. Nothing else is supported
 * (no credential_process, SSO or role assumption).
 *
 * IMDSv2 uses its own short-lived curl handle with a 1 s connect and 2 s
 * total timeout, so a machine off EC2 pays at most that once per store.
 */
#include "creds.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "http.h"
#include "sigv4.h"

#define CREDS_FILE_MAX (1u << 20)
#define IMDS_BODY_MAX (64u * 1024)

static const char *env(const char *name)
{
	const char *v = getenv(name);
	return v && *v ? v : NULL;
}

void creds_wipe(struct creds *c)
{
	explicit_bzero(c, sizeof(*c));
}

static int set_keys(struct creds *out, const char *id, const char *secret,
		    const char *token, const char *source)
{
	if (strlen(id) >= sizeof(out->access_key_id) ||
	    strlen(secret) >= sizeof(out->secret_access_key) ||
	    (token && strlen(token) >= sizeof(out->session_token)))
		return -1;
	memset(out, 0, sizeof(*out));
	strcpy(out->access_key_id, id);
	strcpy(out->secret_access_key, secret);
	if (token)
		strcpy(out->session_token, token);
	snprintf(out->source, sizeof(out->source), "%s", source);
	return 0;
}

/* ---- shared files ------------------------------------------------------- */

static int home_path(const char *rel, char *out, size_t outlen)
{
	const char *home = env("HOME");
	struct passwd pw, *res = NULL;
	char buf[1024];
	int n;

	if (!home) {
		if (getpwuid_r(getuid(), &pw, buf, sizeof(buf), &res) != 0 ||
		    !res)
			return -1;
		home = pw.pw_dir;
	}
	n = snprintf(out, outlen, "%s/%s", home, rel);
	return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

static char *read_small(const char *path)
{
	FILE *f = fopen(path, "r");
	struct stat sb;
	char *buf = NULL;
	size_t n;

	if (!f)
		return NULL;
	if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode) ||
	    sb.st_size > (off_t)CREDS_FILE_MAX)
		goto out;
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf)
		goto out;
	n = fread(buf, 1, (size_t)sb.st_size, f);
	buf[n] = '\0';
out:
	fclose(f);
	return buf;
}

static char *trim(char *s)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r' ||
			 e[-1] == '\n'))
		*--e = '\0';
	return s;
}

/* Is the section header text (inside []) the profile we want? */
static int section_matches(const char *sec, const char *profile, int config)
{
	if (config && strncmp(sec, "profile", 7) == 0 &&
	    (sec[7] == ' ' || sec[7] == '\t')) {
		const char *p = sec + 8;
		while (*p == ' ' || *p == '\t')
			p++;
		return strcmp(p, profile) == 0;
	}
	return strcmp(sec, profile) == 0;
}

/* Looks key up in one INI file. 0 if found. */
static int ini_get(const char *path, int config, const char *profile,
		   const char *key, char *out, size_t outlen)
{
	char *buf = read_small(path), *line, *save = NULL;
	char sub[64] = "";
	int in = 0, rc = -1;

	if (!buf)
		return -1;
	for (line = strtok_r(buf, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		int indented = line[0] == ' ' || line[0] == '\t';
		char *l = trim(line), *eq, *k, *v, full[128];

		if (!*l || *l == '#' || *l == ';')
			continue;
		if (*l == '[') {
			char *e = strchr(l, ']');
			if (!e)
				continue;
			*e = '\0';
			in = section_matches(trim(l + 1), profile, config);
			sub[0] = '\0';
			continue;
		}
		if (!in)
			continue;
		eq = strchr(l, '=');
		if (!eq)
			continue;
		*eq = '\0';
		k = trim(l);
		v = trim(eq + 1);
		if (!indented) {
			if (!*v) { /* "s3 =" opens a sub-section */
				snprintf(sub, sizeof(sub), "%s", k);
				continue;
			}
			sub[0] = '\0';
			snprintf(full, sizeof(full), "%s", k);
		} else if (sub[0]) {
			snprintf(full, sizeof(full), "%s.%s", sub, k);
		} else {
			continue;
		}
		if (strcasecmp(full, key) == 0) {
			if (strlen(v) < outlen) {
				strcpy(out, v);
				rc = 0;
			}
			/* keep scanning: a later duplicate wins, as in the CLI */
		}
	}
	explicit_bzero(buf, strlen(buf));
	free(buf);
	return rc;
}

static int creds_file(char *out, size_t outlen)
{
	const char *p = env("AWS_SHARED_CREDENTIALS_FILE");

	if (p) {
		snprintf(out, outlen, "%s", p);
		return 0;
	}
	return home_path(".aws/credentials", out, outlen);
}

static int config_file(char *out, size_t outlen)
{
	const char *p = env("AWS_CONFIG_FILE");

	if (p) {
		snprintf(out, outlen, "%s", p);
		return 0;
	}
	return home_path(".aws/config", out, outlen);
}

int creds_profile_get(const char *profile, const char *key,
		      int prefer_credentials, char *out, size_t outlen)
{
	char cpath[4096], fpath[4096];
	int have_c = creds_file(cpath, sizeof(cpath)) == 0;
	int have_f = config_file(fpath, sizeof(fpath)) == 0;

	if (prefer_credentials) {
		if (have_c && ini_get(cpath, 0, profile, key, out, outlen) == 0)
			return 0;
		if (have_f && ini_get(fpath, 1, profile, key, out, outlen) == 0)
			return 0;
	} else {
		if (have_f && ini_get(fpath, 1, profile, key, out, outlen) == 0)
			return 0;
		if (have_c && ini_get(cpath, 0, profile, key, out, outlen) == 0)
			return 0;
	}
	return -1;
}

static const char *profile_name(const struct store_conf *c)
{
	if (c->profile && *c->profile)
		return c->profile;
	if (env("AWS_PROFILE"))
		return env("AWS_PROFILE");
	return "default";
}

static int from_profile(const char *profile, struct creds *out)
{
	char id[128], secret[256], src[64];
	char *token = malloc(sizeof(out->session_token));
	int rc = -1;

	if (!token)
		return -1;
	if (creds_profile_get(profile, "aws_access_key_id", 1, id,
			      sizeof(id)) != 0 ||
	    creds_profile_get(profile, "aws_secret_access_key", 1, secret,
			      sizeof(secret)) != 0)
		goto out;
	if (creds_profile_get(profile, "aws_session_token", 1, token,
			      sizeof(out->session_token)) != 0)
		token[0] = '\0';
	snprintf(src, sizeof(src), "profile %.50s", profile);
	rc = set_keys(out, id, secret, token[0] ? token : NULL, src);
out:
	explicit_bzero(secret, sizeof(secret));
	explicit_bzero(token, sizeof(out->session_token));
	free(token);
	return rc;
}

/* ---- IMDSv2 --------------------------------------------------------------- */

struct imds_buf {
	char data[IMDS_BODY_MAX + 1];
	size_t len;
	int over;
};

static size_t imds_write(char *p, size_t size, size_t nmemb, void *ud)
{
	struct imds_buf *b = ud;
	size_t n = size * nmemb;

	if (b->len + n > IMDS_BODY_MAX) {
		b->over = 1;
		return 0;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	b->data[b->len] = '\0';
	return n;
}

/* One IMDS request. hdr is an extra header line or NULL. */
static int imds_call(CURL *h, const char *method, const char *url,
		     const char *hdr, struct imds_buf *b)
{
	struct curl_slist *hl = NULL;
	long status = 0;
	CURLcode cc;

	curl_easy_reset(h);
	b->len = 0;
	b->over = 0;
	b->data[0] = '\0';
	if (hdr) {
		hl = curl_slist_append(NULL, hdr);
		if (!hl)
			return -1;
	}
	curl_easy_setopt(h, CURLOPT_URL, url);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 1000L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, imds_write);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
	if (hl)
		curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	if (strcmp(method, "PUT") == 0) {
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "PUT");
		curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
		curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
	}
	cc = curl_easy_perform(h);
	curl_slist_free_all(hl);
	if (cc != CURLE_OK || b->over)
		return -1;
	curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
	return status == 200 ? 0 : -(int)status - 1;
}

/* The Expiration of IMDS role credentials ("2024-05-01T12:00:00Z") as
 * epoch seconds, read as UTC with anything after the seconds ignored;
 * 0 (never expires) when unparseable. Lenient on purpose, unlike the
 * strict parse_iso8601() of manifest.h. */
static double creds_parse_expiration(const char *s)
{
	struct tm tm;
	const char *e;

	memset(&tm, 0, sizeof(tm));
	e = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!e)
		return 0;
	return (double)timegm(&tm);
}

int creds_imds(struct creds *out, char *err, size_t errlen)
{
	const char *base = env("AWS_EC2_METADATA_SERVICE_ENDPOINT");
	struct imds_buf *b = NULL;
	char *token = NULL, *role = NULL, url[1024], hdr[1200];
	json_t *js = NULL;
	CURL *h = NULL;
	size_t bl;
	int rc = SF_EAUTH;

	if (!base)
		base = "http://169.254.169.254";
	bl = strlen(base);
	while (bl > 0 && base[bl - 1] == '/')
		bl--;
	if (http_global_init() != 0)
		return sf_errf(err, errlen, SF_EAUTH, "curl init failed");
	b = malloc(sizeof(*b));
	h = curl_easy_init();
	if (!b || !h) {
		rc = sf_errf(err, errlen, SF_ENOMEM, "out of memory");
		goto out;
	}
	snprintf(url, sizeof(url), "%.*s/latest/api/token", (int)bl, base);
	if (imds_call(h, "PUT", url,
		      "X-aws-ec2-metadata-token-ttl-seconds: 21600", b) != 0 ||
	    b->len == 0 || strpbrk(b->data, "\r\n")) {
		rc = sf_errf(err, errlen, SF_EAUTH,
			     "instance metadata: no IMDSv2 token");
		goto out;
	}
	token = strdup(b->data);
	if (!token) {
		rc = sf_errf(err, errlen, SF_ENOMEM, "out of memory");
		goto out;
	}
	snprintf(hdr, sizeof(hdr), "X-aws-ec2-metadata-token: %.1100s", token);
	snprintf(url, sizeof(url),
		 "%.*s/latest/meta-data/iam/security-credentials/", (int)bl,
		 base);
	if (imds_call(h, "GET", url, hdr, b) != 0 || b->len == 0) {
		rc = sf_errf(err, errlen, SF_EAUTH,
			     "instance metadata: no IAM role");
		goto out;
	}
	b->data[strcspn(b->data, "\r\n")] = '\0';
	role = sigv4_uri_encode(b->data, strlen(b->data), 0);
	if (!role) {
		rc = sf_errf(err, errlen, SF_ENOMEM, "out of memory");
		goto out;
	}
	snprintf(url, sizeof(url),
		 "%.*s/latest/meta-data/iam/security-credentials/%.200s",
		 (int)bl, base, role);
	if (imds_call(h, "GET", url, hdr, b) != 0) {
		rc = sf_errf(err, errlen, SF_EAUTH,
			     "instance metadata: role credentials unavailable");
		goto out;
	}
	js = json_loadb(b->data, b->len, 0, NULL);
	{
		const char *id = json_string_value(json_object_get(js, "AccessKeyId"));
		const char *sec = json_string_value(json_object_get(js, "SecretAccessKey"));
		const char *tok = json_string_value(json_object_get(js, "Token"));
		const char *exp = json_string_value(json_object_get(js, "Expiration"));

		if (!id || !sec || !*id || !*sec ||
		    set_keys(out, id, sec, tok && *tok ? tok : NULL, "imds")) {
			rc = sf_errf(err, errlen, SF_EAUTH,
				     "instance metadata: malformed credentials");
			goto out;
		}
		out->expires = exp ? creds_parse_expiration(exp) : 0;
	}
	rc = 0;
out:
	if (js) {
		/* the JSON holds the secret: it is freed by jansson */
		json_decref(js);
	}
	if (b) {
		explicit_bzero(b, sizeof(*b));
		free(b);
	}
	if (token) {
		explicit_bzero(token, strlen(token));
		free(token);
	}
	explicit_bzero(hdr, sizeof(hdr));
	free(role);
	if (h)
		curl_easy_cleanup(h);
	return rc;
}

/* ---- the chain -------------------------------------------------------------- */

int creds_resolve(const struct store_conf *c, struct creds *out, char *err,
		  size_t errlen)
{
	const char *id, *sec;
	const char *prof = profile_name(c);
	const char *dis = env("AWS_EC2_METADATA_DISABLED");
	char ierr[256] = "";
	int rc;

	memset(out, 0, sizeof(*out));
	if (c->access_key_id || c->secret_access_key) {
		if (!c->access_key_id || !c->secret_access_key ||
		    !*c->access_key_id || !*c->secret_access_key)
			return sf_errf(err, errlen, SF_EAUTH,
				       "access key id and secret access key "
				       "must be given together");
		if (set_keys(out, c->access_key_id, c->secret_access_key,
			     c->session_token && *c->session_token ?
			     c->session_token : NULL, "options"))
			return sf_errf(err, errlen, SF_EAUTH,
				       "credentials from options too long");
		return 0;
	}
	if (c->profile && *c->profile && from_profile(c->profile, out) == 0)
		return 0;
	id = env("AWS_ACCESS_KEY_ID");
	sec = env("AWS_SECRET_ACCESS_KEY");
	if (id && sec)
		return set_keys(out, id, sec, env("AWS_SESSION_TOKEN"),
				"environment") ?
		       sf_errf(err, errlen, SF_EAUTH,
			       "credentials from environment too long") : 0;
	id = env("S3_ACCESS_KEY_ID");
	sec = env("S3_SECRET_ACCESS_KEY");
	if (id && sec)
		return set_keys(out, id, sec, env("S3_SESSION_TOKEN"),
				"environment") ?
		       sf_errf(err, errlen, SF_EAUTH,
			       "credentials from environment too long") : 0;
	if (from_profile(prof, out) == 0)
		return 0;
	if (dis && strcasecmp(dis, "true") == 0)
		return sf_errf(err, errlen, SF_EAUTH,
			       "no usable credentials (tried options, "
			       "environment, profile '%s'; instance metadata "
			       "disabled)", prof);
	rc = creds_imds(out, ierr, sizeof(ierr));
	if (rc == 0)
		return 0;
	if (rc == SF_ENOMEM)
		return sf_errf(err, errlen, rc, "out of memory");
	return sf_errf(err, errlen, SF_EAUTH,
		       "no usable credentials (tried options, environment, "
		       "profile '%s', %s)", prof, ierr);
}

void creds_region(const struct store_conf *c, char *out, size_t outlen)
{
	const char *v = c->region && *c->region ? c->region : NULL;

	if (!v)
		v = env("AWS_REGION");
	if (!v)
		v = env("S3_REGION");
	if (!v)
		v = env("AWS_DEFAULT_REGION");
	if (v) {
		snprintf(out, outlen, "%s", v);
		return;
	}
	if (creds_profile_get(profile_name(c), "region", 0, out, outlen) == 0 &&
	    *out)
		return;
	snprintf(out, outlen, "us-east-1");
}

void creds_endpoint(const struct store_conf *c, char *out, size_t outlen)
{
	const char *v = c->endpoint_url && *c->endpoint_url ? c->endpoint_url :
			NULL;
	const char *prof = profile_name(c);

	if (!v)
		v = env("AWS_ENDPOINT_URL_S3");
	if (!v)
		v = env("AWS_ENDPOINT_URL");
	if (!v)
		v = env("SLATEDB_S3_ENDPOINT_URL");
	if (v) {
		snprintf(out, outlen, "%s", v);
		return;
	}
	if (creds_profile_get(prof, "s3.endpoint_url", 0, out, outlen) == 0 &&
	    *out)
		return;
	if (creds_profile_get(prof, "endpoint_url", 0, out, outlen) == 0 &&
	    *out)
		return;
	out[0] = '\0';
}
