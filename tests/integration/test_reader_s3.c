/*
 * test_reader_s3.c -- the reader against a real S3 server (moto on
 * 127.0.0.1 with signature checking on): the four shardyfusion fixtures are
 * uploaded object by object to a fresh bucket under a prefix other than the
 * one they were written at (so every URL is rebased), then every key is
 * read back in range, download and auto modes. Also: a wrong secret is an
 * access error, never "not found"; an empty prefix is "no snapshot
 * published"; a stopped server is an error.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sf_test.h"
#include "shardyfs.h"

TestSuite(reader_s3, .timeout = 600);

static char *upload_fixture(const struct sft_s3 *s3, const char *name)
{
	char *bucket = sft_unique_bucket(), *url = NULL, rel[128];
	sft_s3_mkbucket(s3, bucket);
	snprintf(rel, sizeof(rel), "shardyfusion/%s/snapshot", name);
	char *local = sft_data(rel);
	cr_assert(asprintf(&url, "s3://%s/copies/%s", bucket, name) > 0);
	cr_assert_eq(sft_upload_dir(s3, local, url), 0, "upload %s", name);
	free(local);
	free(bucket);
	return url;
}

static void read_all(const struct sft_s3 *s3, const char *url,
		     const char *name, enum sf_access_mode mode)
{
	struct sf_options opt;
	struct sf_reader *r = NULL;
	char err[1024] = "";
	char *cache = sft_tmpdir();
	size_t n;
	struct sft_answer *a = sft_answers(name, &n);

	sf_options_init(&opt);
	sft_s3_options(s3, &opt);
	opt.access_mode = mode;
	opt.cache_dir = cache;
	cr_assert_eq(sf_reader_open(&r, url, &opt, err, sizeof(err)), 0,
		     "%s: %s", url, err);
	struct sf_snapshot *s = sf_reader_acquire(r);
	struct sf_snapshot_info si;
	sf_snapshot_info(s, &si);
	struct sf_key *keys = calloc(n, sizeof(*keys));
	struct sf_result *res = calloc(n, sizeof(*res));
	for (size_t i = 0; i < n; i++) {
		if (si.key_encoding == SF_ENC_U64BE)
			cr_assert_eq(sf_key_from_text(si.key_encoding, a[i].user_key,
						      strlen(a[i].user_key), &keys[i], NULL, 0), 0);
		else
			keys[i] = sf_key_bytes(a[i].key, a[i].klen);
	}
	/* Half one by one, all of them in one batch. */
	for (size_t i = 0; i < n; i += 2) {
		void *v = NULL;
		size_t len;
		char hex[65];
		int rc = sf_snapshot_get(s, &keys[i], &v, &len, err, sizeof(err));
		cr_assert_eq(rc, 0, "%s %s: %d %s", name, a[i].user_key, rc, err);
		sft_sha256_hex(v, len, hex);
		cr_assert_str_eq(hex, a[i].sha256);
		sf_free(v);
	}
	cr_assert_eq(sf_snapshot_multi_get(s, keys, n, res, err, sizeof(err)), 0, "%s", err);
	for (size_t i = 0; i < n; i++) {
		char hex[65];
		cr_assert_eq(res[i].status, 0);
		sft_sha256_hex(res[i].value, res[i].len, hex);
		cr_assert_str_eq(hex, a[i].sha256);
		sf_free(res[i].value);
	}
	struct sf_stats st;
	sf_reader_stats(r, &st);
	cr_assert(st.get_requests + st.range_requests > 0);
	if (mode == SF_ACCESS_RANGE)
		cr_assert(st.range_requests > 0);
	free(keys);
	free(res);
	sf_snapshot_release(s);
	sf_reader_close(r);
	sft_answers_free(a, n);
	sft_rmrf(cache);
	free(cache);
}

Test(reader_s3, every_fixture_key_reads_back_in_every_mode)
{
	struct sft_s3 s3;
	const char *names[] = {"utf8", "u64", "raw", "sparse"};

	sft_s3_env(&s3);
	for (int i = 0; i < 4; i++) {
		char *url = upload_fixture(&s3, names[i]);
		read_all(&s3, url, names[i], SF_ACCESS_RANGE);
		read_all(&s3, url, names[i], SF_ACCESS_DOWNLOAD);
		read_all(&s3, url, names[i], SF_ACCESS_AUTO);
		free(url);
	}
}

Test(reader_s3, wrong_secret_is_an_access_error)
{
	struct sft_s3 s3;
	struct sf_options opt;
	struct sf_reader *r = NULL;
	char err[1024] = "";

	sft_s3_env(&s3);
	char *url = upload_fixture(&s3, "sparse");
	sf_options_init(&opt);
	sft_s3_options(&s3, &opt);
	opt.secret_access_key = "definitely-wrong";
	opt.max_attempts = 2;
	int rc = sf_reader_open(&r, url, &opt, err, sizeof(err));
	cr_assert_eq(rc, SF_EHTTP_403, "%d %s", rc, err);
	cr_assert(strstr(err, "definitely-wrong") == NULL, "secret leaked: %s", err);
	free(url);
}

Test(reader_s3, empty_prefix_is_no_snapshot_published)
{
	struct sft_s3 s3;
	struct sf_options opt;
	struct sf_reader *r = NULL;
	char err[1024] = "", *url = NULL;

	sft_s3_env(&s3);
	char *bucket = sft_unique_bucket();
	sft_s3_mkbucket(&s3, bucket);
	cr_assert(asprintf(&url, "s3://%s/nothing/here", bucket) > 0);
	sf_options_init(&opt);
	sft_s3_options(&s3, &opt);
	int rc = sf_reader_open(&r, url, &opt, err, sizeof(err));
	cr_assert_eq(rc, SF_ENOSNAPSHOT, "%d %s", rc, err);
	cr_assert(strstr(err, "no snapshot published at s3://") != NULL, "%s", err);
	free(url);
	free(bucket);
}

Test(reader_s3, unreachable_server_is_an_error_not_not_found)
{
	struct sf_options opt;
	struct sf_reader *r = NULL;
	char err[1024] = "";

	sf_options_init(&opt);
	opt.endpoint_url = "http://127.0.0.1:9"; /* discard port: refused */
	opt.access_key_id = "k";
	opt.secret_access_key = "s";
	opt.region = "us-east-1";
	opt.max_attempts = 2;
	opt.retry_budget_ms = 2000;
	opt.connect_timeout_ms = 500;
	int rc = sf_reader_open(&r, "s3://bucket/prefix", &opt, err, sizeof(err));
	cr_assert(rc < 0, "%d", rc);
	cr_assert_neq(rc, SF_ENOSNAPSHOT);
}
