/*
 * test_store_hedge.c -- tail-latency behaviour of the curl engine against
 * tests/helpers/httpd_fault on 127.0.0.1: hedged ranged GETs (a stalled
 * first request is raced by a twin on a fresh connection, with the right
 * bytes, the same If-Match, and 403/404/412 never turned into success; no
 * hedge for fast requests, large reads or without the flag; the s3://
 * backend hedges too), Retry-After on 503 SlowDown for ranged GETs, and
 * per-request deadlines.
 *
 * Timing: the only time assertions are generous "finished well before the
 * 5 s stall would have" upper bounds, and lower bounds that a correct
 * implementation cannot miss (a Retry-After of 1 s means at least 1 s).
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "httpd_fault.h"
#include "sf_test.h"
#include "store.h"

#define STALL_MS 5000
#define QUICK_MS 4000 /* "before the stall would have ended" */
#define BIG_LEN (1536 * 1024)

static char *dir;
static struct httpd_fault *srv;
static struct store *st;

static const char CONTENT[] = "0123456789abcdefghijklmnopqrstuvwxyz";

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static struct store *open_on(const char *prefix, int no_sign)
{
	struct sf_options opt;
	struct store *s = NULL;
	char err[256];

	sf_options_init(&opt);
	opt.max_attempts = 4;
	opt.retry_budget_ms = 20000;
	opt.request_timeout_ms = 10000;
	opt.connect_timeout_ms = 2000;
	if (no_sign) {
		opt.endpoint_url = httpd_fault_url(srv);
		opt.no_sign_request = 1;
		opt.region = "us-east-1";
	}
	cr_assert_eq(store_open(&s, prefix, &opt, err, sizeof(err)), 0, "%s",
		     err);
	store_set_backoff(s, 1, 20);
	return s;
}

static void write_in(const char *rel, const void *data, size_t len)
{
	char *p = NULL;

	cr_assert(asprintf(&p, "%s/%s", dir, rel) > 0);
	cr_assert_eq(sft_write_file(p, data, len), 0);
	free(p);
}

static void setup(void)
{
	uint8_t *big;
	char *p = NULL;
	size_t i;

	dir = sft_tmpdir();
	write_in("obj.bin", CONTENT, sizeof(CONTENT) - 1);
	big = malloc(BIG_LEN);
	cr_assert_not_null(big);
	for (i = 0; i < BIG_LEN; i++)
		big[i] = (uint8_t)(i * 7 + i / 251);
	write_in("big.bin", big, BIG_LEN);
	free(big);
	/* the s3:// backend, path style, sees /bkt/<key> */
	cr_assert(asprintf(&p, "%s/bkt", dir) > 0);
	cr_assert_eq(mkdir(p, 0755), 0);
	free(p);
	write_in("bkt/obj.bin", CONTENT, sizeof(CONTENT) - 1);
	cr_assert_eq(httpd_fault_start(&srv, dir), 0);
	st = open_on(httpd_fault_url(srv), 0);
}

static void teardown(void)
{
	store_close(st);
	httpd_fault_stop(srv);
	sft_rmrf(dir);
	free(dir);
}

TestSuite(store_hedge, .init = setup, .fini = teardown, .timeout = 120);

static char *url(const char *rel)
{
	char *u = NULL;

	cr_assert(asprintf(&u, "%s/%s", httpd_fault_url(srv), rel) > 0);
	return u;
}

/* A ranged GET of rel through s; returns the status code. */
static int get(struct store *s, const char *rel, uint64_t off, size_t len,
	       const struct store_range_opts *ro, uint8_t *buf, size_t *got,
	       struct store_info *info, char *err, size_t errlen)
{
	char *u = url(rel);
	int rc = store_get_range(s, u, off, len, ro, buf, got, info, err,
				 errlen);
	free(u);
	return rc;
}

static void warm_up(void)
{
	uint8_t buf[4];
	size_t got;
	char err[256] = "";

	cr_assert_eq(get(st, "obj.bin", 0, 4, NULL, buf, &got, NULL, err,
			 sizeof(err)), 0, "%s", err);
}

Test(store_hedge, stalled_request_is_hedged_on_a_fresh_connection)
{
	struct store_range_opts ro = {.hedge = 1};
	struct store_stats ss;
	struct store_info info;
	uint8_t buf[16];
	size_t got = 0;
	char err[256] = "";
	double t0;

	warm_up(); /* one connection, now idle in the pool */
	cr_expect_eq(httpd_fault_connections(srv), 1);
	httpd_fault_stall_next(srv, 1, STALL_MS);
	t0 = now_ms();
	cr_assert_eq(get(st, "obj.bin", 10, 6, &ro, buf, &got, &info, err,
			 sizeof(err)), 0, "%s", err);
	cr_expect_lt(now_ms() - t0, QUICK_MS);
	cr_expect_eq(got, 6);
	cr_expect(memcmp(buf, "abcdef", 6) == 0);
	cr_expect_eq(info.size, sizeof(CONTENT) - 1);
	cr_expect_neq(info.etag[0], '\0');
	store_stats(st, &ss);
	cr_expect_eq(ss.hedged, 1);
	cr_expect_eq(ss.range_requests, 2);
	cr_expect_eq(ss.retries, 0);
	cr_expect_eq(ss.failures, 0);
	/* the stalled request reused the warm connection; the hedge opened
	 * a new one */
	cr_expect_eq(httpd_fault_requests(srv), 3);
	cr_expect_eq(httpd_fault_connections(srv), 2);
	/* the surviving connection serves the next request */
	cr_assert_eq(get(st, "obj.bin", 0, 3, &ro, buf, &got, NULL, err,
			 sizeof(err)), 0, "%s", err);
	cr_expect(memcmp(buf, "012", 3) == 0);
	cr_expect_eq(httpd_fault_connections(srv), 2);
}

Test(store_hedge, hedge_is_pinned_to_the_same_etag)
{
	struct store_range_opts ro = {.hedge = 1};
	struct store_info hi, ri;
	struct store_stats ss;
	uint8_t buf[8];
	size_t got = 0;
	char err[256] = "";
	char *u = url("obj.bin");
	double t0;

	cr_assert_eq(store_head(st, u, &hi, err, sizeof(err)), 0, "%s", err);
	ro.if_match = hi.etag;
	httpd_fault_stall_next(srv, 1, STALL_MS);
	t0 = now_ms();
	cr_assert_eq(store_get_range(st, u, 30, 6, &ro, buf, &got, &ri, err,
				     sizeof(err)), 0, "%s", err);
	cr_expect_lt(now_ms() - t0, QUICK_MS);
	cr_expect(memcmp(buf, "uvwxyz", 6) == 0);
	cr_expect_str_eq(ri.etag, hi.etag);
	store_stats(st, &ss);
	cr_expect_eq(ss.hedged, 1);
	/* both the request and its hedge carried If-Match */
	cr_expect_eq(httpd_fault_if_match_requests(srv), 2);
	free(u);
}

Test(store_hedge, hedge_keeps_a_412)
{
	struct store_range_opts ro = {.hedge = 1, .if_match = "\"stale\""};
	struct store_stats ss;
	uint8_t buf[8];
	size_t got = 0;
	char err[256] = "";
	double t0;

	httpd_fault_stall_next(srv, 1, STALL_MS);
	t0 = now_ms();
	cr_expect_eq(get(st, "obj.bin", 0, 4, &ro, buf, &got, NULL, err,
			 sizeof(err)), SF_EHTTP_412, "%s", err);
	cr_expect_lt(now_ms() - t0, QUICK_MS);
	store_stats(st, &ss);
	cr_expect_eq(ss.hedged, 1);
	cr_expect_eq(ss.retries, 0);
	cr_expect_eq(ss.failures, 1);
	cr_expect_eq(httpd_fault_if_match_requests(srv), 2);
}

Test(store_hedge, hedge_keeps_a_404)
{
	struct store_range_opts ro = {.hedge = 1};
	struct store_stats ss;
	uint8_t buf[8];
	size_t got = 0;
	char err[256] = "";

	httpd_fault_stall_next(srv, 1, STALL_MS);
	cr_expect_eq(get(st, "missing.bin", 0, 4, &ro, buf, &got, NULL, err,
			 sizeof(err)), SF_EHTTP_404, "%s", err);
	store_stats(st, &ss);
	cr_expect_eq(ss.hedged, 1);
	cr_expect_eq(ss.retries, 0);
	cr_expect_eq(httpd_fault_requests(srv), 2);
}

Test(store_hedge, hedge_keeps_a_403)
{
	struct store_range_opts ro = {.hedge = 1};
	struct store_stats ss;
	uint8_t buf[8];
	size_t got = 0;
	char err[256] = "";
	double t0;

	/* both requests are refused; the first one only after a stall */
	httpd_fault_fail_next(srv, 2, 403, -1);
	httpd_fault_stall_next(srv, 1, STALL_MS);
	t0 = now_ms();
	cr_expect_eq(get(st, "obj.bin", 0, 4, &ro, buf, &got, NULL, err,
			 sizeof(err)), SF_EHTTP_403, "%s", err);
	cr_expect_lt(now_ms() - t0, QUICK_MS);
	store_stats(st, &ss);
	cr_expect_eq(ss.hedged, 1);
	cr_expect_eq(ss.retries, 0);
	/* and the object is still readable afterwards */
	cr_expect_eq(get(st, "obj.bin", 0, 4, &ro, buf, &got, NULL, err,
			 sizeof(err)), 0, "%s", err);
}

Test(store_hedge, no_hedge_when_requests_are_as_fast_as_usual)
{
	struct store_range_opts ro = {.hedge = 1};
	struct store_stats ss;
	uint8_t buf[8];
	size_t got = 0;
	char err[256] = "";
	int i;

	/* every answer takes 100 ms; before 8 samples exist the delay is
	 * the cold one (1 s here), after that 3 x p90 >= 300 ms */
	store_set_hedge(st, 20, 1000);
	cr_expect_eq(store_hedge_delay_ms(st), 1000);
	httpd_fault_set_latency(srv, 100);
	for (i = 0; i < 16; i++)
		cr_assert_eq(get(st, "obj.bin", (uint64_t)i, 4, &ro, buf, &got,
				 NULL, err, sizeof(err)), 0, "%s", err);
	cr_expect_geq(store_hedge_delay_ms(st), 300);
	store_stats(st, &ss);
	cr_expect_eq(ss.hedged, 0);
	cr_expect_eq(httpd_fault_requests(srv), 16);
}

Test(store_hedge, hedge_delay_follows_the_floor_and_cold_settings)
{
	cr_expect_eq(store_hedge_delay_ms(st), 250);
	store_set_hedge(st, 400, 0);
	cr_expect_eq(store_hedge_delay_ms(st), 400);
	store_set_hedge(st, 10, 30);
	cr_expect_eq(store_hedge_delay_ms(st), 30);
	store_set_hedge(st, -1, -1); /* unchanged */
	cr_expect_eq(store_hedge_delay_ms(st), 30);
}

Test(store_hedge, no_hedge_without_the_flag_or_for_large_reads)
{
	struct store_range_opts plain = {0}, ro = {.hedge = 1};
	struct store_stats ss;
	uint8_t *buf = malloc(BIG_LEN);
	uint8_t *want;
	size_t got = 0, n;
	char err[256] = "", *p = NULL;

	cr_assert_not_null(buf);
	httpd_fault_stall_next(srv, 1, 1200);
	cr_assert_eq(get(st, "obj.bin", 0, 4, &plain, buf, &got, NULL, err,
			 sizeof(err)), 0, "%s", err);
	cr_expect(memcmp(buf, "0123", 4) == 0);
	/* more than 1 MiB: never hedged */
	httpd_fault_stall_next(srv, 1, 1200);
	cr_assert_eq(get(st, "big.bin", 0, BIG_LEN, &ro, buf, &got, NULL, err,
			 sizeof(err)), 0, "%s", err);
	cr_expect_eq(got, BIG_LEN);
	cr_assert(asprintf(&p, "%s/big.bin", dir) > 0);
	want = sft_read_file(p, &n);
	cr_assert_eq(n, BIG_LEN);
	cr_expect(memcmp(buf, want, BIG_LEN) == 0);
	store_stats(st, &ss);
	cr_expect_eq(ss.hedged, 0);
	cr_expect_eq(httpd_fault_requests(srv), 2);
	free(want);
	free(p);
	free(buf);
}

Test(store_hedge, hedges_are_rationed)
{
	struct store_range_opts ro = {.hedge = 1};
	struct store_stats ss;
	uint8_t buf[8];
	size_t got = 0;
	char err[256] = "";
	int i;

	/* Every request stalls; its hedge is fast, so the recent latency
	 * (that of the winners) stays low and each one qualifies. The
	 * bucket starts with 10 hedges' worth and earns 1/20 of a hedge
	 * per request: the first 10 are hedged, the next 4 are not. */
	store_set_hedge(st, 20, 20);
	for (i = 0; i < 14; i++) {
		httpd_fault_stall_next(srv, 1, 300);
		cr_assert_eq(get(st, "obj.bin", 0, 4, &ro, buf, &got, NULL,
				 err, sizeof(err)), 0, "%s", err);
		cr_expect(memcmp(buf, "0123", 4) == 0);
	}
	store_stats(st, &ss);
	cr_expect_eq(ss.hedged, 10);
	cr_expect_eq(httpd_fault_requests(srv), 24);
}

Test(store_hedge, s3_backend_hedges_too)
{
	struct store *s = open_on("s3://bkt", 1);
	struct store_range_opts ro = {.hedge = 1};
	struct store_stats ss;
	uint8_t buf[8];
	size_t got = 0;
	char err[256] = "";
	double t0;

	httpd_fault_stall_next(srv, 1, STALL_MS);
	t0 = now_ms();
	cr_assert_eq(store_get_range(s, "s3://bkt/obj.bin", 4, 4, &ro, buf,
				     &got, NULL, err, sizeof(err)), 0, "%s",
		     err);
	cr_expect_lt(now_ms() - t0, QUICK_MS);
	cr_expect(memcmp(buf, "4567", 4) == 0);
	store_stats(s, &ss);
	cr_expect_eq(ss.hedged, 1);
	store_close(s);
}

struct reader_arg {
	int id;
	int bad;
};

static void *reader_main(void *p)
{
	struct reader_arg *ra = p;
	struct store_range_opts ro = {.hedge = 1};
	uint8_t buf[8];
	size_t got;
	char err[256];
	int i;

	for (i = 0; i < 15; i++) {
		uint64_t off = (uint64_t)((ra->id * 7 + i) % 30);
		if (get(st, "obj.bin", off, 6, &ro, buf, &got, NULL, err,
			sizeof(err)) != 0 || got != 6 ||
		    memcmp(buf, CONTENT + off, 6) != 0)
			ra->bad++;
	}
	return NULL;
}

Test(store_hedge, concurrent_hedged_reads_stay_correct)
{
	struct reader_arg ra[4];
	pthread_t t[4];
	struct store_stats ss;
	int i;

	store_set_hedge(st, 20, 20);
	httpd_fault_stall_next(srv, 6, 800);
	for (i = 0; i < 4; i++) {
		ra[i].id = i;
		ra[i].bad = 0;
		cr_assert_eq(pthread_create(&t[i], NULL, reader_main, &ra[i]),
			     0);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		cr_expect_eq(ra[i].bad, 0, "thread %d", i);
	}
	store_stats(st, &ss);
	cr_expect_eq(ss.range_requests, 60);
	cr_expect_eq(ss.failures, 0);
	cr_expect_geq(ss.hedged, 1);
}

/* ---- Retry-After and deadlines ------------------------------------------ */

Test(store_hedge, slowdown_retry_after_is_honoured_for_ranged_gets)
{
	struct store *s = open_on("s3://bkt", 1);
	struct store_stats ss;
	uint8_t buf[8];
	size_t got = 0;
	char err[256] = "";
	double t0, dt;

	/* 503 SlowDown with Retry-After: 1 over s3:// and http:// */
	httpd_fault_fail_next(srv, 1, 503, 1);
	t0 = now_ms();
	cr_assert_eq(store_get_range(s, "s3://bkt/obj.bin", 0, 4, NULL, buf,
				     &got, NULL, err, sizeof(err)), 0, "%s",
		     err);
	dt = now_ms() - t0;
	cr_expect_geq(dt, 1000.0, "retried after %.0f ms", dt);
	cr_expect(memcmp(buf, "0123", 4) == 0);
	store_stats(s, &ss);
	cr_expect_eq(ss.retries, 1);
	store_close(s);

	httpd_fault_fail_next(srv, 1, 503, 1);
	t0 = now_ms();
	cr_assert_eq(get(st, "obj.bin", 0, 4, NULL, buf, &got, NULL, err,
			 sizeof(err)), 0, "%s", err);
	dt = now_ms() - t0;
	cr_expect_geq(dt, 1000.0, "retried after %.0f ms", dt);
	cr_expect_eq(httpd_fault_requests(srv), 4);
}

Test(store_hedge, retry_after_beyond_the_deadline_gives_up_at_once)
{
	struct store_range_opts ro = {.deadline_ms = 1500};
	struct store_stats ss;
	uint8_t buf[8];
	size_t got = 0;
	char err[256] = "";
	double t0;

	/* waiting 3 s would overrun the 1.5 s deadline: no second request */
	httpd_fault_fail_next(srv, 5, 503, 3);
	t0 = now_ms();
	cr_expect_eq(get(st, "obj.bin", 0, 4, &ro, buf, &got, NULL, err,
			 sizeof(err)), SF_ETIMEDOUT, "%s", err);
	cr_expect_lt(now_ms() - t0, 2900.0);
	cr_expect_eq(httpd_fault_requests(srv), 1);
	/* a Retry-After that fits is waited for, then the retry succeeds */
	httpd_fault_clear(srv);
	httpd_fault_fail_next(srv, 1, 503, 1);
	ro.deadline_ms = 4000;
	cr_expect_eq(get(st, "obj.bin", 0, 4, &ro, buf, &got, NULL, err,
			 sizeof(err)), 0, "%s", err);
	store_stats(st, &ss);
	cr_expect_eq(ss.retries, 1);
}

Test(store_hedge, deadline_bounds_a_stalled_request_with_or_without_hedge)
{
	struct store_range_opts ro = {.deadline_ms = 600};
	uint8_t buf[8];
	size_t got = 0;
	char err[256] = "";
	double t0;
	int hedge;

	for (hedge = 0; hedge <= 1; hedge++) {
		ro.hedge = hedge;
		httpd_fault_stall_next(srv, 100, STALL_MS);
		t0 = now_ms();
		cr_expect_eq(get(st, "obj.bin", 0, 4, &ro, buf, &got, NULL,
				 err, sizeof(err)), SF_ETIMEDOUT,
			     "hedge %d: %s", hedge, err);
		cr_expect_lt(now_ms() - t0, QUICK_MS, "hedge %d", hedge);
	}
}
