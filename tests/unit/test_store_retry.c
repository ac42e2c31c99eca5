/*
 * test_store_retry.c -- the http(s):// backend and the retry engine
 * against tests/helpers/httpd_fault on 127.0.0.1: plain GET/HEAD/ranged
 * GET, If-Match and 416, a server that ignores Range, then faults: 503,
 * 500 with Retry-After, 429 and connection resets are retried and succeed
 * within the budget; 403 and 404 are not retried; exhausting attempts
 * gives the last error and exhausting the budget SF_ETIMEDOUT; a slow
 * answer is cut by the request timeout / deadline. Nothing asserts on
 * elapsed time: only outcomes and request counts.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "httpd_fault.h"
#include "sf_test.h"
#include "store.h"

static char *dir;
static struct httpd_fault *srv;
static struct store *st;

static const char CONTENT[] = "0123456789abcdefghijklmnopqrstuvwxyz";

static struct store *open_with(int max_attempts, long budget_ms,
			       long timeout_ms)
{
	struct sf_options opt;
	struct store *s = NULL;
	char err[256];

	sf_options_init(&opt);
	opt.max_attempts = max_attempts;
	opt.retry_budget_ms = budget_ms;
	opt.request_timeout_ms = timeout_ms;
	opt.connect_timeout_ms = 2000;
	cr_assert_eq(store_open(&s, httpd_fault_url(srv), &opt, err,
				sizeof(err)), 0, "%s", err);
	store_set_backoff(s, 1, 20);
	return s;
}

static void setup(void)
{
	char *p = NULL;

	dir = sft_tmpdir();
	cr_assert(asprintf(&p, "%s/obj.bin", dir) > 0);
	cr_assert_eq(sft_write_file(p, CONTENT, sizeof(CONTENT) - 1), 0);
	free(p);
	cr_assert(asprintf(&p, "%s/sub dir", dir) > 0);
	cr_assert_eq(mkdir(p, 0755), 0);
	free(p);
	cr_assert(asprintf(&p, "%s/sub dir/a=b%%c", dir) > 0);
	cr_assert_eq(sft_write_file(p, "odd", 3), 0);
	free(p);
	cr_assert_eq(httpd_fault_start(&srv, dir), 0);
	st = open_with(4, 20000, 5000);
}

static void teardown(void)
{
	store_close(st);
	httpd_fault_stop(srv);
	sft_rmrf(dir);
	free(dir);
}

TestSuite(store_retry, .init = setup, .fini = teardown, .timeout = 120);

static char *url(const char *rel)
{
	char *u = NULL;

	cr_assert(asprintf(&u, "%s/%s", httpd_fault_url(srv), rel) > 0);
	return u;
}

static int range(struct store *s, const char *rel, uint64_t off, size_t len,
		 uint8_t *buf, size_t *got, struct store_info *info,
		 char *err, size_t errlen)
{
	char *u = url(rel);
	int rc = store_get_range(s, u, off, len, NULL, buf, got, info, err,
				 errlen);
	free(u);
	return rc;
}

Test(store_retry, http_get_head_and_range_work)
{
	struct store_info gi, hi, ri;
	uint8_t *data = NULL, buf[64];
	size_t len = 0, got = 0;
	char err[256] = "";
	char *u = url("obj.bin");

	cr_assert_eq(store_get(st, u, 1000, &data, &len, &gi, err,
			       sizeof(err)), 0, "%s", err);
	cr_expect_eq(len, sizeof(CONTENT) - 1);
	cr_expect_str_eq((char *)data, CONTENT);
	cr_expect_eq(gi.size, len);
	cr_assert_eq(store_head(st, u, &hi, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(hi.size, len);
	cr_expect_str_eq(hi.etag, gi.etag);
	cr_expect_gt(hi.mtime, 0);
	cr_assert_eq(range(st, "obj.bin", 10, 6, buf, &got, &ri, err,
			   sizeof(err)), 0, "%s", err);
	cr_expect_eq(got, 6);
	cr_expect(memcmp(buf, "abcdef", 6) == 0);
	cr_expect_eq(ri.size, len);
	cr_expect_str_eq(ri.etag, gi.etag);
	/* cut short at the end, 416 past it */
	cr_assert_eq(range(st, "obj.bin", 30, 64, buf, &got, NULL, err,
			   sizeof(err)), 0, "%s", err);
	cr_expect_eq(got, 6);
	cr_expect(memcmp(buf, "uvwxyz", 6) == 0);
	cr_expect_eq(range(st, "obj.bin", 36, 4, buf, &got, NULL, err,
			   sizeof(err)), SF_EHTTP_416);
	/* escaped names */
	cr_assert_eq(range(st, "sub%20dir/a%3Db%25c", 0, 3, buf, &got, NULL,
			   err, sizeof(err)), 0, "%s", err);
	cr_expect(memcmp(buf, "odd", 3) == 0);
	free(data);
	free(u);
}

Test(store_retry, http_if_match_and_too_big)
{
	struct store_info info;
	struct store_range_opts ro = {0};
	uint8_t buf[8], *data = NULL;
	size_t got, len;
	char err[256] = "";
	char *u = url("obj.bin");

	cr_assert_eq(store_head(st, u, &info, err, sizeof(err)), 0, "%s", err);
	ro.if_match = info.etag;
	cr_expect_eq(store_get_range(st, u, 0, 4, &ro, buf, &got, NULL, err,
				     sizeof(err)), 0, "%s", err);
	ro.if_match = "\"not-it\"";
	cr_expect_eq(store_get_range(st, u, 0, 4, &ro, buf, &got, NULL, err,
				     sizeof(err)), SF_EHTTP_412);
	cr_expect_eq(store_get(st, u, 10, &data, &len, NULL, err, sizeof(err)),
		     SF_ETOOBIG);
	cr_expect_null(data);
	free(u);
}

Test(store_retry, server_ignoring_range_still_gives_the_slice)
{
	uint8_t buf[8];
	size_t got = 0;
	char err[256] = "";

	httpd_fault_ignore_range(srv, 1);
	cr_assert_eq(range(st, "obj.bin", 12, 5, buf, &got, NULL, err,
			   sizeof(err)), 0, "%s", err);
	cr_expect_eq(got, 5);
	cr_expect(memcmp(buf, "cdefg", 5) == 0);
	cr_assert_eq(range(st, "obj.bin", 33, 8, buf, &got, NULL, err,
			   sizeof(err)), 0, "%s", err);
	cr_expect_eq(got, 3);
	cr_expect(memcmp(buf, "xyz", 3) == 0);
	cr_expect_eq(range(st, "obj.bin", 40, 8, buf, &got, NULL, err,
			   sizeof(err)), SF_EHTTP_416);
}

Test(store_retry, missing_is_404_and_not_retried)
{
	struct store_stats ss;
	uint8_t buf[4];
	size_t got;
	char err[256] = "";

	cr_expect_eq(range(st, "nope", 0, 4, buf, &got, NULL, err,
			   sizeof(err)), SF_EHTTP_404);
	store_stats(st, &ss);
	cr_expect_eq(ss.retries, 0);
	cr_expect_eq(httpd_fault_requests(srv), 1);
}

Test(store_retry, http_list_and_put_are_unsupported)
{
	char err[256] = "";
	char *u = url("x");

	cr_expect_eq(store_put(st, u, "a", 1, NULL, NULL, err, sizeof(err)),
		     SF_EUNSUPPORTED);
	free(u);
}

struct fault_case {
	int status;      /* 0 = reset */
	int retry_after; /* -1 = none */
};

static void expect_retried(int status, int retry_after)
{
	struct store_stats ss;
	uint8_t buf[8];
	size_t got = 0;
	char err[256] = "";

	if (status)
		httpd_fault_fail_next(srv, 2, status, retry_after);
	else
		httpd_fault_reset_next(srv, 2);
	cr_assert_eq(range(st, "obj.bin", 0, 4, buf, &got, NULL, err,
			   sizeof(err)), 0, "status %d: %s", status, err);
	cr_expect(memcmp(buf, "0123", 4) == 0);
	store_stats(st, &ss);
	cr_expect_eq(ss.retries, 2, "status %d", status);
	cr_expect_eq(ss.range_requests, 1);
	cr_expect_eq(ss.failures, 0);
	cr_expect_eq(httpd_fault_requests(srv), 3);
}

Test(store_retry, retries_503_then_succeeds)
{
	expect_retried(503, -1);
}

Test(store_retry, retries_500_with_retry_after)
{
	expect_retried(500, 1);
}

Test(store_retry, retries_429)
{
	expect_retried(429, 0);
}

Test(store_retry, retries_connection_resets)
{
	expect_retried(0, -1);
}

Test(store_retry, whole_get_and_head_retry_too)
{
	struct store_stats ss;
	uint8_t *data = NULL;
	size_t len;
	char err[256] = "";
	char *u = url("obj.bin");

	httpd_fault_fail_next(srv, 1, 502, -1);
	cr_assert_eq(store_get(st, u, 100, &data, &len, NULL, err,
			       sizeof(err)), 0, "%s", err);
	cr_expect_eq(len, sizeof(CONTENT) - 1);
	free(data);
	httpd_fault_reset_next(srv, 1);
	cr_assert_eq(store_head(st, u, NULL, err, sizeof(err)), 0, "%s", err);
	store_stats(st, &ss);
	/* a reset on a reused connection may be retried by curl itself */
	cr_expect_geq(ss.retries, 1);
	cr_expect_eq(httpd_fault_requests(srv), 4);
	free(u);
}

Test(store_retry, get_to_fd_restarts_cleanly_after_a_failure)
{
	char err[256] = "", *p = NULL;
	uint8_t *back;
	size_t n;
	char *u = url("obj.bin");
	int fd;

	cr_assert(asprintf(&p, "%s/out", dir) > 0);
	fd = open(p, O_CREAT | O_RDWR | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "HDR", 3), 3);
	httpd_fault_fail_next(srv, 1, 503, -1);
	cr_assert_eq(store_get_to_fd(st, u, fd, 0, NULL, NULL, err, sizeof(err)),
		     0, "%s", err);
	close(fd);
	back = sft_read_file(p, &n);
	cr_expect_eq(n, 3 + sizeof(CONTENT) - 1);
	cr_expect(memcmp(back + 3, CONTENT, sizeof(CONTENT) - 1) == 0);
	free(back);
	free(p);
	free(u);
}

Test(store_retry, forbidden_is_not_retried)
{
	struct store_stats ss;
	uint8_t buf[8];
	size_t got;
	char err[256] = "";

	httpd_fault_fail_next(srv, 3, 403, -1);
	cr_expect_eq(range(st, "obj.bin", 0, 4, buf, &got, NULL, err,
			   sizeof(err)), SF_EHTTP_403);
	store_stats(st, &ss);
	cr_expect_eq(ss.retries, 0);
	cr_expect_eq(ss.failures, 1);
	cr_expect_eq(httpd_fault_requests(srv), 1);
}

Test(store_retry, attempts_run_out_with_the_last_error)
{
	struct store *s = open_with(3, 20000, 5000);
	struct store_stats ss;
	uint8_t buf[8];
	size_t got;
	char err[256] = "";

	httpd_fault_fail_next(srv, 100, 503, -1);
	cr_expect_eq(range(s, "obj.bin", 0, 4, buf, &got, NULL, err,
			   sizeof(err)), SF_EHTTP, "%s", err);
	cr_expect(strstr(err, "503") != NULL, "%s", err);
	cr_expect_eq(httpd_fault_requests(srv), 3);
	store_stats(s, &ss);
	cr_expect_eq(ss.retries, 2);
	store_close(s);
}

Test(store_retry, budget_exhaustion_is_etimedout)
{
	/* Retry-After (5 s) is longer than the whole budget (300 ms): the
	 * engine gives up at once instead of sleeping past it. */
	struct store *s = open_with(10, 300, 5000);
	uint8_t buf[8];
	size_t got;
	char err[256] = "";

	httpd_fault_fail_next(srv, 100, 503, 5);
	cr_expect_eq(range(s, "obj.bin", 0, 4, buf, &got, NULL, err,
			   sizeof(err)), SF_ETIMEDOUT, "%s", err);
	cr_expect_eq(httpd_fault_requests(srv), 1);
	store_close(s);
}

Test(store_retry, slow_answers_are_cut_by_the_request_timeout)
{
	struct store *s = open_with(1, 20000, 200);
	uint8_t buf[8];
	size_t got;
	char err[256] = "";

	httpd_fault_delay_next(srv, 1, 5000);
	cr_expect_eq(range(s, "obj.bin", 0, 4, buf, &got, NULL, err,
			   sizeof(err)), SF_ETIMEDOUT, "%s", err);
	store_close(s);
	/* with a second attempt allowed, the retry succeeds */
	s = open_with(2, 20000, 200);
	httpd_fault_delay_next(srv, 1, 5000);
	cr_expect_eq(range(s, "obj.bin", 0, 4, buf, &got, NULL, err,
			   sizeof(err)), 0, "%s", err);
	store_close(s);
}

Test(store_retry, range_deadline_bounds_all_attempts)
{
	struct store_range_opts ro = {.deadline_ms = 300};
	uint8_t buf[8];
	size_t got;
	char err[256] = "";
	char *u = url("obj.bin");

	httpd_fault_delay_next(srv, 100, 5000);
	cr_expect_eq(store_get_range(st, u, 0, 4, &ro, buf, &got, NULL, err,
				     sizeof(err)), SF_ETIMEDOUT, "%s", err);
	free(u);
}

Test(store_retry, connection_refused_is_enet)
{
	struct sf_options opt;
	struct store *s = NULL;
	uint8_t buf[4];
	size_t got;
	char err[256] = "", u[64];
	int port = httpd_fault_port(srv);

	/* stop the server so that the port refuses connections */
	httpd_fault_stop(srv);
	srv = NULL;
	cr_assert_eq(httpd_fault_start(&srv, dir), 0);
	sf_options_init(&opt);
	opt.max_attempts = 2;
	cr_assert_eq(store_open(&s, "http://127.0.0.1:1", &opt, err,
				sizeof(err)), 0);
	store_set_backoff(s, 1, 5);
	snprintf(u, sizeof(u), "http://127.0.0.1:%d/obj.bin", port);
	/* port 1 on loopback is closed */
	cr_expect_eq(store_get_range(s, "http://127.0.0.1:1/obj.bin", 0, 4,
				     NULL, buf, &got, NULL, err, sizeof(err)),
		     SF_ENET, "%s", err);
	store_close(s);
}
