/*
 * s3.c -- the s3:// backend: S3 REST over the curl engine of http.c,
 * signed with sigv4.c using credentials from creds.c.
 *
 * Addressing. s3://bucket/key becomes either
 *   path style     <endpoint>/<bucket>/<key>
 *   virtual host   <scheme>://<bucket>.<host>/<key>
 * where <endpoint> is the overridden endpoint or https://s3.<region>.
 * amazonaws.com. SF_ADDR_AUTO picks path style when an endpoint is
 * overridden (MinIO, moto, ...) or the bucket name has a dot (TLS
 * wildcards), virtual hosting otherwise. Keys are percent-encoded once
 * (sigv4_uri_encode, '/' kept) and that same string is both sent and
 * signed; curl is told not to touch the path (CURLOPT_PATH_AS_IS).
 *
 * Signing. The prepare hook runs before every attempt: it takes the
 * current credentials (resolved lazily on first use, refreshed when an
 * expiring set is within five minutes of its end; the lock is not held
 * while fetching; a failure is remembered for 30 s so that requests do
 * not each wait on the chain again) and signs host,
 * x-amz-content-sha256 (UNSIGNED-PAYLOAD for reads, the body's SHA-256
 * for PUT), x-amz-date and, with a session token, x-amz-security-token.
 * Range and If-Match are sent unsigned.
 *
 * LIST is ListObjectsV2 with encoding-type=url, following continuation
 * tokens. The XML is read by a small scanner that only looks for the
 * <Contents><Key>, <CommonPrefixes><Prefix>, <IsTruncated> and
 * <NextContinuationToken> elements, decodes entities and percent escapes,
 * and treats anything malformed as an error. Pages are capped at 16 MiB
 * and continuation tokens at 8 KiB. A hostile or broken server cannot
 * keep a LIST going forever: a continuation token that comes back (after
 * any number of pages, found with Brent's cycle check: one remembered
 * token, replaced at pages 1, 2, 4, 8, ...) fails with SF_EHTTP, and more
 * than conf.list_max_pages pages (default 100000) with SF_ETOOBIG.
 */
#include "creds.h"
#include "http.h"
#include "sigv4.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S3_LIST_PAGE_MAX (16u * 1024 * 1024)
#define S3_LIST_TOKEN_MAX 8192u
#define S3_REFRESH_MARGIN_S 300.0
#define S3_CREDS_FAIL_TTL_S 30.0 /* a failed resolution is not retried */

struct s3_ctx {
	struct store *st;
	char region[64];
	char scheme[8];        /* "http" or "https" */
	char host[256];        /* endpoint authority (host[:port]) or "" */
	char base_path[256];   /* endpoint path without trailing '/' */
	int custom_endpoint;
	_Atomic int quirk;     /* the endpoint wants werkzeug-style canon */
	pthread_mutex_t mu;
	struct creds creds;    /* protected by mu */
	int have_creds;        /* protected by mu */
	double fail_until;     /* mono time; resolution failed before (mu) */
	char fail_msg[256];    /* why it failed (no secrets) (mu) */
};

static int parse_endpoint(struct s3_ctx *s3, const char *ep, char *err,
			  size_t errlen)
{
	const char *p = ep, *slash;
	size_t hl;

	if (strncasecmp(p, "http://", 7) == 0) {
		strcpy(s3->scheme, "http");
		p += 7;
	} else if (strncasecmp(p, "https://", 8) == 0) {
		strcpy(s3->scheme, "https");
		p += 8;
	} else if (strstr(p, "://")) {
		return sf_errf(err, errlen, SF_EURL,
			       "endpoint URL '%s' is not http(s)", ep);
	} else {
		strcpy(s3->scheme, "https");
	}
	slash = strchr(p, '/');
	hl = slash ? (size_t)(slash - p) : strlen(p);
	if (hl == 0 || hl >= sizeof(s3->host) || memchr(p, '@', hl) ||
	    memchr(p, '?', hl))
		return sf_errf(err, errlen, SF_EURL, "bad endpoint URL '%s'",
			       ep);
	memcpy(s3->host, p, hl);
	s3->host[hl] = '\0';
	if (slash) {
		size_t bl = strlen(slash);
		while (bl > 0 && slash[bl - 1] == '/')
			bl--;
		if (bl >= sizeof(s3->base_path) || memchr(slash, '?', bl))
			return sf_errf(err, errlen, SF_EURL,
				       "bad endpoint URL '%s'", ep);
		memcpy(s3->base_path, slash, bl);
		s3->base_path[bl] = '\0';
	}
	s3->custom_endpoint = 1;
	return 0;
}

int s3_ctx_new(struct store *st, struct s3_ctx **out, char *err,
	       size_t errlen)
{
	struct s3_ctx *s3;
	char ep[1024];
	int rc;

	*out = NULL;
	s3 = calloc(1, sizeof(*s3));
	if (!s3)
		return sf_errf(err, errlen, SF_ENOMEM, "out of memory");
	s3->st = st;
	pthread_mutex_init(&s3->mu, NULL);
	creds_region(&st->conf, s3->region, sizeof(s3->region));
	creds_endpoint(&st->conf, ep, sizeof(ep));
	if (*ep) {
		rc = parse_endpoint(s3, ep, err, errlen);
		if (rc) {
			s3_ctx_free(s3);
			return rc;
		}
	} else {
		strcpy(s3->scheme, "https");
	}
	*out = s3;
	return 0;
}

void s3_ctx_free(struct s3_ctx *s3)
{
	if (!s3)
		return;
	creds_wipe(&s3->creds);
	pthread_mutex_destroy(&s3->mu);
	free(s3);
}

/*
 * Copies the current credentials into *c, resolving/refreshing first
 * when needed. The lock is never held across the resolution. A failed
 * resolution (SF_EAUTH) is remembered for S3_CREDS_FAIL_TTL_S: until
 * then requests fail at once with the same message (or keep using a set
 * that is still valid) instead of walking the chain again, which may
 * wait seconds for an unreachable instance metadata service.
 */
static int get_creds(struct s3_ctx *s3, struct creds *c, char *err,
		     size_t errlen)
{
	struct creds fresh;
	char msg[256] = "";
	int rc;

	pthread_mutex_lock(&s3->mu);
	if (s3->have_creds &&
	    (s3->creds.expires == 0 ||
	     s3->creds.expires - sf_now_wall() > S3_REFRESH_MARGIN_S)) {
		*c = s3->creds;
		pthread_mutex_unlock(&s3->mu);
		return 0;
	}
	if (sf_now_mono() < s3->fail_until) {
		if (s3->have_creds && s3->creds.expires > sf_now_wall()) {
			*c = s3->creds;
			rc = 0;
		} else {
			rc = sf_errf(err, errlen, SF_EAUTH, "%s",
				     s3->fail_msg);
		}
		pthread_mutex_unlock(&s3->mu);
		return rc;
	}
	pthread_mutex_unlock(&s3->mu);
	rc = creds_resolve(&s3->st->conf, &fresh, msg, sizeof(msg));
	pthread_mutex_lock(&s3->mu);
	if (rc == 0) {
		s3->creds = fresh;
		s3->have_creds = 1;
		s3->fail_until = 0;
	} else {
		if (rc == SF_EAUTH) {
			s3->fail_until = sf_now_mono() + S3_CREDS_FAIL_TTL_S;
			snprintf(s3->fail_msg, sizeof(s3->fail_msg), "%s",
				 msg);
		}
		if (s3->have_creds && s3->creds.expires > sf_now_wall())
			rc = 0; /* refresh failed; the old set is still valid */
		else
			sf_errf(err, errlen, rc, "%s", msg);
	}
	if (rc == 0)
		*c = s3->creds;
	pthread_mutex_unlock(&s3->mu);
	creds_wipe(&fresh);
	return rc;
}

/* ---- one request ------------------------------------------------------ */

struct s3_target {
	char bucket[64];
	char *key;            /* decoded key (malloc'd, may be "") */
	char host[320];       /* Host header */
	char *canon_uri;      /* encoded path as sent and signed */
	char *url;            /* full URL (without query) */
	char what[1024];      /* s3://bucket/key for messages */
};

static void target_free(struct s3_target *t)
{
	free(t->key);
	free(t->canon_uri);
	free(t->url);
	memset(t, 0, sizeof(*t));
}

static int valid_bucket(const char *b, size_t n)
{
	size_t i;

	if (n < 3 || n > 63)
		return 0;
	for (i = 0; i < n; i++) {
		char c = b[i];
		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		      c == '-' || c == '.' || c == '_' ||
		      (c >= 'A' && c <= 'Z')))
			return 0;
	}
	return 1;
}

static int use_path_style(const struct s3_ctx *s3, const char *bucket)
{
	switch (s3->st->conf.addressing) {
	case SF_ADDR_PATH:
		return 1;
	case SF_ADDR_VIRTUAL:
		return 0;
	default:
		return s3->custom_endpoint || strchr(bucket, '.') != NULL ||
		       strchr(bucket, '_') != NULL;
	}
}

/* Resolves "s3://bucket/key" (or a bare bucket when key_url is NULL and
 * bucket is given) into a target. */
static int target_make(struct s3_ctx *s3, const char *url, const char *bucket,
		       struct s3_target *t, char *err, size_t errlen)
{
	const char *b, *k;
	size_t bl;
	char *ek = NULL;
	int path_style, n;

	memset(t, 0, sizeof(*t));
	if (url) {
		if (!store_url_has_scheme(url, "s3"))
			return sf_errf(err, errlen, SF_EURL, "not an s3 URL: %s",
				       url);
		b = url + 5;
		k = strchr(b, '/');
		bl = k ? (size_t)(k - b) : strlen(b);
		k = k ? k + 1 : "";
	} else {
		b = bucket;
		bl = strlen(b);
		k = "";
	}
	if (!valid_bucket(b, bl))
		return sf_errf(err, errlen, SF_EURL, "bad bucket name in '%s'",
			       url ? url : bucket);
	memcpy(t->bucket, b, bl);
	t->bucket[bl] = '\0';
	t->key = strdup(k);
	ek = sigv4_uri_encode(k, strlen(k), 1);
	if (!t->key || !ek)
		goto nomem;
	snprintf(t->what, sizeof(t->what), "s3://%s/%s", t->bucket, k);
	path_style = use_path_style(s3, t->bucket);
	if (s3->custom_endpoint) {
		if (path_style)
			snprintf(t->host, sizeof(t->host), "%s", s3->host);
		else
			snprintf(t->host, sizeof(t->host), "%s.%s", t->bucket,
				 s3->host);
	} else if (path_style) {
		snprintf(t->host, sizeof(t->host), "s3.%s.amazonaws.com",
			 s3->region);
	} else {
		snprintf(t->host, sizeof(t->host), "%s.s3.%s.amazonaws.com",
			 t->bucket, s3->region);
	}
	if (path_style)
		n = asprintf(&t->canon_uri, "%s/%s/%s", s3->base_path,
			     t->bucket, ek);
	else
		n = asprintf(&t->canon_uri, "%s/%s", s3->base_path, ek);
	if (n < 0) {
		t->canon_uri = NULL;
		goto nomem;
	}
	if (url == NULL && path_style) {
		/* bucket operations address "/bucket" (no trailing slash) */
		size_t cl = strlen(t->canon_uri);
		if (cl > 1 && t->canon_uri[cl - 1] == '/')
			t->canon_uri[cl - 1] = '\0';
	}
	if (asprintf(&t->url, "%s://%s%s", s3->scheme, t->host,
		     t->canon_uri) < 0) {
		t->url = NULL;
		goto nomem;
	}
	free(ek);
	return 0;
nomem:
	free(ek);
	target_free(t);
	return sf_errf(err, errlen, SF_ENOMEM, "out of memory");
}

struct s3_sign {
	struct s3_ctx *s3;
	const char *method;
	const char *host;
	const char *canon_uri;
	const char *canon_query;
	const char *payload_hash;
	const char *alt_uri;   /* quirk forms (see s3_exec), or NULL */
	const char *alt_query;
	int use_alt;
};

static int append_hdr(struct curl_slist **hdrs, const char *name,
		      const char *value)
{
	char *line = NULL;
	struct curl_slist *t;

	if (asprintf(&line, "%s: %s", name, value) < 0)
		return SF_ENOMEM;
	t = curl_slist_append(*hdrs, line);
	explicit_bzero(line, strlen(line));
	free(line);
	if (!t)
		return SF_ENOMEM;
	*hdrs = t;
	return 0;
}

static int s3_prepare(void *ctx, struct curl_slist **hdrs, char *err,
		      size_t errlen)
{
	struct s3_sign *sg = ctx;
	struct sigv4_header h[4];
	struct sigv4_req r;
	struct creds *c = NULL;
	char date[17], auth[1024];
	size_t n = 0;
	int rc;

	rc = append_hdr(hdrs, "Host", sg->host);
	if (rc)
		return sf_errf(err, errlen, rc, "out of memory");
	if (sg->s3->st->conf.no_sign_request)
		return 0;
	c = malloc(sizeof(*c));
	if (!c)
		return sf_errf(err, errlen, SF_ENOMEM, "out of memory");
	rc = get_creds(sg->s3, c, err, errlen);
	if (rc)
		goto out;
	sigv4_amz_date((int64_t)time(NULL), date);
	h[n++] = (struct sigv4_header){"host", sg->host};
	h[n++] = (struct sigv4_header){"x-amz-content-sha256",
				       sg->payload_hash};
	h[n++] = (struct sigv4_header){"x-amz-date", date};
	if (c->session_token[0])
		h[n++] = (struct sigv4_header){"x-amz-security-token",
					       c->session_token};
	memset(&r, 0, sizeof(r));
	r.method = sg->method;
	r.canon_uri = sg->use_alt && sg->alt_uri ? sg->alt_uri : sg->canon_uri;
	r.canon_query = sg->use_alt && sg->alt_query ? sg->alt_query :
			sg->canon_query ? sg->canon_query : "";
	r.headers = h;
	r.n_headers = n;
	r.payload_hash = sg->payload_hash;
	r.amz_date = date;
	r.region = sg->s3->region;
	r.service = "s3";
	r.access_key_id = c->access_key_id;
	r.secret_key = c->secret_access_key;
	if (sigv4_authorization(&r, auth, sizeof(auth), NULL) != 0) {
		rc = sf_errf(err, errlen, SF_EAUTH, "signing failed");
		goto out;
	}
	rc = append_hdr(hdrs, "x-amz-content-sha256", sg->payload_hash);
	if (!rc)
		rc = append_hdr(hdrs, "x-amz-date", date);
	if (!rc && c->session_token[0])
		rc = append_hdr(hdrs, "x-amz-security-token", c->session_token);
	if (!rc)
		rc = append_hdr(hdrs, "Authorization", auth);
	if (rc)
		rc = sf_errf(err, errlen, rc, "out of memory");
out:
	explicit_bzero(auth, sizeof(auth));
	creds_wipe(c);
	free(c);
	return rc;
}

/*
 * Test servers built on werkzeug (moto) check signatures against the URL
 * as werkzeug rebuilds it, which un-escapes some characters: %XX of
 * bytes >= 0x80 (UTF-8) everywhere, and ASCII punctuation (in the path
 * all but '#' and '?', in the query all but & = + # and %). A path ';' in the last
 * segment starts "params" and is cut. Real S3 follows the SigV4 spec.
 *
 * s3_exec() signs per spec first; when an overridden endpoint answers
 * 403 SignatureDoesNotMatch and the quirk form differs for this request,
 * it re-signs in the quirk form once and, if that passes, prefers it for
 * the rest of the store's life. The form is only ever chosen by what the
 * server accepts; a wrong secret still fails both ways.
 */
static const char QUIRK_PATH_SET[] = "!\"$%&'()*+,/:;<=>@[\\]^`{|}";
static const char QUIRK_QUERY_SET[] = "!\"$'()*,/:;<>?@[\\]^`{|}";

/* The value of one hex digit, or -1 (also for NUL). */
static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (char)(c | 32);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static char *quirk_canon(const char *s, int is_query)
{
	const char *set = is_query ? QUIRK_QUERY_SET : QUIRK_PATH_SET;
	char *out = malloc(strlen(s) * 2 + 1), *o = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		int hi, lo, b;

		if (*s != '%' || (hi = hexval(s[1])) < 0 ||
		    (lo = hexval(s[2])) < 0) {
			*o++ = *s;
			continue;
		}
		b = hi * 16 + lo;
		if (b >= 0x80) {
			*o++ = (char)b;
		} else if (b > 0 && strchr(set, b)) {
			*o++ = (char)b;
		} else {
			memcpy(o, s, 3);
			o += 3;
		}
		s += 2;
	}
	*o = '\0';
	if (!is_query) {
		char *last = strrchr(out, '/');
		char *semi = last ? strchr(last, ';') : NULL;
		if (semi)
			*semi = '\0';
	}
	return out;
}

static int sig_mismatch(const struct http_req *rq, const struct http_resp *rs)
{
	if (rs->status != 403)
		return 0;
	if (strcmp(rs->code, "SignatureDoesNotMatch") == 0)
		return 1;
	return rs->code[0] == '\0' && strcmp(rq->method, "HEAD") == 0;
}

/* http_exec() for a signed S3 request (see the quirk note above). */
static int s3_exec(struct store *st, struct s3_ctx *s3,
		   const struct http_req *rq, struct s3_sign *sg,
		   struct http_resp *rs, char *err, size_t errlen)
{
	char *qu = NULL, *qq = NULL;
	int differs = 0, pref, rc;

	if (s3->custom_endpoint && !st->conf.no_sign_request) {
		qu = quirk_canon(sg->canon_uri, 0);
		qq = sg->canon_query ? quirk_canon(sg->canon_query, 1) : NULL;
		if (qu && (!sg->canon_query || qq))
			differs = strcmp(qu, sg->canon_uri) != 0 ||
				  (qq && strcmp(qq, sg->canon_query) != 0);
	}
	sg->alt_uri = qu;
	sg->alt_query = qq;
	pref = atomic_load(&s3->quirk);
	sg->use_alt = differs && pref;
	rc = http_exec(st, rq, rs, err, errlen);
	if (rc == SF_EHTTP_403 && differs && sig_mismatch(rq, rs)) {
		sg->use_alt = !sg->use_alt;
		http_resp_free(rs);
		rc = http_exec(st, rq, rs, err, errlen);
		if (!(rc == SF_EHTTP_403 && sig_mismatch(rq, rs)))
			atomic_store(&s3->quirk, sg->use_alt);
	}
	sg->alt_uri = NULL;
	sg->alt_query = NULL;
	free(qu);
	free(qq);
	return rc;
}

/* Sets up the S3 state and the target of one request. */
static int s3_begin(struct store *st, const char *url, const char *bucket,
		    struct s3_ctx **s3p, struct s3_target *t, char *err,
		    size_t errlen)
{
	int rc = store_s3_ctx(st, s3p, err, errlen);

	if (rc)
		return rc;
	return target_make(*s3p, url, bucket, t, err, errlen);
}

/*
 * One signed request to the object (or bucket) of t, with an optional
 * query string (already encoded, sent and signed as is). The caller sets
 * up rq (method, counter, sink, body...); url, prepare and prepare_ctx
 * are filled here and cleared again, what defaults to t->what. rs is
 * filled as by http_exec(): the caller frees it with http_resp_free(),
 * whatever the outcome. t and rq are borrowed.
 */
static int s3_target_exec(struct store *st, struct s3_ctx *s3,
			  const struct s3_target *t, const char *query,
			  struct http_req *rq, const char *payload_hash,
			  struct http_resp *rs, char *err, size_t errlen)
{
	struct s3_sign sg;
	char *u = NULL;
	int rc;

	memset(rs, 0, sizeof(*rs));
	if (query && asprintf(&u, "%s?%s", t->url, query) < 0)
		return sf_errf(err, errlen, SF_ENOMEM, "out of memory");
	memset(&sg, 0, sizeof(sg));
	sg.s3 = s3;
	sg.method = rq->method;
	sg.host = t->host;
	sg.canon_uri = t->canon_uri;
	sg.canon_query = query;
	sg.payload_hash = payload_hash;
	rq->url = u ? u : t->url;
	if (!rq->what)
		rq->what = t->what;
	rq->prepare = s3_prepare;
	rq->prepare_ctx = &sg;
	rc = s3_exec(st, s3, rq, &sg, rs, err, errlen);
	rq->url = NULL;
	rq->prepare_ctx = NULL;
	free(u);
	return rc;
}

/* One signed request to the object s3://bucket/key named by url (see
 * s3_target_exec(); rq->what is set here). need_key refuses a URL
 * without a key. rs is always to be freed with http_resp_free(). */
static int s3_object_exec(struct store *st, const char *url, int need_key,
			  struct http_req *rq, const char *payload_hash,
			  struct http_resp *rs, char *err, size_t errlen)
{
	struct s3_ctx *s3;
	struct s3_target t;
	int rc;

	memset(rs, 0, sizeof(*rs));
	rc = s3_begin(st, url, NULL, &s3, &t, err, errlen);
	if (rc)
		return rc;
	if (need_key && !t.key[0])
		rc = sf_errf(err, errlen, SF_EURL, "%s %s: no object key",
			     rq->method, url);
	else
		rc = s3_target_exec(st, s3, &t, NULL, rq, payload_hash, rs,
				    err, errlen);
	rq->what = NULL;
	target_free(&t);
	return rc;
}

/* An unsigned-payload read of url (an http_exec_fn for http_op_*()). */
static int s3_read_exec(struct store *st, const char *url,
			struct http_req *rq, struct http_resp *rs, char *err,
			size_t errlen)
{
	return s3_object_exec(st, url, 0, rq, "UNSIGNED-PAYLOAD", rs, err,
			      errlen);
}

static int s3_get(struct store *st, const char *url, size_t max_bytes,
		  uint8_t **data, size_t *len, struct store_info *info,
		  char *err, size_t errlen)
{
	return http_op_get(st, url, max_bytes, data, len, info, s3_read_exec,
			   err, errlen);
}

static int s3_get_range(struct store *st, const char *url, uint64_t off,
			size_t len, const struct store_range_opts *ro,
			uint8_t *dst, size_t *got, struct store_info *info,
			char *err, size_t errlen)
{
	return http_op_get_range(st, url, off, len, ro, dst, got, info,
				 s3_read_exec, err, errlen);
}

static int s3_get_to_fd(struct store *st, const char *url, int fd,
			uint64_t max_bytes,
			const char *if_match, struct store_info *info,
			char *err, size_t errlen)
{
	return http_op_get_to_fd(st, url, fd, max_bytes, if_match, info,
				 s3_read_exec, err, errlen);
}

static int s3_head(struct store *st, const char *url, struct store_info *info,
		   char *err, size_t errlen)
{
	return http_op_head(st, url, info, s3_read_exec, err, errlen);
}

static int mpu_upload(struct store *st, const char *url, const uint8_t *data,
		      int fd, uint64_t size, const char *content_type,
		      struct store_info *info, char *err, size_t errlen);

/* ---- PUT ------------------------------------------------------------------ */

static int put_common(struct store *st, const char *url, const void *data,
		      size_t len, int fd, uint64_t fd_len,
		      const char *payload_hash, const char *content_type,
		      struct store_info *info, char *err, size_t errlen)
{
	struct http_req rq;
	struct http_resp rs;
	int rc;

	http_req_init(&rq);
	rq.method = "PUT";
	rq.ctr = STORE_CTR_PUT;
	rq.content_type = content_type ? content_type :
			  "application/octet-stream";
	rq.body = data;
	rq.body_len = len;
	rq.body_fd = fd;
	rq.body_fd_len = fd_len;
	rq.streaming = fd >= 0;
	rc = s3_object_exec(st, url, 1, &rq, payload_hash, &rs, err, errlen);
	if (rc == 0 && info) {
		snprintf(info->etag, sizeof(info->etag), "%s", rs.etag);
		info->size = fd >= 0 ? fd_len : len;
		info->mtime = (int64_t)time(NULL);
	}
	http_resp_free(&rs);
	return rc;
}

static int s3_put(struct store *st, const char *url, const void *data,
		  size_t len, const char *content_type,
		  struct store_info *info, char *err, size_t errlen)
{
	char hash[65];

	if ((uint64_t)len > st->conf.mpu_threshold)
		return mpu_upload(st, url, data, -1, len, content_type, info,
				  err, errlen);
	sigv4_sha256_hex(len ? data : "", len, hash);
	return put_common(st, url, len ? data : "", len, -1, 0, hash,
			  content_type, info, err, errlen);
}

/* SHA-256 of size bytes of a file from off (read with pread, so the
 * file offset is untouched). */
static int file_sha256(int fd, uint64_t off, uint64_t size, char out[65])
{
	static const char hexd[] = "0123456789abcdef";
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char dg[32];
	unsigned int dl = 0;
	uint8_t *buf = malloc(1u << 20);
	uint64_t end = off + size;
	int rc = -1, i;

	if (!md || !buf || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1)
		goto out;
	while (off < end) {
		size_t want = end - off < (1u << 20) ? (size_t)(end - off) :
			      (1u << 20);
		ssize_t r = pread(fd, buf, want, (off_t)off);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			goto out;
		if (EVP_DigestUpdate(md, buf, (size_t)r) != 1)
			goto out;
		off += (uint64_t)r;
	}
	if (EVP_DigestFinal_ex(md, dg, &dl) != 1 || dl != 32)
		goto out;
	for (i = 0; i < 32; i++) {
		out[2 * i] = hexd[dg[i] >> 4];
		out[2 * i + 1] = hexd[dg[i] & 15];
	}
	out[64] = '\0';
	rc = 0;
out:
	EVP_MD_CTX_free(md);
	free(buf);
	return rc;
}

static int s3_put_file(struct store *st, const char *url, const char *path,
		       const char *content_type, struct store_info *info,
		       char *err, size_t errlen)
{
	struct stat sb;
	char hash[65];
	int fd, rc, e;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		return sf_errf(err, errlen, SF_EIO, "open %s: %s", path,
			       strerror(e));
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		close(fd);
		return sf_errf(err, errlen, SF_EIO, "%s: not a regular file",
			       path);
	}
	if ((uint64_t)sb.st_size > st->conf.mpu_threshold) {
		rc = mpu_upload(st, url, NULL, fd, (uint64_t)sb.st_size,
				content_type, info, err, errlen);
		close(fd);
		return rc;
	}
	if (file_sha256(fd, 0, (uint64_t)sb.st_size, hash) != 0) {
		close(fd);
		return sf_errf(err, errlen, SF_EIO, "read %s failed", path);
	}
	rc = put_common(st, url, NULL, 0, fd, (uint64_t)sb.st_size, hash,
			content_type, info, err, errlen);
	close(fd);
	return rc;
}

/* ---- CreateBucket ---------------------------------------------------------- */

static int s3_create_bucket(struct store *st, const char *bucket, char *err,
			    size_t errlen)
{
	struct s3_ctx *s3;
	struct s3_target t;
	struct http_req rq;
	struct http_resp rs;
	char hash[65], *body = NULL;
	size_t blen = 0;
	int rc;

	rc = s3_begin(st, NULL, bucket, &s3, &t, err, errlen);
	if (rc)
		return rc;
	if (strcmp(s3->region, "us-east-1") != 0) {
		if (asprintf(&body,
			     "<CreateBucketConfiguration xmlns=\"http://s3."
			     "amazonaws.com/doc/2006-03-01/\"><Location"
			     "Constraint>%s</LocationConstraint></Create"
			     "BucketConfiguration>", s3->region) < 0) {
			target_free(&t);
			return sf_errf(err, errlen, SF_ENOMEM, "out of memory");
		}
		blen = strlen(body);
	}
	sigv4_sha256_hex(body ? body : "", blen, hash);
	http_req_init(&rq);
	rq.method = "PUT";
	rq.ctr = STORE_CTR_PUT;
	snprintf(t.what, sizeof(t.what), "s3://%s", t.bucket);
	rq.body = body ? body : "";
	rq.body_len = blen;
	rc = s3_target_exec(st, s3, &t, NULL, &rq, hash, &rs, err, errlen);
	if (rc == SF_EHTTP && rs.status == 409 &&
	    strcmp(rs.code, "BucketAlreadyOwnedByYou") == 0)
		rc = 0;
	http_resp_free(&rs);
	target_free(&t);
	free(body);
	return rc;
}

/* ---- LIST -------------------------------------------------------------------- */

/* Decodes XML entities, then (url_encoded) percent escapes, of [s, e)
 * into a malloc'd string. NULL on malformed input or ENOMEM. */
static char *xml_text(const char *s, const char *e, int url_encoded)
{
	char *out = malloc((size_t)(e - s) + 1), *o = out, *r, *w;

	if (!out)
		return NULL;
	while (s < e) {
		if (*s != '&') {
			*o++ = *s++;
			continue;
		}
		{
			const char *semi = memchr(s, ';', (size_t)(e - s));
			size_t n;

			if (!semi || semi - s > 12)
				goto bad;
			n = (size_t)(semi - s) + 1;
			if (n == 5 && !memcmp(s, "&amp;", 5))
				*o++ = '&';
			else if (n == 4 && !memcmp(s, "&lt;", 4))
				*o++ = '<';
			else if (n == 4 && !memcmp(s, "&gt;", 4))
				*o++ = '>';
			else if (n == 6 && !memcmp(s, "&quot;", 6))
				*o++ = '"';
			else if (n == 6 && !memcmp(s, "&apos;", 6))
				*o++ = '\'';
			else if (n > 3 && s[1] == '#') {
				unsigned long cp;
				char *end;
				if (s[2] == 'x' || s[2] == 'X')
					cp = strtoul(s + 3, &end, 16);
				else
					cp = strtoul(s + 2, &end, 10);
				if (end != semi || cp == 0 || cp > 0x10FFFF ||
				    (cp >= 0xD800 && cp <= 0xDFFF))
					goto bad;
				/* UTF-8 encode (at most 4 bytes <= n) */
				if (cp < 0x80) {
					*o++ = (char)cp;
				} else if (cp < 0x800) {
					*o++ = (char)(0xC0 | (cp >> 6));
					*o++ = (char)(0x80 | (cp & 0x3F));
				} else if (cp < 0x10000) {
					*o++ = (char)(0xE0 | (cp >> 12));
					*o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
					*o++ = (char)(0x80 | (cp & 0x3F));
				} else {
					*o++ = (char)(0xF0 | (cp >> 18));
					*o++ = (char)(0x80 | ((cp >> 12) & 0x3F));
					*o++ = (char)(0x80 | ((cp >> 6) & 0x3F));
					*o++ = (char)(0x80 | (cp & 0x3F));
				}
			} else {
				goto bad;
			}
			s = semi + 1;
		}
	}
	*o = '\0';
	if (!url_encoded)
		return out;
	for (r = w = out; *r; r++) {
		if (*r == '%') {
			/* r[2] is read only when r[1] is a hex digit */
			int hi = hexval(r[1]), lo = hi < 0 ? -1 : hexval(r[2]);

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0))
				goto bad;
			*w++ = (char)(hi * 16 + lo);
			r += 2;
		} else if (*r == '+') {
			*w++ = ' ';
		} else {
			*w++ = *r;
		}
	}
	*w = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

/* Finds "<tag>" in [p, end); sets *inner_s and *inner_e to its content and
 * returns the position after "</tag>". NULL if absent or unterminated. */
static const char *xml_elem(const char *p, const char *end, const char *tag,
			    const char **inner_s, const char **inner_e)
{
	char open[64], close[64];
	size_t ol, cl;
	const char *a, *b;

	ol = (size_t)snprintf(open, sizeof(open), "<%s>", tag);
	cl = (size_t)snprintf(close, sizeof(close), "</%s>", tag);
	a = memmem(p, (size_t)(end - p), open, ol);
	if (!a)
		return NULL;
	a += ol;
	b = memmem(a, (size_t)(end - a), close, cl);
	if (!b)
		return NULL;
	*inner_s = a;
	*inner_e = b;
	return b + cl;
}

struct list_ent {
	char *name;
	int is_prefix;
};

static int ent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct list_ent *)a)->name,
		      ((const struct list_ent *)b)->name);
}

static int add_ent(struct list_ent **v, size_t *n, size_t *cap, char *name,
		   int is_prefix)
{
	if (*n == *cap) {
		size_t nc = *cap ? *cap * 2 : 128;
		struct list_ent *nv;
		if (nc > 100000)
			nc = *cap + 100000;
		nv = realloc(*v, nc * sizeof(**v));
		if (!nv)
			return -1;
		*v = nv;
		*cap = nc;
	}
	(*v)[*n].name = name;
	(*v)[*n].is_prefix = is_prefix;
	(*n)++;
	return 0;
}

/* Parses one ListObjectsV2 page. On 0, *ents holds decoded names (keys
 * and prefixes), *truncated and *next (malloc'd or NULL) are set. */
static int parse_list_page(const char *xml, size_t len,
			   struct list_ent **ents, size_t *n, int *truncated,
			   char **next)
{
	const char *p = xml, *end = xml + len, *s, *e, *q;
	int url_enc = 0;
	size_t cap = 0;

	*ents = NULL;
	*n = 0;
	*truncated = 0;
	*next = NULL;
	if (!memmem(xml, len, "<ListBucketResult", 17))
		return -1;
	if (xml_elem(xml, end, "EncodingType", &s, &e) &&
	    e - s == 3 && !memcmp(s, "url", 3))
		url_enc = 1;
	if (xml_elem(xml, end, "IsTruncated", &s, &e))
		*truncated = e - s == 4 && !memcmp(s, "true", 4);
	if (xml_elem(xml, end, "NextContinuationToken", &s, &e)) {
		*next = xml_text(s, e, 0);
		if (!*next)
			goto bad;
	}
	/* <Contents>...<Key>k</Key>...</Contents> */
	p = xml;
	while ((q = xml_elem(p, end, "Contents", &s, &e)) != NULL) {
		const char *ks, *ke;
		char *name;
		if (!xml_elem(s, e, "Key", &ks, &ke))
			goto bad;
		name = xml_text(ks, ke, url_enc);
		if (!name || add_ent(ents, n, &cap, name, 0)) {
			free(name);
			goto bad;
		}
		p = q;
	}
	p = xml;
	while ((q = xml_elem(p, end, "CommonPrefixes", &s, &e)) != NULL) {
		const char *ks, *ke;
		char *name;
		if (!xml_elem(s, e, "Prefix", &ks, &ke))
			goto bad;
		name = xml_text(ks, ke, url_enc);
		if (!name || add_ent(ents, n, &cap, name, 1)) {
			free(name);
			goto bad;
		}
		p = q;
	}
	return 0;
bad:
	while (*n > 0)
		free((*ents)[--(*n)].name);
	free(*ents);
	*ents = NULL;
	free(*next);
	*next = NULL;
	return -1;
}

/* Appends "&name=encoded(value)" (or without '&' first) to *q. */
static int q_add(char **q, const char *name, const char *value)
{
	char *ev = sigv4_uri_encode(value, strlen(value), 0), *nq = NULL;
	int n;

	if (!ev)
		return -1;
	n = asprintf(&nq, "%s%s%s=%s", *q ? *q : "", *q && **q ? "&" : "",
		     name, ev);
	free(ev);
	if (n < 0)
		return -1;
	free(*q);
	*q = nq;
	return 0;
}

static int s3_list(struct store *st, const char *url_prefix,
		   const char *delimiter, store_list_cb cb, void *ctx,
		   char *err, size_t errlen)
{
	struct s3_ctx *s3;
	struct s3_target t, bt;
	struct http_req rq;
	struct http_resp rs;
	struct list_ent *ents = NULL;
	size_t n = 0, i;
	char *token = NULL, *next = NULL, *query = NULL, *seen = NULL;
	char *name = NULL, page[16];
	int rc, truncated, pages = 0, seen_at = 0;

	memset(&bt, 0, sizeof(bt));
	memset(&rs, 0, sizeof(rs));
	rc = s3_begin(st, url_prefix, NULL, &s3, &t, err, errlen);
	if (rc)
		return rc;
	rc = target_make(s3, NULL, t.bucket, &bt, err, errlen);
	if (rc)
		goto out;
	for (;;) {
		free(query);
		query = NULL;
		if ((token && q_add(&query, "continuation-token", token)) ||
		    (delimiter && q_add(&query, "delimiter", delimiter)) ||
		    q_add(&query, "encoding-type", "url") ||
		    q_add(&query, "list-type", "2"))
			goto nomem;
		if (st->conf.list_page_size > 0) {
			snprintf(page, sizeof(page), "%d",
				 st->conf.list_page_size);
			if (q_add(&query, "max-keys", page))
				goto nomem;
		}
		if (q_add(&query, "prefix", t.key))
			goto nomem;
		http_req_init(&rq);
		rq.ctr = STORE_CTR_LIST;
		rq.what = t.what;
		rq.sink = HTTP_SINK_MEM;
		rq.max_bytes = S3_LIST_PAGE_MAX;
		http_resp_free(&rs);
		rc = s3_target_exec(st, s3, &bt, query, &rq,
				    "UNSIGNED-PAYLOAD", &rs, err, errlen);
		if (rc)
			goto out;
		pages++;
		free(next);
		next = NULL;
		if (!rs.data || parse_list_page((const char *)rs.data, rs.len,
						&ents, &n, &truncated,
						&next) != 0) {
			rc = sf_errf(err, errlen, SF_EHTTP,
				     "LIST %s: malformed response (page %d)",
				     t.what, pages);
			goto out;
		}
		if (n > 1)
			qsort(ents, n, sizeof(*ents), ent_cmp);
		for (i = 0; i < n && rc == 0; i++) {
			free(name);
			if (asprintf(&name, "s3://%s/%s", t.bucket,
				     ents[i].name) < 0) {
				name = NULL;
				goto nomem;
			}
			rc = cb(ctx, name, ents[i].is_prefix);
		}
		while (n > 0)
			free(ents[--n].name);
		free(ents);
		ents = NULL;
		if (rc)
			goto out;
		if (!truncated)
			break;
		if (!next || !*next || strlen(next) > S3_LIST_TOKEN_MAX ||
		    (token && strcmp(next, token) == 0) ||
		    (seen && strcmp(next, seen) == 0)) {
			rc = sf_errf(err, errlen, SF_EHTTP,
				     "LIST %s: truncated page %d without a new "
				     "continuation token", t.what, pages);
			goto out;
		}
		if (pages >= st->conf.list_max_pages) {
			rc = sf_errf(err, errlen, SF_ETOOBIG,
				     "LIST %s: still truncated after %d pages; "
				     "giving up", t.what, pages);
			goto out;
		}
		/* Brent: remember the token at pages 1, 2, 4, 8, ...; any
		 * cycle of tokens comes back to a remembered one. */
		if (pages == seen_at * 2 || !seen) {
			free(seen);
			seen = strdup(next);
			if (!seen)
				goto nomem;
			seen_at = pages;
		}
		free(token);
		token = next;
		next = NULL;
	}
	goto out;
nomem:
	rc = sf_errf(err, errlen, SF_ENOMEM, "out of memory");
out:
	while (n > 0)
		free(ents[--n].name);
	free(ents);
	http_resp_free(&rs);
	free(token);
	free(next);
	free(seen);
	free(query);
	free(name);
	target_free(&bt);
	target_free(&t);
	return rc;
}

/* ---- multipart upload ---------------------------------------------------- */

/*
 * Objects above conf.mpu_threshold are uploaded in parts:
 *   POST   key?uploads=                         -> <UploadId>
 *   PUT    key?partNumber=N&uploadId=ID  (xN)   -> ETag header per part
 *   POST   key?uploadId=ID  <CompleteMultipartUpload> -> <ETag> (or an
 *          <Error> inside a 200, which S3 may send for a slow completion)
 * and on any failure after the first step
 *   DELETE key?uploadId=ID                      (best effort)
 * so that no orphaned parts are left to be billed. Every step retries on
 * its own through http_exec(); parts are signed with their own SHA-256 and
 * read with pread (from the file or the buffer), so a retried part simply
 * starts again.
 */
#define S3_MPU_MAX_PARTS 10000
#define S3_MPU_RESP_MAX (1u << 20)

/* "uploadId=<id>" (with an optional leading partNumber), encoded. */
static char *mpu_query(const char *upload_id, int part)
{
	char *q = NULL, num[16];

	if (part > 0) {
		snprintf(num, sizeof(num), "%d", part);
		if (q_add(&q, "partNumber", num))
			goto fail;
	}
	if (q_add(&q, "uploadId", upload_id))
		goto fail;
	return q;
fail:
	free(q);
	return NULL;
}

/* Reads the text of <tag> from an XML body (malloc'd) or NULL. */
static char *xml_find(const struct http_resp *rs, const char *tag)
{
	const char *s, *e;

	if (!rs->data ||
	    !xml_elem((const char *)rs->data, (const char *)rs->data + rs->len,
		      tag, &s, &e))
		return NULL;
	return xml_text(s, e, 0);
}

static int mpu_create(struct store *st, struct s3_ctx *s3,
		      struct s3_target *t, const char *content_type,
		      char **upload_id, char *err, size_t errlen)
{
	struct http_req rq;
	struct http_resp rs;
	char hash[65];
	int rc;

	*upload_id = NULL;
	sigv4_sha256_hex("", 0, hash);
	http_req_init(&rq);
	rq.method = "POST";
	rq.ctr = STORE_CTR_PUT;
	rq.content_type = content_type ? content_type :
			  "application/octet-stream";
	rq.body = "";
	rq.sink = HTTP_SINK_MEM;
	rq.max_bytes = S3_MPU_RESP_MAX;
	rc = s3_target_exec(st, s3, t, "uploads=", &rq, hash, &rs, err,
			   errlen);
	if (rc == 0) {
		*upload_id = xml_find(&rs, "UploadId");
		if (!*upload_id || !**upload_id ||
		    strlen(*upload_id) > 1024) {
			free(*upload_id);
			*upload_id = NULL;
			rc = sf_errf(err, errlen, SF_EHTTP, "PUT %s: no upload "
				     "id in the CreateMultipartUpload answer",
				     t->what);
		}
	}
	http_resp_free(&rs);
	return rc;
}

static int mpu_part(struct store *st, struct s3_ctx *s3, struct s3_target *t,
		    const char *upload_id, int part, const uint8_t *data,
		    int fd, uint64_t off, uint64_t len, char *etag,
		    size_t etaglen, char *err, size_t errlen)
{
	struct http_req rq;
	struct http_resp rs;
	char hash[65], *q;
	int rc;

	if (data)
		sigv4_sha256_hex(data + off, (size_t)len, hash);
	else if (file_sha256(fd, off, len, hash) != 0)
		return sf_errf(err, errlen, SF_EIO, "PUT %s: reading part %d "
			       "failed", t->what, part);
	q = mpu_query(upload_id, part);
	if (!q)
		return sf_errf(err, errlen, SF_ENOMEM, "out of memory");
	http_req_init(&rq);
	rq.method = "PUT";
	rq.ctr = STORE_CTR_PUT;
	if (data) {
		rq.body = data + off;
		rq.body_len = (size_t)len;
	} else {
		rq.body_fd = fd;
		rq.body_fd_off = off;
		rq.body_fd_len = len;
	}
	rq.streaming = 1;
	rc = s3_target_exec(st, s3, t, q, &rq, hash, &rs, err, errlen);
	if (rc == 0) {
		if (!rs.etag[0] || strpbrk(rs.etag, "<>&"))
			rc = sf_errf(err, errlen, SF_EHTTP, "PUT %s: part %d "
				     "has no usable ETag", t->what, part);
		else
			snprintf(etag, etaglen, "%s", rs.etag);
	}
	http_resp_free(&rs);
	free(q);
	return rc;
}

static int mpu_complete(struct store *st, struct s3_ctx *s3,
			struct s3_target *t, const char *upload_id,
			char (*etags)[136], int n, struct store_info *info,
			char *err, size_t errlen)
{
	struct http_req rq;
	struct http_resp rs;
	char hash[65], *q = NULL, *body = NULL, *p, *tag = NULL, code[64];
	size_t cap = 64 + (size_t)n * (64 + 136), bl = 0;
	int i, rc;

	memset(&rs, 0, sizeof(rs));
	body = malloc(cap);
	q = mpu_query(upload_id, 0);
	if (!body || !q) {
		rc = sf_errf(err, errlen, SF_ENOMEM, "out of memory");
		goto out;
	}
	bl += (size_t)snprintf(body + bl, cap - bl,
			       "<CompleteMultipartUpload>");
	for (i = 0; i < n; i++)
		bl += (size_t)snprintf(body + bl, cap - bl,
				       "<Part><PartNumber>%d</PartNumber>"
				       "<ETag>%s</ETag></Part>", i + 1,
				       etags[i]);
	bl += (size_t)snprintf(body + bl, cap - bl,
			       "</CompleteMultipartUpload>");
	sigv4_sha256_hex(body, bl, hash);
	http_req_init(&rq);
	rq.method = "POST";
	rq.ctr = STORE_CTR_PUT;
	rq.content_type = "application/xml";
	rq.body = body;
	rq.body_len = bl;
	rq.sink = HTTP_SINK_MEM;
	rq.max_bytes = S3_MPU_RESP_MAX;
	rc = s3_target_exec(st, s3, t, q, &rq, hash, &rs, err, errlen);
	if (rc)
		goto out;
	p = rs.data ? strstr((const char *)rs.data, "<Error>") : NULL;
	if (p) {
		char *c = xml_find(&rs, "Code");
		size_t k;

		snprintf(code, sizeof(code), "%s", c ? c : "");
		for (k = 0; code[k]; k++)
			if (code[k] < 0x20 || code[k] >= 0x7f)
				code[k] = '?';
		free(c);
		rc = sf_errf(err, errlen, SF_EHTTP, "PUT %s: completing the "
			     "upload failed (%s)", t->what,
			     code[0] ? code : "error");
		goto out;
	}
	tag = xml_find(&rs, "ETag");
	if (info) {
		snprintf(info->etag, sizeof(info->etag), "%s",
			 tag ? tag : rs.etag);
		info->mtime = (int64_t)time(NULL);
	}
out:
	http_resp_free(&rs);
	free(tag);
	free(body);
	free(q);
	return rc;
}

static void mpu_abort(struct store *st, struct s3_ctx *s3,
		      struct s3_target *t, const char *upload_id)
{
	struct http_req rq;
	struct http_resp rs;
	char hash[65], msg[256] = "", *q = mpu_query(upload_id, 0);
	int rc;

	if (!q)
		return;
	sigv4_sha256_hex("", 0, hash);
	http_req_init(&rq);
	rq.method = "DELETE";
	rq.ctr = STORE_CTR_PUT;
	rc = s3_target_exec(st, s3, t, q, &rq, hash, &rs, msg, sizeof(msg));
	if (rc)
		sf_log(SF_LOG_WARN, "aborting the upload of %s failed: %s",
		       t->what, msg);
	http_resp_free(&rs);
	free(q);
}

/* Uploads size bytes of data (or of the file fd, when data is NULL) in
 * parts. Neither is owned. */
static int mpu_upload(struct store *st, const char *url, const uint8_t *data,
		      int fd, uint64_t size, const char *content_type,
		      struct store_info *info, char *err, size_t errlen)
{
	struct s3_ctx *s3;
	struct s3_target t;
	char *upload_id = NULL, (*etags)[136] = NULL;
	uint64_t ps = st->conf.mpu_part_size, n;
	int rc, i;

	rc = s3_begin(st, url, NULL, &s3, &t, err, errlen);
	if (rc)
		return rc;
	if (!t.key[0]) {
		rc = sf_errf(err, errlen, SF_EURL, "PUT %s: no object key",
			     url);
		goto out;
	}
	if (ps == 0)
		ps = 16u * 1024 * 1024;
	while ((size + ps - 1) / ps > S3_MPU_MAX_PARTS)
		ps *= 2;
	n = size ? (size + ps - 1) / ps : 1;
	etags = calloc((size_t)n, sizeof(*etags));
	if (!etags) {
		rc = sf_errf(err, errlen, SF_ENOMEM, "out of memory");
		goto out;
	}
	rc = mpu_create(st, s3, &t, content_type, &upload_id, err, errlen);
	if (rc)
		goto out;
	for (i = 0; i < (int)n && rc == 0; i++) {
		uint64_t off = (uint64_t)i * ps;
		uint64_t len = size - off < ps ? size - off : ps;

		rc = mpu_part(st, s3, &t, upload_id, i + 1, data, fd, off, len,
			      etags[i], sizeof(etags[i]), err, errlen);
	}
	if (rc == 0)
		rc = mpu_complete(st, s3, &t, upload_id, etags, (int)n, info,
				  err, errlen);
	if (rc)
		mpu_abort(st, s3, &t, upload_id);
	else if (info)
		info->size = size;
	sf_log(SF_LOG_DEBUG, "multipart upload of %s: %d parts: %s", t.what,
	       (int)n, rc ? "failed" : "done");
out:
	free(upload_id);
	free(etags);
	target_free(&t);
	return rc;
}

const struct store_ops s3_ops = {
	.name = "s3",
	.get = s3_get,
	.get_range = s3_get_range,
	.get_to_fd = s3_get_to_fd,
	.head = s3_head,
	.list = s3_list,
	.put = s3_put,
	.put_file = s3_put_file,
	.create_bucket = s3_create_bucket,
};
