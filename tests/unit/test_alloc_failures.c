/*
 * test_alloc_failures.c -- the library never aborts and never lies when
 * memory runs out (curl's "torture" idea). This test is linked with
 * -Wl,--wrap=malloc,calloc,realloc so every allocation made by shardyfs'
 * own code goes through a counter; for N = 1, 2, ... the N-th allocation
 * fails, and a full open / get / multi_get / iterate / close cycle must
 * then either succeed with the right values or fail with a negative code,
 * never crash, leak (AddressSanitizer checks at exit), or answer "not
 * found" for a key that is there.
 */
#include <criterion/criterion.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "httpd_fault.h"
#include "sf_test.h"
#include "shardyfs.h"

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t m);
void *__real_realloc(void *p, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t m);
void *__wrap_realloc(void *p, size_t n);

static _Atomic long alloc_count;
static _Atomic long fail_at = -1; /* -1: never */

static int should_fail(void)
{
	long f = atomic_load(&fail_at);
	return f >= 0 && atomic_fetch_add(&alloc_count, 1) == f;
}

void *__wrap_malloc(size_t n)
{
	return should_fail() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t m)
{
	return should_fail() ? NULL : __real_calloc(n, m);
}

void *__wrap_realloc(void *p, size_t n)
{
	return should_fail() ? NULL : __real_realloc(p, n);
}

TestSuite(alloc_failures, .timeout = 600);

static char *cache_dir; /* download cache of the http test (NULL: default) */

/* One full cycle. Returns 1 when everything succeeded. */
static int cycle(const char *url, enum sf_access_mode mode)
{
	struct sf_options opt;
	struct sf_reader *r = NULL;
	int ok = 1;

	sf_options_init(&opt);
	opt.access_mode = mode;
	opt.threads = 2;
	opt.cache_bytes = 64 * 1024;
	opt.log_level = SF_LOG_ERROR;
	opt.log_fn = NULL;
	opt.cache_dir = cache_dir;
	int rc = sf_reader_open(&r, url, &opt, NULL, 0);
	if (rc) {
		cr_assert(rc < 0 && rc != SF_NOTFOUND, "open: %d", rc);
		return 0;
	}
	/* Keys 0..40 of the u64 fixture: present ones are the answers'. */
	static const uint64_t present[] = {0, 1, 255, 256};
	for (size_t i = 0; i < 4; i++) {
		struct sf_key k = sf_key_uint(present[i]);
		void *v = NULL;
		size_t len;
		rc = sf_get(r, &k, &v, &len, NULL, 0);
		cr_assert(rc <= 0, "key %llu reported %d", (unsigned long long)present[i], rc);
		if (rc)
			ok = 0;
		sf_free(v);
	}
	struct sf_key keys[4];
	struct sf_result res[4];
	for (size_t i = 0; i < 4; i++)
		keys[i] = sf_key_uint(present[i]);
	rc = sf_multi_get(r, keys, 4, res, NULL, 0);
	for (size_t i = 0; i < 4; i++) {
		cr_assert(res[i].status <= 0, "multi_get key %zu reported %d", i, res[i].status);
		if (res[i].status == 0)
			cr_assert_not_null(res[i].value);
		sf_free(res[i].value);
	}
	if (rc)
		ok = 0;
	struct sf_snapshot *s = sf_reader_acquire(r);
	struct sf_iter *it = NULL;
	if (sf_iter_open(s, 0, &it, NULL, 0) == 0) {
		const uint8_t *k;
		size_t kl;
		uint64_t vl;
		while ((rc = sf_iter_next(it, &k, &kl, &vl, NULL, 0)) == 0)
			;
		cr_assert(rc == SF_NOTFOUND || rc < 0);
		sf_iter_close(it);
	} else {
		ok = 0;
	}
	sf_snapshot_release(s);
	sf_reader_close(r);
	return ok;
}

static void torture_url(const char *url, enum sf_access_mode mode);

static void torture(enum sf_access_mode mode)
{
	char *url = sft_fixture_url("u64");
	torture_url(url, mode);
	free(url);
}

static void torture_url(const char *url, enum sf_access_mode mode)
{
	long n;

	/* Learn how many allocations a clean cycle makes. */
	atomic_store(&alloc_count, 0);
	atomic_store(&fail_at, 1L << 60);
	cr_assert(cycle(url, mode), "a clean cycle must succeed");
	long total = atomic_load(&alloc_count);
	cr_assert(total > 10);
	cr_log_info("%ld allocations in a clean cycle", total);
	/* Every one of the first allocations, then a sample of the rest. */
	for (n = 0; n < total; n += n < 600 ? 1 : 7) {
		atomic_store(&alloc_count, 0);
		atomic_store(&fail_at, n);
		cycle(url, mode);
	}
	atomic_store(&fail_at, -1);
}

Test(alloc_failures, download_mode_survives_every_failed_allocation)
{
	torture(SF_ACCESS_DOWNLOAD);
}

Test(alloc_failures, range_mode_survives_every_failed_allocation)
{
	torture(SF_ACCESS_RANGE);
}

Test(alloc_failures, downloads_over_http_survive_every_failed_allocation)
{
	struct httpd_fault *h = NULL;
	char *root = sft_data("shardyfusion/u64/snapshot");

	cr_assert_eq(httpd_fault_start(&h, root), 0);
	cache_dir = sft_tmpdir();
	torture_url(httpd_fault_url(h), SF_ACCESS_DOWNLOAD);
	httpd_fault_stop(h);
	sft_rmrf(cache_dir);
	free(cache_dir);
	cache_dir = NULL;
	free(root);
}
