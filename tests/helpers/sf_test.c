/*
 * sf_test.c -- implementation of the shared test helpers (see sf_test.h).
 * Uploads go through the project's own store so that the S3 tests exercise
 * signing end to end.
 */
#include "sf_test.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store.h"

char *sft_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *p = NULL;

	if (!base || !*base)
		base = "/tmp";
	if (asprintf(&p, "%s/sft-XXXXXX", base) < 0)
		cr_assert_fail("asprintf");
	if (!mkdtemp(p))
		cr_assert_fail("mkdtemp %s: %s", p, strerror(errno));
	return p;
}

void sft_rmrf(const char *path)
{
	char *cmd = NULL;

	if (!path || !*path || strcmp(path, "/") == 0)
		return;
	if (asprintf(&cmd, "rm -rf '%s'", path) < 0)
		return;
	if (system(cmd) != 0) {
		/* best effort */
	}
	free(cmd);
}

char *sft_data(const char *rel)
{
	char *p = NULL;
	if (asprintf(&p, "%s/%s", SF_TEST_DATA_DIR, rel) < 0)
		cr_assert_fail("asprintf");
	return p;
}

char *sft_fixture_url(const char *name)
{
	char *p = NULL;
	if (asprintf(&p, "file://%s/shardyfusion/%s/snapshot", SF_TEST_DATA_DIR,
		     name) < 0)
		cr_assert_fail("asprintf");
	return p;
}

void sft_s3_env(struct sft_s3 *out)
{
	const char *path = getenv("SF_TEST_MOTO_ENV");
	char line[512];
	FILE *f;

	memset(out, 0, sizeof(*out));
	if (!path)
		path = SF_TEST_MOTO_ENV_FILE;
	f = fopen(path, "r");
	if (!f) {
		if (getenv("SF_TEST_ALLOW_SKIP"))
			cr_skip_test("moto server not running (%s)", path);
		cr_assert_fail("moto server not running: %s missing (run via ctest, "
			 "which starts the `moto` fixture)", path);
	}
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\n")] = 0;
		char *eq = strchr(line, '=');
		if (!eq)
			continue;
		*eq = 0;
		const char *v = eq + 1;
		if (!strcmp(line, "SF_TEST_S3_ENDPOINT"))
			snprintf(out->endpoint, sizeof(out->endpoint), "%s", v);
		else if (!strcmp(line, "SF_TEST_S3_KEY"))
			snprintf(out->key, sizeof(out->key), "%s", v);
		else if (!strcmp(line, "SF_TEST_S3_SECRET"))
			snprintf(out->secret, sizeof(out->secret), "%s", v);
		else if (!strcmp(line, "SF_TEST_S3_REGION"))
			snprintf(out->region, sizeof(out->region), "%s", v);
	}
	fclose(f);
	if (!out->endpoint[0] || !out->key[0])
		cr_assert_fail("incomplete %s", path);
}

void sft_s3_options(const struct sft_s3 *s3, struct sf_options *opt)
{
	opt->endpoint_url = s3->endpoint;
	opt->access_key_id = s3->key;
	opt->secret_access_key = s3->secret;
	opt->region = s3->region;
	opt->addressing = SF_ADDR_PATH;
}

char *sft_unique_bucket(void)
{
	static unsigned counter;
	char *p = NULL;
	unsigned r;
	FILE *f = fopen("/dev/urandom", "rb");

	if (!f || fread(&r, sizeof(r), 1, f) != 1)
		r = (unsigned)rand();
	if (f)
		fclose(f);
	if (asprintf(&p, "sft-%d-%u-%08x", (int)getpid(), counter++, r) < 0)
		cr_assert_fail("asprintf");
	return p;
}

static struct store *open_s3_store(const struct sft_s3 *s3)
{
	struct sf_options opt;
	struct store *st = NULL;
	char err[512] = "";

	sf_options_init(&opt);
	sft_s3_options(s3, &opt);
	if (store_open(&st, "s3://x", &opt, err, sizeof(err)) != 0)
		cr_assert_fail("store_open: %s", err);
	return st;
}

void sft_s3_mkbucket(const struct sft_s3 *s3, const char *bucket)
{
	struct store *st = open_s3_store(s3);
	char err[512] = "";
	int rc = store_create_bucket(st, bucket, err, sizeof(err));

	store_close(st);
	if (rc != 0)
		cr_assert_fail("create bucket %s: %s", bucket, err);
}

static int upload_rec(struct store *st, const char *dir, const char *url)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int rc = 0;

	if (!d)
		return -1;
	while (rc == 0 && (e = readdir(d))) {
		char *p = NULL, *u = NULL;
		struct stat sb;
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		if (asprintf(&p, "%s/%s", dir, e->d_name) < 0 ||
		    asprintf(&u, "%s/%s", url, e->d_name) < 0) {
			rc = -1;
		} else if (stat(p, &sb) == 0 && S_ISDIR(sb.st_mode)) {
			rc = upload_rec(st, p, u);
		} else {
			char err[512] = "";
			rc = store_put_file(st, u, p, NULL, NULL, err, sizeof(err));
			if (rc)
				cr_log_error("upload %s: %s", u, err);
		}
		free(p);
		free(u);
	}
	closedir(d);
	return rc;
}

int sft_upload_dir(const struct sft_s3 *s3, const char *local_dir,
		   const char *url_prefix)
{
	struct store *st = open_s3_store(s3);
	int rc = upload_rec(st, local_dir, url_prefix);
	store_close(st);
	return rc;
}

char *sft_s3_cli_env(const struct sft_s3 *s3)
{
	char *p = NULL;
	if (asprintf(&p,
		     "env -u AWS_PROFILE AWS_ENDPOINT_URL='%s' AWS_ACCESS_KEY_ID='%s' "
		     "AWS_SECRET_ACCESS_KEY='%s' AWS_REGION='%s'",
		     s3->endpoint, s3->key, s3->secret, s3->region) < 0)
		cr_assert_fail("asprintf");
	return p;
}

char *sft_shq(const char *s)
{
	size_t n = 3;
	char *o, *w;

	for (const char *p = s; *p; p++)
		n += *p == '\'' ? 4 : 1;
	o = malloc(n);
	if (!o)
		cr_assert_fail("out of memory");
	w = o;
	*w++ = '\'';
	for (const char *p = s; *p; p++) {
		if (*p == '\'') {
			memcpy(w, "'\\''", 4);
			w += 4;
		} else {
			*w++ = *p;
		}
	}
	*w++ = '\'';
	*w = 0;
	return o;
}

const char *sft_cli(void)
{
	const char *p = getenv("SF_TEST_CLI");
	return p && *p ? p : SF_TEST_BIN_DIR "/shardyfs";
}

static char *slurp_fd(int fd, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	ssize_t r;

	while (buf && (r = read(fd, buf + n, cap - n - 1)) > 0) {
		n += (size_t)r;
		if (cap - n < 2) {
			char *nb = realloc(buf, cap * 2);
			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (buf)
		buf[n] = 0;
	if (len)
		*len = n;
	return buf;
}

int sft_run(const char *cmd, char **out, size_t *outlen, char **errout)
{
	char *ef = NULL, *full = NULL;
	FILE *p;
	int st;

	if (asprintf(&ef, "%s/sft-stderr-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp") < 0)
		return -1;
	int efd = mkstemp(ef);
	if (efd < 0) {
		free(ef);
		return -1;
	}
	close(efd);
	if (asprintf(&full, "(%s) 2>'%s'", cmd, ef) < 0) {
		free(ef);
		return -1;
	}
	p = popen(full, "r");
	free(full);
	if (!p) {
		unlink(ef);
		free(ef);
		return -1;
	}
	char *o = slurp_fd(fileno(p), outlen);
	st = pclose(p);
	if (out)
		*out = o;
	else
		free(o);
	if (errout) {
		size_t n;
		*errout = (char *)sft_read_file(ef, &n);
	}
	unlink(ef);
	free(ef);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

uint8_t *sft_read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	uint8_t *buf;
	long n;

	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	n = ftell(f);
	fseek(f, 0, SEEK_SET);
	buf = malloc((size_t)n + 1);
	if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	if (buf) {
		buf[n] = 0;
		if (len)
			*len = (size_t)n;
	}
	return buf;
}

int sft_write_file(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	int rc = 0;

	if (!f)
		return -1;
	if (len && fwrite(data, 1, len, f) != len)
		rc = -1;
	if (fclose(f) != 0)
		rc = -1;
	return rc;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

struct sft_answer *sft_answers(const char *name, size_t *n)
{
	char *rel = NULL, *path;
	size_t len, cap = 64, cnt = 0;
	uint8_t *buf;
	struct sft_answer *a = calloc(cap, sizeof(*a));

	if (asprintf(&rel, "shardyfusion/%s/answers.tsv", name) < 0)
		cr_assert_fail("asprintf");
	path = sft_data(rel);
	buf = sft_read_file(path, &len);
	if (!buf)
		cr_assert_fail("cannot read %s", path);
	free(rel);
	free(path);

	char *line = (char *)buf, *end = (char *)buf + len;
	while (line < end) {
		char *nl = memchr(line, '\n', (size_t)(end - line));
		if (!nl)
			nl = end;
		*nl = 0;
		if (nl > line) {
			char *f[4] = {0};
			char *s = line;
			for (int i = 0; i < 4; i++) {
				f[i] = s;
				char *t = strchr(s, '\t');
				if (t) {
					*t = 0;
					s = t + 1;
				} else {
					s = s + strlen(s);
				}
			}
			if (cnt == cap) {
				cap *= 2;
				a = realloc(a, cap * sizeof(*a));
			}
			struct sft_answer *x = &a[cnt++];
			memset(x, 0, sizeof(*x));
			x->klen = strlen(f[0]) / 2;
			x->key = malloc(x->klen + 1);
			for (size_t i = 0; i < x->klen; i++)
				x->key[i] = (uint8_t)(hexval(f[0][2 * i]) * 16 +
						      hexval(f[0][2 * i + 1]));
			x->user_key = strdup(f[1]);
			x->vlen = strtoull(f[2], NULL, 10);
			snprintf(x->sha256, sizeof(x->sha256), "%s", f[3]);
		}
		line = nl + 1;
	}
	free(buf);
	*n = cnt;
	return a;
}

void sft_answers_free(struct sft_answer *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(a[i].key);
		free(a[i].user_key);
	}
	free(a);
}

void sft_sha256_hex(const void *data, size_t len, char out[65])
{
	unsigned char md[SHA256_DIGEST_LENGTH];
	SHA256(data, len, md);
	for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	out[64] = 0;
}
