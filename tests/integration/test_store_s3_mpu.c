/*
 * test_store_s3_mpu.c -- multipart uploads of the s3:// backend against
 * moto (signature checking on, S3's 5 MiB minimum part size enforced):
 * files and buffers above the threshold go up in parts and read back
 * byte-exact (whole, ranged across part boundaries, HEAD), the ETag is the
 * multipart "md5-N" form, small objects still use one PUT, and a failed
 * completion aborts the upload (no pending upload is left behind, no
 * object appears). Every test uses its own bucket.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sf_test.h"
#include "store.h"

#define MIB (1024u * 1024u)

static struct sft_s3 s3env;
static char *bucket;
static char *dir;
static struct store *st;

static void setup(void)
{
	struct sf_options opt;
	char err[512] = "";

	sft_s3_env(&s3env);
	bucket = sft_unique_bucket();
	sft_s3_mkbucket(&s3env, bucket);
	dir = sft_tmpdir();
	sf_options_init(&opt);
	sft_s3_options(&s3env, &opt);
	opt.max_attempts = 2;
	cr_assert_eq(store_open(&st, "s3://x", &opt, err, sizeof(err)), 0,
		     "%s", err);
	/* parts of 5 MiB (S3's minimum) above 6 MiB */
	store_set_multipart(st, 6 * MIB, 5 * MIB);
}

static void teardown(void)
{
	store_close(st);
	sft_rmrf(dir);
	free(dir);
	free(bucket);
}

TestSuite(store_s3_mpu, .init = setup, .fini = teardown, .timeout = 300);

static char *url(const char *key)
{
	char *u = NULL;

	cr_assert(asprintf(&u, "s3://%s/%s", bucket, key) > 0);
	return u;
}

static uint8_t *pattern(size_t n, unsigned seed)
{
	uint8_t *p = malloc(n);
	uint32_t x = seed * 2654435761u + 1;
	size_t i;

	cr_assert_not_null(p);
	for (i = 0; i < n; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (uint8_t)x;
	}
	return p;
}

/* Reads u back whole and in ranges around the part boundaries. */
static void expect_object(const char *u, const uint8_t *want, size_t n,
			  const char *etag)
{
	struct store_info hi, gi;
	uint8_t *data = NULL, buf[64];
	size_t len = 0, got = 0;
	char err[512] = "";
	uint64_t b;

	cr_assert_eq(store_get(st, u, n + 1, &data, &len, &gi, err,
			       sizeof(err)), 0, "%s", err);
	cr_assert_eq(len, n);
	cr_expect(memcmp(data, want, n) == 0, "content differs");
	free(data);
	cr_assert_eq(store_head(st, u, &hi, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(hi.size, n);
	cr_expect_str_eq(hi.etag, etag);
	for (b = 5 * MIB; b < n; b += 5 * MIB) {
		cr_assert_eq(store_get_range(st, u, b - 32, sizeof(buf), NULL,
					     buf, &got, NULL, err,
					     sizeof(err)), 0, "%s", err);
		cr_expect_eq(got, sizeof(buf));
		cr_expect(memcmp(buf, want + b - 32, sizeof(buf)) == 0,
			  "bytes around %llu differ", (unsigned long long)b);
	}
}

Test(store_s3_mpu, large_file_goes_up_in_parts)
{
	size_t n = 10 * MIB + 12345;
	uint8_t *want = pattern(n, 1);
	struct store_info pi;
	struct store_stats ss;
	char err[512] = "", *path = NULL;
	char *u = url("big/file.bin");
	size_t el;

	cr_assert(asprintf(&path, "%s/big.bin", dir) > 0);
	cr_assert_eq(sft_write_file(path, want, n), 0);
	cr_assert_eq(store_put_file(st, u, path, NULL, &pi, err, sizeof(err)),
		     0, "%s", err);
	/* the multipart ETag: "<md5 of the part md5s>-3" */
	el = strlen(pi.etag);
	cr_assert_gt(el, 4, "%s", pi.etag);
	cr_expect_str_eq(pi.etag + el - 3, "-3\"", "%s", pi.etag);
	cr_expect_eq(pi.size, n);
	store_stats(st, &ss);
	/* create + 3 parts + complete */
	cr_expect_eq(ss.put_requests, 5);
	cr_expect_geq(ss.bytes_out, n);
	expect_object(u, want, n, pi.etag);
	free(path);
	free(want);
	free(u);
}

Test(store_s3_mpu, large_buffer_goes_up_in_parts)
{
	size_t n = 5 * MIB + 1000;
	uint8_t *want = pattern(n, 2);
	struct store_info pi;
	char err[512] = "";
	char *u = url("buf with space.bin");
	size_t el;

	store_set_multipart(st, 5 * MIB, 0);
	cr_assert_eq(store_put(st, u, want, n, "application/x-test", &pi, err,
			       sizeof(err)), 0, "%s", err);
	el = strlen(pi.etag);
	cr_assert_gt(el, 4, "%s", pi.etag);
	cr_expect_str_eq(pi.etag + el - 3, "-2\"", "%s", pi.etag);
	expect_object(u, want, n, pi.etag);
	free(want);
	free(u);
}

Test(store_s3_mpu, small_objects_use_one_put)
{
	size_t n = 6 * MIB; /* not larger than the threshold */
	uint8_t *want = pattern(n, 3);
	struct store_info pi;
	struct store_stats ss;
	char err[512] = "";
	char *u = url("small.bin");

	cr_assert_eq(store_put(st, u, want, n, NULL, &pi, err, sizeof(err)),
		     0, "%s", err);
	cr_expect_null(strchr(pi.etag, '-'), "%s", pi.etag);
	store_stats(st, &ss);
	cr_expect_eq(ss.put_requests, 1);
	expect_object(u, want, n, pi.etag);
	free(want);
	free(u);
}

Test(store_s3_mpu, failed_completion_aborts_the_upload)
{
	size_t n = 3 * MIB + 5;
	uint8_t *want = pattern(n, 4), *data = NULL;
	char err[512] = "", *env, *cmd = NULL, *out = NULL, *path = NULL;
	char *u = url("too-small-parts.bin");
	size_t len = 0;
	int rc;

	/* 1 MiB parts are below S3's minimum: CompleteMultipartUpload
	 * answers EntityTooSmall after every part went up */
	store_set_multipart(st, 1 * MIB, 1 * MIB);
	cr_assert(asprintf(&path, "%s/f.bin", dir) > 0);
	cr_assert_eq(sft_write_file(path, want, n), 0);
	rc = store_put_file(st, u, path, NULL, NULL, err, sizeof(err));
	cr_expect_eq(rc, SF_EHTTP, "%d: %s", rc, err);
	cr_expect(strstr(err, "EntityTooSmall") != NULL, "%s", err);
	cr_expect_eq(store_get(st, u, n + 1, &data, &len, NULL, err,
			       sizeof(err)), SF_EHTTP_404, "%s", err);
	/* nothing pending: the upload was aborted */
	env = sft_s3_cli_env(&s3env);
	cr_assert(asprintf(&cmd, "%s aws --endpoint-url '%s' s3api "
			   "list-multipart-uploads --bucket '%s' --output "
			   "json", env, s3env.endpoint, bucket) > 0);
	cr_assert_eq(sft_run(cmd, &out, NULL, NULL), 0, "%s", cmd);
	cr_expect_null(strstr(out ? out : "", "UploadId"), "%s", out);
	free(out);
	free(cmd);
	free(env);
	free(path);
	free(want);
	free(u);
}
