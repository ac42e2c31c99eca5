/*
 * test_store_s3.c -- the s3:// backend against moto with signature
 * checking on (tests/helpers/moto.sh): GET, ranged GET with Content-Range
 * sizes, If-Match pinning (412 after an overwrite), 416 past the end, 404,
 * 403 for a wrong secret, LIST with delimiter and pagination, PUT of
 * buffers and files, and keys with unicode, spaces, '%' and '='.
 * Every test uses its own bucket.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sf_test.h"
#include "store.h"

static struct sft_s3 s3env;
static char *bucket;
static struct store *st;

static struct store *open_store(const char *secret)
{
	struct sf_options opt;
	struct store *s = NULL;
	char err[512] = "";

	sf_options_init(&opt);
	sft_s3_options(&s3env, &opt);
	if (secret)
		opt.secret_access_key = secret;
	opt.max_attempts = 2;
	cr_assert_eq(store_open(&s, "s3://x", &opt, err, sizeof(err)), 0,
		     "%s", err);
	return s;
}

static void setup(void)
{
	sft_s3_env(&s3env);
	bucket = sft_unique_bucket();
	sft_s3_mkbucket(&s3env, bucket);
	st = open_store(NULL);
}

static void teardown(void)
{
	store_close(st);
	free(bucket);
}

TestSuite(store_s3, .init = setup, .fini = teardown, .timeout = 120);

static char *url(const char *key)
{
	char *u = NULL;

	cr_assert(asprintf(&u, "s3://%s/%s", bucket, key) > 0);
	return u;
}

static void put_str(const char *key, const char *s, struct store_info *info)
{
	char err[512] = "";
	char *u = url(key);

	cr_assert_eq(store_put(st, u, s, strlen(s), "text/plain", info, err,
			       sizeof(err)), 0, "PUT %s: %s", u, err);
	free(u);
}

Test(store_s3, put_then_get_and_head_agree)
{
	struct store_info pi, gi, hi;
	uint8_t *data = NULL;
	size_t len = 0;
	char err[512] = "";
	char *u = url("dir/hello.txt");

	put_str("dir/hello.txt", "hello, moto", &pi);
	cr_expect_gt(strlen(pi.etag), 2);
	cr_assert_eq(store_get(st, u, 1 << 20, &data, &len, &gi, err,
			       sizeof(err)), 0, "%s", err);
	cr_expect_eq(len, 11);
	cr_expect_str_eq((char *)data, "hello, moto");
	cr_expect_eq(gi.size, 11);
	cr_expect_str_eq(gi.etag, pi.etag);
	cr_assert_eq(store_head(st, u, &hi, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(hi.size, 11);
	cr_expect_str_eq(hi.etag, pi.etag);
	cr_expect_gt(hi.mtime, 0);
	free(data);
	free(u);
}

Test(store_s3, get_over_cap_is_toobig)
{
	uint8_t *data = NULL;
	size_t len = 0;
	char err[512] = "";
	char *u = url("big");

	put_str("big", "0123456789abcdef", NULL);
	cr_expect_eq(store_get(st, u, 15, &data, &len, NULL, err, sizeof(err)),
		     SF_ETOOBIG, "%s", err);
	cr_expect_null(data);
	free(u);
}

Test(store_s3, ranged_get_reports_total_size_and_416)
{
	struct store_info info;
	uint8_t buf[32];
	size_t got = 0;
	char err[512] = "";
	char *u = url("range.bin");

	put_str("range.bin", "0123456789", NULL);
	cr_assert_eq(store_get_range(st, u, 3, 4, NULL, buf, &got, &info, err,
				     sizeof(err)), 0, "%s", err);
	cr_expect_eq(got, 4);
	cr_expect(memcmp(buf, "3456", 4) == 0);
	cr_expect_eq(info.size, 10);
	cr_expect_gt(strlen(info.etag), 2);

	cr_assert_eq(store_get_range(st, u, 7, 32, NULL, buf, &got, &info, err,
				     sizeof(err)), 0, "%s", err);
	cr_expect_eq(got, 3);
	cr_expect(memcmp(buf, "789", 3) == 0);
	cr_expect_eq(info.size, 10);

	cr_expect_eq(store_get_range(st, u, 10, 4, NULL, buf, &got, NULL, err,
				     sizeof(err)), SF_EHTTP_416, "%s", err);
	cr_expect_eq(store_get_range(st, u, 500, 4, NULL, buf, &got, NULL, err,
				     sizeof(err)), SF_EHTTP_416, "%s", err);
	free(u);
}

Test(store_s3, if_match_gives_412_after_overwrite)
{
	struct store_info v1, v2;
	struct store_range_opts ro = {0};
	uint8_t buf[8];
	size_t got;
	char err[512] = "";
	char *u = url("pinned");

	put_str("pinned", "first version", &v1);
	ro.if_match = v1.etag;
	cr_expect_eq(store_get_range(st, u, 0, 5, &ro, buf, &got, NULL, err,
				     sizeof(err)), 0, "%s", err);
	put_str("pinned", "other version", &v2);
	cr_expect_str_neq(v1.etag, v2.etag);
	cr_expect_eq(store_get_range(st, u, 0, 5, &ro, buf, &got, NULL, err,
				     sizeof(err)), SF_EHTTP_412, "%s", err);
	ro.if_match = v2.etag;
	cr_expect_eq(store_get_range(st, u, 0, 5, &ro, buf, &got, NULL, err,
				     sizeof(err)), 0, "%s", err);
	cr_expect(memcmp(buf, "other", 5) == 0);
	free(u);
}

Test(store_s3, missing_key_and_bucket_are_404)
{
	struct store_info info;
	uint8_t *data = NULL;
	size_t len;
	char err[512] = "";
	char *u = url("no/such/key");

	cr_expect_eq(store_get(st, u, 100, &data, &len, NULL, err,
			       sizeof(err)), SF_EHTTP_404, "%s", err);
	cr_expect(strstr(err, "no/such/key") != NULL, "%s", err);
	cr_expect_eq(store_head(st, u, &info, err, sizeof(err)), SF_EHTTP_404);
	cr_expect_eq(store_get(st, "s3://sft-no-such-bucket-zz/k", 100, &data,
			       &len, NULL, err, sizeof(err)), SF_EHTTP_404,
		     "%s", err);
	free(u);
}

Test(store_s3, wrong_secret_is_403_and_not_retried)
{
	struct store *bad = open_store("definitely-not-the-secret");
	struct store_stats ss;
	uint8_t *data = NULL;
	size_t len;
	char err[512] = "";
	char *u = url("secret-test");

	put_str("secret-test", "x", NULL);
	cr_expect_eq(store_get(bad, u, 100, &data, &len, NULL, err,
			       sizeof(err)), SF_EHTTP_403, "%s", err);
	cr_expect(strstr(err, "definitely") == NULL, "secret leaked: %s", err);
	store_stats(bad, &ss);
	cr_expect_eq(ss.retries, 0);
	cr_expect_eq(ss.failures, 1);
	store_close(bad);
	free(u);
}

Test(store_s3, odd_keys_roundtrip_through_put_get_and_list)
{
	static const char *const keys[] = {
		"odd/a b.txt", "odd/100%.db", "odd/run_id=42/x=y",
		"odd/\xc3\xa9t\xc3\xa9 \xe2\x98\x83", "odd/plus+and&amp",
		"odd/tilde~star*quote'",
	};
	char err[512] = "", seen[2048] = "", want[2048] = "";
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		uint8_t *data = NULL;
		size_t len;
		char *u = url(keys[i]);

		put_str(keys[i], keys[i], NULL);
		cr_assert_eq(store_get(st, u, 1000, &data, &len, NULL, err,
				       sizeof(err)), 0, "GET %s: %s", u, err);
		cr_expect_str_eq((char *)data, keys[i]);
		free(data);
		free(u);
	}
	/* LIST returns the exact names, sorted byte-wise */
	{
		const char *sorted[sizeof(keys) / sizeof(keys[0])];
		size_t n = sizeof(keys) / sizeof(keys[0]), j;
		char *pfx = url("odd/");

		memcpy(sorted, keys, sizeof(sorted));
		for (i = 1; i < n; i++)
			for (j = i; j > 0 && strcmp(sorted[j - 1], sorted[j]) > 0; j--) {
				const char *t = sorted[j];
				sorted[j] = sorted[j - 1];
				sorted[j - 1] = t;
			}
		for (i = 0; i < n; i++) {
			size_t wl = strlen(want);
			snprintf(want + wl, sizeof(want) - wl, "s3://%s/%s\n",
				 bucket, sorted[i]);
		}
		int collect(void *ctx, const char *name, int is_prefix);
		cr_assert_eq(store_list(st, pfx, NULL, collect, seen, err,
					sizeof(err)), 0, "%s", err);
		cr_expect_str_eq(seen, want);
		free(pfx);
	}
}

int collect(void *ctx, const char *name, int is_prefix);
int collect(void *ctx, const char *name, int is_prefix)
{
	char *buf = ctx;
	size_t bl = strlen(buf);

	snprintf(buf + bl, 2048 - bl, "%s%s\n", name, is_prefix ? " P" : "");
	return 0;
}

Test(store_s3, list_with_delimiter_and_pagination)
{
	static const char *const keys[] = {
		"l/a/1", "l/a/2", "l/b", "l/c/1", "l/d", "l/e", "l/f/x/y",
		"l/g", "other",
	};
	char err[512] = "", seen[2048] = "", exp[2048] = "";
	struct store_stats s0, s1;
	char *pfx = url("l/");
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
		put_str(keys[i], "1", NULL);
	store_set_list_page_size(st, 2);
	store_stats(st, &s0);
	cr_assert_eq(store_list(st, pfx, "/", collect, seen, err,
				sizeof(err)), 0, "%s", err);
	store_stats(st, &s1);
	snprintf(exp, sizeof(exp),
		 "s3://%1$s/l/a/ P\ns3://%1$s/l/b\ns3://%1$s/l/c/ P\n"
		 "s3://%1$s/l/d\ns3://%1$s/l/e\ns3://%1$s/l/f/ P\n"
		 "s3://%1$s/l/g\n", bucket);
	cr_expect_str_eq(seen, exp);
	cr_expect_geq(s1.list_requests - s0.list_requests, 4,
		      "expected several pages, got %llu",
		      (unsigned long long)(s1.list_requests - s0.list_requests));

	/* no delimiter: every key, recursively */
	seen[0] = '\0';
	cr_assert_eq(store_list(st, pfx, NULL, collect, seen, err,
				sizeof(err)), 0, "%s", err);
	snprintf(exp, sizeof(exp),
		 "s3://%1$s/l/a/1\ns3://%1$s/l/a/2\ns3://%1$s/l/b\n"
		 "s3://%1$s/l/c/1\ns3://%1$s/l/d\ns3://%1$s/l/e\n"
		 "s3://%1$s/l/f/x/y\ns3://%1$s/l/g\n", bucket);
	cr_expect_str_eq(seen, exp);

	/* an empty prefix lists nothing, and is not an error */
	seen[0] = '\0';
	free(pfx);
	pfx = url("zzz/");
	cr_assert_eq(store_list(st, pfx, "/", collect, seen, err,
				sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(seen, "");
	free(pfx);
}

static int stop_after_one(void *ctx, const char *name, int is_prefix)
{
	(*(int *)ctx)++;
	return 7;
}

Test(store_s3, list_callback_stops_the_walk)
{
	char err[512] = "";
	char *pfx = url("s/");
	int calls = 0;

	put_str("s/1", "1", NULL);
	put_str("s/2", "1", NULL);
	cr_expect_eq(store_list(st, pfx, NULL, stop_after_one, &calls, err,
				sizeof(err)), 7);
	cr_expect_eq(calls, 1);
	free(pfx);
}

Test(store_s3, put_file_and_get_to_fd_roundtrip)
{
	char *dir = sft_tmpdir(), *src = NULL, *dst = NULL;
	struct store_info pi, gi;
	char err[512] = "";
	uint8_t *big, *back;
	size_t n = 3 * 1024 * 1024 + 17, blen, i;
	char *u = url("files/big.bin");
	int fd;

	big = malloc(n);
	cr_assert_not_null(big);
	for (i = 0; i < n; i++)
		big[i] = (uint8_t)(i * 131 + (i >> 11));
	cr_assert(asprintf(&src, "%s/src", dir) > 0);
	cr_assert(asprintf(&dst, "%s/dst", dir) > 0);
	cr_assert_eq(sft_write_file(src, big, n), 0);
	cr_assert_eq(store_put_file(st, u, src, NULL, &pi, err, sizeof(err)),
		     0, "%s", err);
	cr_expect_eq(pi.size, n);
	fd = open(dst, O_CREAT | O_RDWR | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(store_get_to_fd(st, u, fd, 0, pi.etag, &gi, err,
				     sizeof(err)), 0, "%s", err);
	close(fd);
	cr_expect_eq(gi.size, n);
	cr_expect_str_eq(gi.etag, pi.etag);
	back = sft_read_file(dst, &blen);
	cr_assert_eq(blen, n);
	cr_expect(memcmp(back, big, n) == 0);
	free(back);
	free(big);
	free(src);
	free(dst);
	free(u);
	sft_rmrf(dir);
	free(dir);
}

Test(store_s3, empty_objects_work)
{
	uint8_t *data = NULL, buf[4];
	size_t len = 9, got;
	char err[512] = "";
	char *u = url("empty");

	put_str("empty", "", NULL);
	cr_assert_eq(store_get(st, u, 10, &data, &len, NULL, err, sizeof(err)),
		     0, "%s", err);
	cr_expect_eq(len, 0);
	cr_expect_not_null(data);
	free(data);
	cr_expect_eq(store_get_range(st, u, 0, 4, NULL, buf, &got, NULL, err,
				     sizeof(err)), SF_EHTTP_416, "%s", err);
	free(u);
}

Test(store_s3, create_bucket_twice_is_fine)
{
	char err[512] = "";

	cr_expect_eq(store_create_bucket(st, bucket, err, sizeof(err)), 0,
		     "%s", err);
}

Test(store_s3, credentials_come_from_the_environment)
{
	struct sf_options opt;
	struct store *s = NULL;
	uint8_t *data = NULL;
	size_t len;
	char err[512] = "";
	char *u = url("env-creds");

	put_str("env-creds", "via env", NULL);
	sf_options_init(&opt);
	opt.endpoint_url = s3env.endpoint; /* keys from the environment */
	setenv("AWS_ACCESS_KEY_ID", s3env.key, 1);
	setenv("AWS_SECRET_ACCESS_KEY", s3env.secret, 1);
	unsetenv("AWS_SESSION_TOKEN");
	setenv("AWS_REGION", s3env.region, 1);
	cr_assert_eq(store_open(&s, "s3://x", &opt, err, sizeof(err)), 0);
	cr_expect_eq(store_get(s, u, 100, &data, &len, NULL, err, sizeof(err)),
		     0, "%s", err);
	free(data);
	store_close(s);
	free(u);
}

Test(store_s3, counters_count_requests_and_bytes)
{
	struct store_stats a, b;
	uint8_t buf[4];
	size_t got;
	char err[512] = "";
	char *u = url("count");

	store_stats(st, &a);
	put_str("count", "abcdef", NULL);
	cr_assert_eq(store_get_range(st, u, 1, 4, NULL, buf, &got, NULL, err,
				     sizeof(err)), 0, "%s", err);
	store_stats(st, &b);
	cr_expect_eq(b.put_requests - a.put_requests, 1);
	cr_expect_eq(b.range_requests - a.range_requests, 1);
	cr_expect_eq(b.bytes_out - a.bytes_out, 6);
	cr_expect_eq(b.bytes_in - a.bytes_in, 4);
	free(u);
}

Test(store_s3, anonymous_requests_are_unsigned)
{
	struct sf_options opt;
	struct store *s = NULL;
	uint8_t *data = NULL;
	size_t len;
	char err[512] = "";
	char *u = url("anon");

	put_str("anon", "x", NULL);
	sf_options_init(&opt);
	opt.endpoint_url = s3env.endpoint;
	opt.no_sign_request = 1;
	opt.max_attempts = 1;
	/* no credentials anywhere: must not be needed */
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
	cr_assert_eq(store_open(&s, "s3://x", &opt, err, sizeof(err)), 0);
	/* moto checks signatures: an unsigned request is refused */
	cr_expect_eq(store_get(s, u, 100, &data, &len, NULL, err, sizeof(err)),
		     SF_EHTTP_403, "%s", err);
	store_close(s);
	free(u);
}
