/*
 * test_reader_http.c -- the reader over http:// (any range-capable
 * server): a fixture served by the fault-injecting test server
 * (tests/helpers/httpd_fault.h) reads back exactly in range and download
 * mode; transient failures (503 with Retry-After, 500, resets) are retried
 * and invisible; permanent ones (404/403 on a shard, a server that stops)
 * are errors, never "not found"; a server that ignores Range still serves
 * correct values.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "httpd_fault.h"
#include "sf_test.h"
#include "shardyfs.h"

TestSuite(reader_http, .timeout = 300);

static struct httpd_fault *serve(const char *name, char **prefix)
{
	struct httpd_fault *h = NULL;
	char rel[128];

	snprintf(rel, sizeof(rel), "shardyfusion/%s/snapshot", name);
	char *root = sft_data(rel);
	cr_assert_eq(httpd_fault_start(&h, root), 0);
	free(root);
	cr_assert(asprintf(prefix, "%s/", httpd_fault_url(h)) > 0);
	return h;
}

static struct sf_reader *open_http_budget(const char *prefix,
					  enum sf_access_mode mode, char **cache,
					  long budget_ms)
{
	struct sf_options opt;
	struct sf_reader *r = NULL;
	char err[1024] = "";

	sf_options_init(&opt);
	opt.access_mode = mode;
	*cache = sft_tmpdir();
	opt.cache_dir = *cache;
	opt.cache_bytes = 256 * 1024;
	opt.retry_budget_ms = budget_ms;
	cr_assert_eq(sf_reader_open(&r, prefix, &opt, err, sizeof(err)), 0, "%s", err);
	return r;
}

static struct sf_reader *open_http(const char *prefix, enum sf_access_mode mode,
				   char **cache)
{
	return open_http_budget(prefix, mode, cache, 10000);
}

static int read_all(struct sf_reader *r, const char *name)
{
	size_t n;
	struct sft_answer *a = sft_answers(name, &n);
	int bad = 0;

	for (size_t i = 0; i < n; i++) {
		struct sf_key k = sf_key_text((const char *)a[i].key, a[i].klen);
		void *v = NULL;
		size_t len;
		char hex[65], err[512] = "";
		int rc = sf_get(r, &k, &v, &len, err, sizeof(err));
		cr_assert_eq(rc, 0, "key %s: %d %s", a[i].user_key, rc, err);
		sft_sha256_hex(v, len, hex);
		if (strcmp(hex, a[i].sha256) != 0)
			bad++;
		sf_free(v);
	}
	sft_answers_free(a, n);
	return bad;
}

Test(reader_http, every_key_reads_back_over_http_in_range_and_download_mode)
{
	char *prefix, *cache;
	struct httpd_fault *h = serve("utf8", &prefix);

	for (int mode = SF_ACCESS_DOWNLOAD; mode <= SF_ACCESS_RANGE; mode++) {
		struct sf_reader *r = open_http(prefix, (enum sf_access_mode)mode, &cache);
		cr_assert_eq(read_all(r, "utf8"), 0);
		struct sf_stats st;
		sf_reader_stats(r, &st);
		if (mode == SF_ACCESS_RANGE)
			cr_assert(st.range_requests > 0 && st.bytes_range > 0);
		else
			cr_assert(st.bytes_get > 0 && st.bytes_range == 0);
		cr_assert_eq(st.bytes_get + st.bytes_range + st.bytes_other,
			     st.bytes_downloaded, "bytes by kind add up");
		cr_assert_eq(st.head_requests, 0, "no HEAD on the read path");
		sf_reader_close(r);
		sft_rmrf(cache);
		free(cache);
	}
	if (httpd_fault_range_requests(h) > 0)
		cr_assert(httpd_fault_if_match_requests(h) > 0,
			  "ranged reads must be pinned with If-Match");
	httpd_fault_stop(h);
	free(prefix);
}

Test(reader_http, transient_failures_are_retried_and_invisible)
{
	char *prefix, *cache;
	struct httpd_fault *h = serve("utf8", &prefix);

	httpd_fault_fail_next(h, 2, 503, 0);
	struct sf_reader *r = open_http(prefix, SF_ACCESS_RANGE, &cache);
	for (int round = 0; round < 3; round++) {
		if (round == 0)
			httpd_fault_fail_next(h, 3, 500, -1);
		else if (round == 1)
			httpd_fault_reset_next(h, 3);
		else
			httpd_fault_fail_next(h, 2, 429, 0);
		cr_assert_eq(read_all(r, "utf8"), 0);
	}
	struct sf_stats st;
	sf_reader_stats(r, &st);
	cr_assert(st.retries >= 5, "retries %llu", (unsigned long long)st.retries);
	cr_assert_eq(st.errors, 0);
	sf_reader_close(r);
	httpd_fault_stop(h);
	sft_rmrf(cache);
	free(cache);
	free(prefix);
}

Test(reader_http, permanent_failures_are_errors_never_not_found)
{
	char *prefix, *cache;
	struct httpd_fault *h = serve("utf8", &prefix);
	/* A short retry budget: a stopped server is retried, then an error. */
	struct sf_reader *r = open_http_budget(prefix, SF_ACCESS_RANGE, &cache, 300);
	struct sf_key k = sf_key_text("a/b", 3);
	void *v = NULL;
	size_t len;
	char err[1024] = "";

	/* Access denied on the first shard request. */
	httpd_fault_fail_next(h, 50, 403, -1);
	int rc = sf_get(r, &k, &v, &len, err, sizeof(err));
	cr_assert_eq(rc, SF_EHTTP_403, "%d %s", rc, err);
	httpd_fault_clear(h);

	/* The server goes away: lookups needing I/O fail, never not-found. */
	httpd_fault_stop(h);
	int errors = 0;
	for (int i = 0; i < 20; i++) {
		char key[32];
		snprintf(key, sizeof(key), "item-%05d", i * 97);
		struct sf_key ki = sf_key_text(key, strlen(key));
		rc = sf_get(r, &ki, &v, &len, err, sizeof(err));
		cr_assert_neq(rc, SF_NOTFOUND, "key %s reported missing", key);
		if (rc == 0)
			sf_free(v);
		else
			errors++;
	}
	cr_assert(errors > 0);
	sf_reader_close(r);
	sft_rmrf(cache);
	free(cache);
	free(prefix);
}

Test(reader_http, a_server_ignoring_range_still_gives_exact_values)
{
	char *prefix, *cache;
	struct httpd_fault *h = serve("utf8", &prefix);

	httpd_fault_ignore_range(h, 1);
	struct sf_reader *r = open_http(prefix, SF_ACCESS_RANGE, &cache);
	cr_assert_eq(read_all(r, "utf8"), 0);
	sf_reader_close(r);
	httpd_fault_stop(h);
	sft_rmrf(cache);
	free(cache);
	free(prefix);
}

Test(reader_http, processes_sharing_a_download_cache_fetch_each_shard_once)
{
	char *prefix, *cache = sft_tmpdir(), *cmd = NULL, *out = NULL;
	struct httpd_fault *h = serve("utf8", &prefix);
	char keys[2048] = "";

	/* Keys spread over every shard. */
	for (int i = 0; i < 64; i++) {
		char k[32];
		snprintf(k, sizeof(k), " item-%05d", i * 31);
		strcat(keys, k);
	}
	/* Slow answers widen the window in which the processes race. Real
	 * processes (exec'd CLIs), not forks of this threaded test. */
	httpd_fault_set_latency(h, 30);
	cr_assert(asprintf(&cmd,
			   "pids=; for i in 1 2 3 4; do '%s' get --access-mode download "
			   "--cache-dir '%s' --strict '%s'%s > /dev/null & pids=\"$pids $!\"; done; "
			   "fail=0; for p in $pids; do wait $p || fail=1; done; echo $fail",
			   sft_cli(), cache, prefix, keys) > 0);
	int rc = sft_run(cmd, &out, NULL, NULL);
	cr_assert_eq(rc, 0);
	cr_assert_str_eq(out, "0\n", "a CLI process failed");
	/* 4 x (_CURRENT + manifest) + each of the 4 shards exactly once. */
	cr_assert_eq(httpd_fault_requests(h), 12, "requests: %u", httpd_fault_requests(h));
	free(cmd);
	cr_assert(asprintf(&cmd, "test $(ls '%s' | grep -c '\\.db$') -eq 4 && ! ls '%s' | grep -q tmp",
			   cache, cache) > 0);
	cr_assert_eq(system(cmd), 0, "cache contents");
	httpd_fault_stop(h);
	sft_rmrf(cache);
	free(cache);
	free(prefix);
	free(cmd);
	free(out);
}

Test(reader_http, a_hostile_manifest_cannot_point_the_reader_elsewhere)
{
	char *dir = sft_tmpdir(), *src = sft_data("shardyfusion/sparse/snapshot");
	char cmd[8192], err[1024] = "";
	struct httpd_fault *h = NULL;
	struct sf_reader *r = NULL;

	/* A copy whose manifest sends shard 0 to a local file. */
	snprintf(cmd, sizeof(cmd),
		 "cp -r '%s/.' '%s/' && chmod -R u+w '%s' && "
		 "sqlite3 \"$(ls -d '%s'/manifests/*/manifest)\" "
		 "\"UPDATE shards SET db_url='file:///etc' WHERE db_id=0\"",
		 src, dir, dir, dir);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(httpd_fault_start(&h, dir), 0);
	int rc = sf_reader_open(&r, httpd_fault_url(h), NULL, err, sizeof(err));
	cr_assert_eq(rc, SF_EMANIFEST, "%d %s", rc, err);
	cr_assert(strstr(err, "not on the snapshot's store") != NULL, "%s", err);

	/* And a _CURRENT naming a manifest on another host. */
	snprintf(cmd, sizeof(cmd), "%s/_CURRENT", dir);
	const char *cur = "{\"format_version\":1,\"manifest_content_type\":\"application/x-sqlite3\","
			  "\"manifest_ref\":\"http://198.51.100.7/manifest\",\"run_id\":\"x\","
			  "\"updated_at\":\"2026-11-25T00:00:00Z\"}";
	cr_assert_eq(sft_write_file(cmd, cur, strlen(cur)), 0);
	rc = sf_reader_open(&r, httpd_fault_url(h), NULL, err, sizeof(err));
	cr_assert(rc < 0 && rc != SF_NOTFOUND, "%d %s", rc, err);
	cr_assert(strstr(err, "not on the snapshot's store") != NULL, "%s", err);
	httpd_fault_stop(h);
	sft_rmrf(dir);
	free(dir);
	free(src);
}

Test(reader_http, a_download_larger_than_the_manifest_says_is_cut_off)
{
	char *dir = sft_tmpdir(), *src = sft_data("shardyfusion/u64/snapshot");
	char *cache = sft_tmpdir();
	char cmd[8192], err[1024] = "";
	struct httpd_fault *h = NULL;
	struct sf_reader *r = NULL;
	struct sf_options opt;

	/* The manifest claims every shard is 4 KiB: the server sends more. */
	snprintf(cmd, sizeof(cmd),
		 "cp -r '%s/.' '%s/' && chmod -R u+w '%s' && "
		 "sqlite3 \"$(ls -d '%s'/manifests/*/manifest)\" "
		 "\"UPDATE shards SET db_bytes=4096\"",
		 src, dir, dir, dir);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(httpd_fault_start(&h, dir), 0);
	sf_options_init(&opt);
	opt.access_mode = SF_ACCESS_DOWNLOAD;
	opt.cache_dir = cache;
	cr_assert_eq(sf_reader_open(&r, httpd_fault_url(h), &opt, err, sizeof(err)), 0, "%s", err);
	struct sf_key k = sf_key_uint(256);
	void *v = NULL;
	size_t len;
	int rc = sf_get(r, &k, &v, &len, err, sizeof(err));
	cr_assert_eq(rc, SF_ETOOBIG, "%d %s", rc, err);
	cr_assert(strstr(err, "db=0000") != NULL, "%s", err);
	/* Nothing but the lock file is left in the cache. */
	snprintf(cmd, sizeof(cmd), "! ls '%s' | grep -v '\\.lock$' | grep -q .", cache);
	cr_assert_eq(system(cmd), 0, "a partial download was left in the cache");
	sf_reader_close(r);
	httpd_fault_stop(h);
	sft_rmrf(dir);
	sft_rmrf(cache);
	free(dir);
	free(cache);
	free(src);
}
