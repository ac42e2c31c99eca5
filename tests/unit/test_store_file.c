/*
 * test_store_file.c -- the file:// backend and the URL helpers of store.h:
 * objects in a private temp dir behave like S3 objects (404, 416, 412 via
 * synthetic ETags, atomic PUT with parent creation, sorted LIST with
 * delimiter semantics, counters).
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sf_test.h"
#include "store.h"

static char *dir;
static char *base; /* file://<dir> */
static struct store *st;

static void setup(void)
{
	char err[256];

	dir = sft_tmpdir();
	cr_assert(asprintf(&base, "file://%s", dir) > 0);
	cr_assert_eq(store_open(&st, base, NULL, err, sizeof(err)), 0, "%s",
		     err);
}

static void teardown(void)
{
	store_close(st);
	sft_rmrf(dir);
	free(dir);
	free(base);
}

TestSuite(store_file, .init = setup, .fini = teardown, .timeout = 60);

static char *url(const char *rel)
{
	char *u = store_url_join(base, rel);
	cr_assert_not_null(u);
	return u;
}

static void put_str(const char *rel, const char *s, struct store_info *info)
{
	char err[256];
	char *u = url(rel);
	int rc = store_put(st, u, s, strlen(s), "text/plain", info, err,
			   sizeof(err));
	cr_assert_eq(rc, 0, "put %s: %s", u, err);
	free(u);
}

Test(store_file, url_scheme_is_detected)
{
	cr_expect_str_eq(store_url_scheme("s3://b/k"), "s3");
	cr_expect_str_eq(store_url_scheme("S3://b/k"), "s3");
	cr_expect_str_eq(store_url_scheme("file:///x"), "file");
	cr_expect_str_eq(store_url_scheme("http://h/x"), "http");
	cr_expect_str_eq(store_url_scheme("https://h/x"), "https");
	cr_expect_str_eq(store_url_scheme("/abs/path"), "file");
	cr_expect_str_eq(store_url_scheme("./rel"), "file");
	cr_expect_null(store_url_scheme("ftp://h/x"));
	cr_expect_null(store_url_scheme(""));
	cr_expect_null(store_url_scheme(NULL));
}

Test(store_file, local_path_of_file_urls_and_plain_paths)
{
	const char *u = "file:///data/snap/shard.db";
	const char *l = "file://localhost/data/x";
	const char *p = "/data/y", *r = "./rel/z";

	/* borrowed pointers into the argument */
	cr_expect_eq(store_local_path(u), u + 7);
	cr_expect_str_eq(store_local_path(u), "/data/snap/shard.db");
	cr_expect_eq(store_local_path(l), l + 16);
	cr_expect_str_eq(store_local_path(l), "/data/x");
	cr_expect_str_eq(store_local_path("FILE:///Up/Case"), "/Up/Case");
	cr_expect_eq(store_local_path(p), p);
	cr_expect_eq(store_local_path(r), r);
	/* not percent-decoded, like the backend */
	cr_expect_str_eq(store_local_path("file:///a%20b"), "/a%20b");
	cr_expect_null(store_local_path("s3://bucket/key"));
	cr_expect_null(store_local_path("http://h/x"));
	cr_expect_null(store_local_path("HTTPS://h/x"));
	cr_expect_null(store_local_path("gs://b/k"));
	cr_expect_null(store_local_path(""));
	cr_expect_null(store_local_path(NULL));
}

Test(store_file, local_path_opens_what_the_backend_reads)
{
	uint8_t *data = NULL, buf[16];
	size_t len = 0;
	char err[256] = "";
	char *u;
	const char *lp;
	int fd;

	put_str("in/place.db", "in place bytes", NULL);
	u = url("in/place.db");
	lp = store_local_path(u);
	cr_assert_not_null(lp);
	fd = open(lp, O_RDONLY);
	cr_assert_geq(fd, 0, "open %s", lp);
	cr_assert_eq(read(fd, buf, sizeof(buf)), 14);
	close(fd);
	cr_assert_eq(store_get(st, u, 100, &data, &len, NULL, err,
			       sizeof(err)), 0, "%s", err);
	cr_expect_eq(len, 14);
	cr_expect(memcmp(data, buf, 14) == 0);
	free(data);
	free(u);
}

Test(store_file, url_join_puts_exactly_one_slash)
{
	struct {
		const char *b, *r, *want;
	} v[] = {
		{"s3://b/p", "x", "s3://b/p/x"},
		{"s3://b/p/", "x", "s3://b/p/x"},
		{"s3://b/p//", "/x/y", "s3://b/p/x/y"},
		{"s3://", "b/k", "s3://b/k"},
		{"file:///", "tmp/x", "file:///tmp/x"},
		{"file:///a", "", "file:///a/"},
	};
	size_t i;

	for (i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *j = store_url_join(v[i].b, v[i].r);
		cr_expect_str_eq(j, v[i].want, "join(%s, %s)", v[i].b, v[i].r);
		free(j);
	}
}

Test(store_file, url_normalize_makes_paths_absolute_urls)
{
	char cwd[4096], want[4200];
	char *n;

	n = store_url_normalize("/data/snap/");
	cr_expect_str_eq(n, "file:///data/snap");
	free(n);
	n = store_url_normalize("S3://bucket/p//");
	cr_expect_str_eq(n, "s3://bucket/p");
	free(n);
	n = store_url_normalize("file:///");
	cr_expect_str_eq(n, "file:///");
	free(n);
	n = store_url_normalize("s3://bucket");
	cr_expect_str_eq(n, "s3://bucket");
	free(n);
	cr_assert_not_null(getcwd(cwd, sizeof(cwd)));
	snprintf(want, sizeof(want), "file://%s/snap", cwd);
	n = store_url_normalize("./snap/");
	cr_expect_str_eq(n, want);
	free(n);
	n = store_url_normalize("snap");
	cr_expect_str_eq(n, want);
	free(n);
}

Test(store_file, put_then_get_roundtrips_and_creates_parents)
{
	struct store_info pi, gi;
	uint8_t *data = NULL;
	size_t len = 0;
	char err[256];
	char *u = url("a/b/c/obj=1 x");

	put_str("a/b/c/obj=1 x", "hello world", &pi);
	cr_assert_eq(store_get(st, u, 1024, &data, &len, &gi, err,
			       sizeof(err)), 0, "%s", err);
	cr_expect_eq(len, 11);
	cr_expect_str_eq((char *)data, "hello world");
	cr_expect_eq(gi.size, 11);
	cr_expect_str_eq(gi.etag, pi.etag);
	cr_expect_eq(gi.etag[0], '"');
	cr_expect_eq(gi.etag[strlen(gi.etag) - 1], '"');
	cr_expect(strncmp(gi.etag, "\"b-", 3) == 0, "etag %s", gi.etag);
	cr_expect_gt(gi.mtime, 0);
	free(data);
	free(u);
}

Test(store_file, get_of_missing_object_is_404)
{
	uint8_t *data = (uint8_t *)1;
	size_t len = 7;
	char err[256] = "";
	char *u = url("nope");

	cr_expect_eq(store_get(st, u, 1024, &data, &len, NULL, err,
			       sizeof(err)), SF_EHTTP_404);
	cr_expect_null(data);
	cr_expect_eq(len, 0);
	cr_expect(strstr(err, "nope") != NULL, "%s", err);
	free(u);
	/* a directory is not an object */
	put_str("d/x", "1", NULL);
	u = url("d");
	cr_expect_eq(store_get(st, u, 1024, &data, &len, NULL, err,
			       sizeof(err)), SF_EHTTP_404);
	cr_expect_eq(store_head(st, u, NULL, err, sizeof(err)), SF_EHTTP_404);
	free(u);
}

Test(store_file, get_larger_than_cap_is_toobig)
{
	uint8_t *data = NULL;
	size_t len = 0;
	char err[256];
	char *u = url("big");

	put_str("big", "0123456789", NULL);
	cr_expect_eq(store_get(st, u, 9, &data, &len, NULL, err, sizeof(err)),
		     SF_ETOOBIG);
	cr_expect_null(data);
	cr_expect_eq(store_get(st, u, 10, &data, &len, NULL, err, sizeof(err)),
		     0);
	free(data);
	free(u);
}

Test(store_file, ranged_reads_cut_short_and_416_past_end)
{
	struct store_info info;
	uint8_t buf[16];
	size_t got = 99;
	char err[256];
	char *u = url("r");

	put_str("r", "0123456789", NULL);
	cr_assert_eq(store_get_range(st, u, 2, 3, NULL, buf, &got, &info, err,
				     sizeof(err)), 0, "%s", err);
	cr_expect_eq(got, 3);
	cr_expect(memcmp(buf, "234", 3) == 0);
	cr_expect_eq(info.size, 10);
	cr_expect_gt(strlen(info.etag), 2);

	cr_assert_eq(store_get_range(st, u, 8, 16, NULL, buf, &got, NULL, err,
				     sizeof(err)), 0, "%s", err);
	cr_expect_eq(got, 2);
	cr_expect(memcmp(buf, "89", 2) == 0);

	cr_expect_eq(store_get_range(st, u, 10, 1, NULL, buf, &got, NULL, err,
				     sizeof(err)), SF_EHTTP_416);
	cr_expect_eq(store_get_range(st, u, 1000, 1, NULL, buf, &got, NULL,
				     err, sizeof(err)), SF_EHTTP_416);
	free(u);
}

Test(store_file, if_match_pins_a_version)
{
	struct store_info v1, v2;
	struct store_range_opts ro = {0};
	uint8_t buf[16];
	size_t got;
	char err[256];
	char *u = url("pinned");
	struct timespec ts = {0, 2000000};

	put_str("pinned", "version one", &v1);
	ro.if_match = v1.etag;
	cr_expect_eq(store_get_range(st, u, 0, 7, &ro, buf, &got, NULL, err,
				     sizeof(err)), 0, "%s", err);
	nanosleep(&ts, NULL);
	put_str("pinned", "version two", &v2); /* same size, new mtime */
	cr_expect_str_neq(v1.etag, v2.etag);
	cr_expect_eq(store_get_range(st, u, 0, 7, &ro, buf, &got, NULL, err,
				     sizeof(err)), SF_EHTTP_412);
	ro.if_match = v2.etag;
	cr_expect_eq(store_get_range(st, u, 0, 7, &ro, buf, &got, NULL, err,
				     sizeof(err)), 0, "%s", err);
	free(u);
}

Test(store_file, get_to_fd_streams_whole_object)
{
	struct store_info pi, info;
	char err[256], *tpath = NULL;
	char *u = url("stream");
	uint8_t *back;
	size_t n;
	int fd;

	put_str("stream", "streamed bytes", &pi);
	cr_assert(asprintf(&tpath, "%s/out.bin", dir) > 0);
	fd = open(tpath, O_CREAT | O_RDWR | O_TRUNC, 0600);
	cr_assert_geq(fd, 0);
	cr_assert_eq(write(fd, "HDR", 3), 3);
	cr_expect_eq(store_get_to_fd(st, u, fd, 0, pi.etag, &info, err,
				     sizeof(err)), 0, "%s", err);
	cr_expect_eq(info.size, 14);
	cr_expect_eq(store_get_to_fd(st, u, fd, 0, "\"bogus\"", NULL, err,
				     sizeof(err)), SF_EHTTP_412);
	close(fd);
	back = sft_read_file(tpath, &n);
	cr_expect_eq(n, 17);
	cr_expect(memcmp(back, "HDRstreamed bytes", 17) == 0);
	free(back);
	free(tpath);
	free(u);
}

Test(store_file, put_file_copies_a_local_file)
{
	char err[256], *src = NULL;
	struct store_info info;
	uint8_t *data = NULL;
	size_t len;
	char *u = url("up/loaded");

	cr_assert(asprintf(&src, "%s/src.bin", dir) > 0);
	cr_assert_eq(sft_write_file(src, "abcdef", 6), 0);
	cr_assert_eq(store_put_file(st, u, src, NULL, &info, err, sizeof(err)),
		     0, "%s", err);
	cr_expect_eq(info.size, 6);
	cr_assert_eq(store_get(st, u, 100, &data, &len, NULL, err,
			       sizeof(err)), 0);
	cr_expect_eq(len, 6);
	cr_expect(memcmp(data, "abcdef", 6) == 0);
	free(data);
	cr_expect_eq(store_put_file(st, u, "/nonexistent/zz", NULL, NULL, err,
				    sizeof(err)), SF_EIO);
	free(src);
	free(u);
}

Test(store_file, head_reports_size_and_etag)
{
	struct store_info pi, hi;
	char err[256];
	char *u = url("h");

	put_str("h", "12345", &pi);
	cr_assert_eq(store_head(st, u, &hi, err, sizeof(err)), 0, "%s", err);
	cr_expect_eq(hi.size, 5);
	cr_expect_str_eq(hi.etag, pi.etag);
	free(u);
	u = url("missing");
	cr_expect_eq(store_head(st, u, &hi, err, sizeof(err)), SF_EHTTP_404);
	free(u);
}

struct listing {
	char buf[4096];
	int n;
	int stop_at;
};

static int collect(void *ctx, const char *name, int is_prefix)
{
	struct listing *l = ctx;
	size_t bl = strlen(l->buf);

	snprintf(l->buf + bl, sizeof(l->buf) - bl, "%s%s\n", name,
		 is_prefix ? " P" : "");
	l->n++;
	if (l->stop_at && l->n == l->stop_at)
		return 42;
	return 0;
}

static void expect_list(const char *rel, const char *delim,
			const char *const *want)
{
	struct listing l = {0};
	char exp[4096] = "", err[256];
	char *u = url(rel);
	size_t i, bl = strlen(base);

	/* url() joined with a '/', keep a trailing '/' of rel */
	for (i = 0; want[i]; i++) {
		size_t el = strlen(exp);
		snprintf(exp + el, sizeof(exp) - el, "%s/%s\n", base, want[i]);
	}
	cr_assert_eq(store_list(st, u, delim, collect, &l, err, sizeof(err)),
		     0, "%s", err);
	cr_expect_str_eq(l.buf, exp, "list %s delim %s (base len %zu)", rel,
			 delim ? delim : "none", bl);
	free(u);
}

Test(store_file, list_is_sorted_and_groups_by_delimiter)
{
	static const char *const all[] = {"p/a-b", "p/a/1", "p/a/2/x",
					  "p/b", "p/ba", NULL};
	static const char *const top[] = {"p/a-b", "p/a/ P", "p/b", "p/ba",
					  NULL};
	static const char *const bpfx[] = {"p/b", "p/ba", NULL};
	static const char *const dash[] = {"p/a- P", "p/a/1", "p/a/2/x",
					   "p/b", "p/ba", NULL};
	static const char *const none[] = {NULL};

	put_str("p/b", "1", NULL);
	put_str("p/a/2/x", "1", NULL);
	put_str("p/ba", "1", NULL);
	put_str("p/a/1", "1", NULL);
	put_str("p/a-b", "1", NULL);
	put_str("q/other", "1", NULL);

	expect_list("p/", NULL, all);
	expect_list("p/", "/", top);
	expect_list("p/b", "/", bpfx);
	expect_list("p/", "-", dash);
	expect_list("nothing/", "/", none);
	expect_list("p/zz", NULL, none);
}

Test(store_file, list_callback_can_stop)
{
	struct listing l = {.stop_at = 2};
	char err[256];
	char *u = url("s/");

	put_str("s/1", "1", NULL);
	put_str("s/2", "1", NULL);
	put_str("s/3", "1", NULL);
	cr_expect_eq(store_list(st, u, NULL, collect, &l, err, sizeof(err)),
		     42);
	cr_expect_eq(l.n, 2);
	free(u);
}

Test(store_file, plain_paths_work_like_file_urls)
{
	char err[256], *p = NULL;
	uint8_t *data = NULL;
	size_t len;

	cr_assert(asprintf(&p, "%s/plain/obj", dir) > 0);
	cr_assert_eq(store_put(st, p, "xyz", 3, NULL, NULL, err, sizeof(err)),
		     0, "%s", err);
	cr_assert_eq(store_get(st, p, 10, &data, &len, NULL, err, sizeof(err)),
		     0, "%s", err);
	cr_expect_eq(len, 3);
	free(data);
	free(p);
}

Test(store_file, counters_track_requests_and_failures)
{
	struct store_stats s;
	uint8_t buf[4];
	size_t got;
	char err[256];
	char *u = url("c");

	put_str("c", "abcd", NULL);
	cr_expect_eq(store_get_range(st, u, 0, 4, NULL, buf, &got, NULL, err,
				     sizeof(err)), 0);
	cr_expect_eq(store_head(st, u, NULL, err, sizeof(err)), 0);
	free(u);
	u = url("none");
	cr_expect_eq(store_head(st, u, NULL, err, sizeof(err)), SF_EHTTP_404);
	store_stats(st, &s);
	cr_expect_eq(s.put_requests, 1);
	cr_expect_eq(s.range_requests, 1);
	cr_expect_eq(s.head_requests, 2);
	cr_expect_eq(s.bytes_out, 4);
	cr_expect_eq(s.bytes_in, 4);
	cr_expect_eq(s.failures, 1);
	free(u);
}

Test(store_file, unsupported_scheme_is_eurl)
{
	char err[256];
	struct store *s2 = NULL;

	cr_expect_eq(store_open(&s2, "ftp://x/y", NULL, err, sizeof(err)),
		     SF_EURL);
	cr_expect_null(s2);
	cr_expect_eq(store_head(st, "gopher://x/y", NULL, err, sizeof(err)),
		     SF_EURL);
}
