/*
 * test_reader.c -- the reader API against real shardyfusion snapshots on
 * file:// (tests/data/shardyfusion): every key of every fixture in download
 * and range mode, batch and async forms, not-found versus error, pinning
 * and refresh, start-up fallback, history, health, iteration, and the
 * malformed-_CURRENT cases with their documented outcomes.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sf_test.h"
#include "shardyfs.h"

TestSuite(reader, .timeout = 300);

static const char *fixtures[] = {"utf8", "u64", "raw", "sparse"};

static char *tmp_cache;

static struct sf_reader *open_reader(const char *url, enum sf_access_mode mode)
{
	struct sf_options opt;
	struct sf_reader *r = NULL;
	char err[1024] = "";

	sf_options_init(&opt);
	opt.access_mode = mode;
	if (!tmp_cache)
		tmp_cache = sft_tmpdir();
	opt.cache_dir = tmp_cache;
	int rc = sf_reader_open(&r, url, &opt, err, sizeof(err));
	cr_assert_eq(rc, 0, "open %s: %d %s", url, rc, err);
	return r;
}

/* The key a user would give for an answers.tsv line. */
static struct sf_key answer_key(enum sf_key_encoding enc,
				const struct sft_answer *a)
{
	struct sf_key k;
	if (enc == SF_ENC_U64BE || enc == SF_ENC_U32BE) {
		int rc = sf_key_from_text(enc, a->user_key, strlen(a->user_key),
					  &k, NULL, 0);
		cr_assert_eq(rc, 0, "bad user key %s", a->user_key);
		return k;
	}
	if (enc == SF_ENC_UTF8)
		return sf_key_text((const char *)a->key, a->klen);
	return sf_key_bytes(a->key, a->klen);
}

static void check_all_keys(const char *name, enum sf_access_mode mode)
{
	char *url = sft_fixture_url(name);
	struct sf_reader *r = open_reader(url, mode);
	struct sf_snapshot *s = sf_reader_acquire(r);
	struct sf_snapshot_info info;
	size_t n;
	struct sft_answer *a = sft_answers(name, &n);

	sf_snapshot_info(s, &info);
	cr_assert(n > 0);
	for (size_t i = 0; i < n; i++) {
		struct sf_key k = answer_key(info.key_encoding, &a[i]);
		void *v = NULL;
		size_t len = 0;
		char err[512] = "", hex[65];
		int rc = sf_get(r, &k, &v, &len, err, sizeof(err));
		cr_assert_eq(rc, 0, "%s key %s: %d %s", name, a[i].user_key, rc, err);
		cr_assert_eq(len, a[i].vlen, "%s key %s length", name, a[i].user_key);
		sft_sha256_hex(v, len, hex);
		cr_assert_str_eq(hex, a[i].sha256, "%s key %s value", name, a[i].user_key);
		sf_free(v);
	}
	sft_answers_free(a, n);
	sf_snapshot_release(s);
	sf_reader_close(r);
	free(url);
}

Test(reader, reads_every_fixture_key_in_download_mode)
{
	for (size_t i = 0; i < 4; i++)
		check_all_keys(fixtures[i], SF_ACCESS_DOWNLOAD);
}

Test(reader, reads_every_fixture_key_in_range_mode)
{
	for (size_t i = 0; i < 4; i++)
		check_all_keys(fixtures[i], SF_ACCESS_RANGE);
}

Test(reader, reads_every_fixture_key_in_auto_mode)
{
	for (size_t i = 0; i < 4; i++)
		check_all_keys(fixtures[i], SF_ACCESS_AUTO);
}

static json_t *fixture_info(const char *name)
{
	char rel[256];
	snprintf(rel, sizeof(rel), "shardyfusion/%s/info.json", name);
	char *p = sft_data(rel);
	json_t *j = json_load_file(p, 0, NULL);
	cr_assert_not_null(j, "%s", p);
	free(p);
	return j;
}

Test(reader, absent_keys_are_not_found_never_errors)
{
	for (size_t f = 0; f < 4; f++) {
		json_t *info = fixture_info(fixtures[f]);
		char *url = sft_fixture_url(fixtures[f]);
		struct sf_reader *r = open_reader(url, SF_ACCESS_DOWNLOAD);
		struct sf_snapshot *s = sf_reader_acquire(r);
		struct sf_snapshot_info si;
		json_t *abs = json_object_get(info, "absent_keys"), *v;
		size_t i;

		sf_snapshot_info(s, &si);
		json_array_foreach(abs, i, v) {
			struct sf_key k;
			uint8_t raw[256];
			if (json_is_integer(v)) {
				k = sf_key_uint((uint64_t)json_integer_value(v));
			} else if (si.key_encoding == SF_ENC_RAW) {
				const char *h = json_string_value(v);
				size_t n = strlen(h) / 2;
				for (size_t j = 0; j < n; j++)
					sscanf(h + 2 * j, "%2hhx", &raw[j]);
				k = sf_key_bytes(raw, n);
			} else {
				const char *t = json_string_value(v);
				cr_assert(sf_key_from_text(si.key_encoding, t, strlen(t), &k, NULL, 0) == 0);
			}
			void *val = NULL;
			size_t len;
			char err[512] = "";
			int rc = sf_snapshot_get(s, &k, &val, &len, err, sizeof(err));
			cr_assert_eq(rc, SF_NOTFOUND, "%s: %d %s", fixtures[f], rc, err);
		}
		sf_snapshot_release(s);
		sf_reader_close(r);
		free(url);
		json_decref(info);
	}
}

Test(reader, empty_shards_answer_not_found_without_opening_anything)
{
	char *url = sft_fixture_url("sparse");
	struct sf_reader *r = open_reader(url, SF_ACCESS_DOWNLOAD);
	struct sf_snapshot *s = sf_reader_acquire(r);
	struct sf_stats st;
	int tried = 0;

	/* Find text keys that route to an empty shard. */
	for (int i = 0; i < 200 && tried < 10; i++) {
		char key[32];
		uint32_t db;
		struct sf_shard_info si;
		snprintf(key, sizeof(key), "absent-%d", i);
		struct sf_key k = sf_key_text(key, strlen(key));
		cr_assert_eq(sf_snapshot_route(s, &k, &db, NULL, 0), 0);
		cr_assert_eq(sf_snapshot_shard(s, db, &si), 0);
		if (!si.empty)
			continue;
		void *v;
		size_t len;
		cr_assert_eq(sf_snapshot_get(s, &k, &v, &len, NULL, 0), SF_NOTFOUND);
		tried++;
	}
	cr_assert(tried > 0);
	sf_reader_stats(r, &st);
	cr_assert_eq(st.shard_opens, 0);
	cr_assert_eq(st.notfound, (uint64_t)tried);
	sf_snapshot_release(s);
	sf_reader_close(r);
	free(url);
}

static void check_multi(enum sf_access_mode mode)
{
	char *url = sft_fixture_url("utf8");
	struct sf_reader *r = open_reader(url, mode);
	size_t n;
	struct sft_answer *a = sft_answers("utf8", &n);
	struct sf_key *keys = calloc(n + 1, sizeof(*keys));
	struct sf_result *res = calloc(n + 1, sizeof(*res));

	for (size_t i = 0; i < n; i++)
		keys[i] = sf_key_text((const char *)a[i].key, a[i].klen);
	keys[n] = sf_key_text("nope", 4);
	char err[512] = "";
	cr_assert_eq(sf_multi_get(r, keys, n + 1, res, err, sizeof(err)), 0, "%s", err);
	for (size_t i = 0; i < n; i++) {
		char hex[65];
		cr_assert_eq(res[i].status, 0);
		cr_assert_eq(res[i].len, a[i].vlen);
		sft_sha256_hex(res[i].value, res[i].len, hex);
		cr_assert_str_eq(hex, a[i].sha256);
		sf_free(res[i].value);
	}
	cr_assert_eq(res[n].status, SF_NOTFOUND);
	free(keys);
	free(res);
	sft_answers_free(a, n);
	sf_reader_close(r);
	free(url);
}

Test(reader, multi_get_matches_answers_download)
{
	check_multi(SF_ACCESS_DOWNLOAD);
}

Test(reader, multi_get_matches_answers_range)
{
	check_multi(SF_ACCESS_RANGE);
}

struct cb_state {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	int status;
	size_t n;
	struct sf_result *res;
};

static void on_done(void *ud, int status, struct sf_result *res, size_t n)
{
	struct cb_state *st = ud;
	pthread_mutex_lock(&st->mu);
	st->status = status;
	st->n = n;
	st->res = malloc(n * sizeof(*res));
	memcpy(st->res, res, n * sizeof(*res));
	st->done = 1;
	pthread_cond_signal(&st->cv);
	pthread_mutex_unlock(&st->mu);
}

Test(reader, async_callback_and_completion_queue_deliver_results)
{
	char *url = sft_fixture_url("u64");
	struct sf_reader *r = open_reader(url, SF_ACCESS_DOWNLOAD);
	size_t n;
	struct sft_answer *a = sft_answers("u64", &n);
	struct sf_key keys[3];
	char buf[3][32];

	for (int i = 0; i < 2; i++) {
		snprintf(buf[i], sizeof(buf[i]), "%s", a[i * 7].user_key);
		cr_assert_eq(sf_key_from_text(SF_ENC_U64BE, buf[i], strlen(buf[i]), &keys[i], NULL, 0), 0);
	}
	keys[2] = sf_key_uint(999999999999ull);

	struct cb_state st = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0, 0, 0, NULL};
	cr_assert_eq(sf_multi_get_async(r, keys, 3, on_done, &st), 0);
	pthread_mutex_lock(&st.mu);
	while (!st.done)
		pthread_cond_wait(&st.cv, &st.mu);
	pthread_mutex_unlock(&st.mu);
	cr_assert_eq(st.status, 0);
	cr_assert_eq(st.n, 3);
	cr_assert_eq(st.res[0].status, 0);
	cr_assert_eq(st.res[0].len, a[0].vlen);
	cr_assert_eq(st.res[1].len, a[7].vlen);
	cr_assert_eq(st.res[2].status, SF_NOTFOUND);
	for (int i = 0; i < 3; i++)
		sf_free(st.res[i].value);
	free(st.res);

	struct sf_cq *cq;
	cr_assert_eq(sf_cq_new(&cq), 0);
	for (int i = 0; i < 10; i++)
		cr_assert_eq(sf_cq_submit(r, cq, &keys[i % 3], 1, (void *)(intptr_t)(i + 1)), 0);
	int seen = 0, mask = 0;
	struct sf_completion c;
	while (seen < 10) {
		cr_assert_eq(sf_cq_wait(cq, &c, 10000), 1, "completion timed out");
		int i = (int)(intptr_t)c.ud - 1;
		mask |= 1 << i;
		cr_assert_eq(c.n, 1);
		cr_assert_eq(c.results[0].status, i % 3 == 2 ? SF_NOTFOUND : 0);
		sf_completion_free(&c);
		seen++;
	}
	cr_assert_eq(mask, 0x3ff);
	cr_assert_eq(sf_cq_next(cq, &c), 0);
	sf_cq_free(cq);
	sft_answers_free(a, n);
	sf_reader_close(r);
	free(url);
}

Test(reader, bad_keys_are_errors_not_not_found)
{
	char *url = sft_fixture_url("u64");
	struct sf_reader *r = open_reader(url, SF_ACCESS_DOWNLOAD);
	struct sf_key k;
	char err[256] = "";
	void *v;
	size_t len;

	cr_assert_eq(sf_key_from_text(SF_ENC_U64BE, "abc", 3, &k, err, sizeof(err)), SF_EKEY);
	cr_assert(strlen(err) > 0);
	k = sf_key_text("abc", 3);
	cr_assert_eq(sf_get(r, &k, &v, &len, NULL, 0), SF_EKEY);
	k = sf_key_int(-5);
	cr_assert_eq(sf_get(r, &k, &v, &len, NULL, 0), SF_EKEY);
	cr_assert_eq(sf_key_from_text(SF_ENC_U32BE, "1099511627776", 13, &k, NULL, 0), SF_EKEY);
	sf_reader_close(r);
	free(url);
}

static char *copy_fixture(const char *name)
{
	char *dir = sft_tmpdir(), *cmd = NULL, *src = NULL;
	char rel[128];
	snprintf(rel, sizeof(rel), "shardyfusion/%s/snapshot", name);
	src = sft_data(rel);
	cr_assert(asprintf(&cmd, "cp -r '%s/.' '%s/' && chmod -R u+w '%s'", src, dir, dir) > 0);
	cr_assert_eq(system(cmd), 0);
	free(cmd);
	free(src);
	return dir;
}

Test(reader, no_current_means_no_snapshot_published)
{
	char *dir = sft_tmpdir();
	struct sf_reader *r = NULL;
	char err[512] = "";
	int rc = sf_reader_open(&r, dir, NULL, err, sizeof(err));
	cr_assert_eq(rc, SF_ENOSNAPSHOT);
	cr_assert(strstr(err, "no snapshot published at") != NULL, "%s", err);
	sft_rmrf(dir);
	free(dir);
}

static int open_with_current(const char *dir, const char *current, char *err,
			     size_t errlen)
{
	char p[4096];
	struct sf_reader *r = NULL;
	struct sf_options opt;
	snprintf(p, sizeof(p), "%s/_CURRENT", dir);
	cr_assert_eq(sft_write_file(p, current, strlen(current)), 0);
	sf_options_init(&opt);
	opt.cache_dir = tmp_cache ? tmp_cache : (tmp_cache = sft_tmpdir());
	int rc = sf_reader_open(&r, dir, &opt, err, errlen);
	sf_reader_close(r);
	return rc;
}

Test(reader, malformed_current_is_a_distinct_error)
{
	char *dir = copy_fixture("utf8");
	const char *bad[] = {"", "{", "[]", "{\"run_id\":\"x\"}", "null",
			     "{\"manifest_ref\":5,\"run_id\":\"a\",\"updated_at\":\"b\",\"manifest_content_type\":\"c\"}"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[512] = "";
		int rc = open_with_current(dir, bad[i], err, sizeof(err));
		cr_assert_eq(rc, SF_ECURRENT, "case %zu: %d %s", i, rc, err);
	}
	sft_rmrf(dir);
	free(dir);
}

Test(reader, current_naming_a_missing_manifest_with_no_history_fails)
{
	char *dir = copy_fixture("utf8");
	char err[512] = "", cmd[4200];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s/manifests'", dir);
	cr_assert_eq(system(cmd), 0);
	int rc = open_with_current(dir,
		"{\"format_version\":1,\"manifest_content_type\":\"application/x-sqlite3\","
		"\"manifest_ref\":\"s3://sfcompat/golden/utf8/manifests/x_run_id=y/manifest\","
		"\"run_id\":\"y\",\"updated_at\":\"2026-11-25T07:32:19.500368Z\"}", err, sizeof(err));
	cr_assert(rc < 0 && rc != SF_NOTFOUND, "%d %s", rc, err);
	sft_rmrf(dir);
	free(dir);
}

Test(reader, cold_start_falls_back_to_an_older_valid_manifest)
{
	char *dir = copy_fixture("utf8");
	char p[4096], err[512] = "";
	/* A newer manifest that is garbage, named by _CURRENT. */
	snprintf(p, sizeof(p), "%s/manifests/2099-01-01T00:00:00.000000Z_run_id=bad", dir);
	char cmd[4300];
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", p);
	cr_assert_eq(system(cmd), 0);
	strcat(p, "/manifest");
	cr_assert_eq(sft_write_file(p, "SQLite format 3\0garbage", 23), 0);
	const char *cur =
		"{\"format_version\":1,\"manifest_content_type\":\"application/x-sqlite3\","
		"\"manifest_ref\":\"s3://sfcompat/golden/utf8/manifests/2099-01-01T00:00:00.000000Z_run_id=bad/manifest\","
		"\"run_id\":\"bad\",\"updated_at\":\"2099-01-01T00:00:00.000000Z\"}";
	snprintf(p, sizeof(p), "%s/_CURRENT", dir);
	cr_assert_eq(sft_write_file(p, cur, strlen(cur)), 0);

	struct sf_reader *r = NULL;
	cr_assert_eq(sf_reader_open(&r, dir, NULL, err, sizeof(err)), 0, "%s", err);
	struct sf_snapshot *s = sf_reader_acquire(r);
	struct sf_snapshot_info si;
	sf_snapshot_info(s, &si);
	cr_assert_str_eq(si.run_id, "b9aa90b271ef41d7ad4ae9f6e42e4aac");
	struct sf_key k = sf_key_text("a/b", 3);
	void *v;
	size_t len;
	cr_assert_eq(sf_snapshot_get(s, &k, &v, &len, NULL, 0), 0);
	cr_assert_eq(len, 71);
	sf_free(v);
	sf_snapshot_release(s);

	/* History lists both, newest first, the bad one marked current. */
	struct sf_history_entry *h;
	size_t n;
	cr_assert_eq(sf_history(r, &h, &n, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(n, 2);
	cr_assert(strstr(h[0].manifest_ref, "run_id=bad") != NULL);
	cr_assert_str_eq(h[1].run_id, "b9aa90b271ef41d7ad4ae9f6e42e4aac");
	sf_history_free(h, n);
	sf_reader_close(r);
	sft_rmrf(dir);
	free(dir);
}

Test(reader, refresh_swaps_atomically_and_borrowers_keep_their_snapshot)
{
	char *dir = copy_fixture("utf8");
	char *u64 = sft_data("shardyfusion/u64/snapshot");
	char cmd[8192], err[512] = "";
	struct sf_reader *r = open_reader(dir, SF_ACCESS_DOWNLOAD);
	struct sf_snapshot *old = sf_reader_acquire(r);
	int changed = -1;

	cr_assert_eq(sf_reader_refresh(r, &changed, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(changed, 0);

	/* Publish the u64 run into the same prefix, then move _CURRENT. */
	snprintf(cmd, sizeof(cmd), "cp -r '%s/manifests/.' '%s/manifests/' && cp -r '%s/shards/.' '%s/shards/' && cp '%s/_CURRENT' '%s/_CURRENT'",
		 u64, dir, u64, dir, u64, dir);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(sf_reader_refresh(r, &changed, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(changed, 1);

	struct sf_snapshot *cur = sf_reader_acquire(r);
	struct sf_snapshot_info a, b;
	sf_snapshot_info(old, &a);
	sf_snapshot_info(cur, &b);
	cr_assert_eq(a.key_encoding, SF_ENC_UTF8);
	cr_assert_eq(b.key_encoding, SF_ENC_U64BE);
	cr_assert(b.generation > a.generation);

	struct sf_key tk = sf_key_text("a/b", 3);
	void *v;
	size_t len;
	cr_assert_eq(sf_snapshot_get(old, &tk, &v, &len, NULL, 0), 0);
	sf_free(v);
	struct sf_key ik = sf_key_uint(256);
	cr_assert_eq(sf_snapshot_get(cur, &ik, &v, &len, NULL, 0), 0);
	sf_free(v);

	/* A refresh that finds garbage keeps serving and reports it. */
	snprintf(cmd, sizeof(cmd), "%s/_CURRENT", dir);
	cr_assert_eq(sft_write_file(cmd, "{broken", 7), 0);
	cr_assert_eq(sf_reader_refresh(r, &changed, err, sizeof(err)), SF_ECURRENT);
	struct sf_health hl;
	cr_assert_eq(sf_health(r, 0, &hl), 0);
	cr_assert_eq(hl.status, SF_DEGRADED);
	cr_assert_eq(sf_get(r, &ik, &v, &len, NULL, 0), 0);
	sf_free(v);

	sf_snapshot_release(cur);
	sf_reader_close(r);
	/* Borrowed snapshot still works after close. */
	cr_assert_eq(sf_snapshot_get(old, &tk, &v, &len, NULL, 0), 0);
	sf_free(v);
	sf_snapshot_release(old);
	sft_rmrf(dir);
	free(dir);
	free(u64);
}

Test(reader, corrupt_shard_is_an_error_naming_the_shard)
{
	for (int mode = SF_ACCESS_DOWNLOAD; mode <= SF_ACCESS_RANGE; mode++) {
		char *dir = copy_fixture("utf8");
		char cmd[8192], err[1024] = "";
		/* Overwrite every shard.db with same-sized junk. */
		snprintf(cmd, sizeof(cmd),
			 "for f in $(find '%s/shards' -name shard.db); do "
			 "head -c $(stat -c %%s $f) /dev/urandom > $f.x && mv $f.x $f; done", dir);
		cr_assert_eq(system(cmd), 0);
		struct sf_options opt;
		sf_options_init(&opt);
		opt.access_mode = (enum sf_access_mode)mode;
		char *cache = sft_tmpdir();
		opt.cache_dir = cache;
		opt.use_sidecar = 0;
		struct sf_reader *r = NULL;
		cr_assert_eq(sf_reader_open(&r, dir, &opt, err, sizeof(err)), 0, "%s", err);
		struct sf_key k = sf_key_text("a/b", 3);
		void *v = NULL;
		size_t len;
		int rc = sf_get(r, &k, &v, &len, err, sizeof(err));
		cr_assert(rc < 0, "mode %d: got %d", mode, rc);
		cr_assert(strstr(err, "db=0000") != NULL, "%s", err);
		cr_assert(strstr(err, "shards/run_id=") != NULL, "%s", err);
		sf_reader_close(r);
		sft_rmrf(dir);
		sft_rmrf(cache);
		free(dir);
		free(cache);
	}
}

Test(reader, history_health_info_and_iteration)
{
	char *url = sft_fixture_url("raw");
	struct sf_reader *r = open_reader(url, SF_ACCESS_DOWNLOAD);
	struct sf_history_entry *h;
	size_t n;
	char err[512] = "";

	cr_assert_eq(sf_history(r, &h, &n, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(n, 1);
	cr_assert(h[0].is_current);
	cr_assert_str_eq(h[0].run_id, "b7f559ad9e974c738490b562ec1315c0");
	sf_history_free(h, n);

	struct sf_health hl;
	cr_assert_eq(sf_health(r, 0, &hl), 0);
	cr_assert_eq(hl.status, SF_HEALTHY);
	cr_assert_eq(sf_health(r, 0.001, &hl), 0);
	cr_assert_eq(hl.status, SF_DEGRADED);

	struct sf_snapshot *s = sf_reader_acquire(r);
	struct sf_snapshot_info si;
	sf_snapshot_info(s, &si);
	cr_assert_eq(si.num_dbs, 3);
	cr_assert_eq(si.key_encoding, SF_ENC_RAW);
	cr_assert_eq(si.total_rows, 306);
	cr_assert_str_eq(si.strategy, "hash");
	cr_assert_str_eq(si.hash_algorithm, "xxh3_64");

	uint64_t total = 0;
	for (uint32_t db = 0; db < si.num_dbs; db++) {
		struct sf_shard_info sh;
		struct sf_iter *it;
		const uint8_t *k;
		size_t kl, prevl = 0;
		uint64_t vl, cnt = 0;
		uint8_t prev[512];
		int rc;
		cr_assert_eq(sf_snapshot_shard(s, db, &sh), 0);
		cr_assert_eq(sf_iter_open(s, db, &it, err, sizeof(err)), 0, "%s", err);
		while ((rc = sf_iter_next(it, &k, &kl, &vl, err, sizeof(err))) == 0) {
			if (cnt) {
				size_t m = kl < prevl ? kl : prevl;
				int c = memcmp(prev, k, m);
				cr_assert(c < 0 || (c == 0 && prevl < kl), "keys out of order");
			}
			memcpy(prev, k, kl);
			prevl = kl;
			uint32_t routed;
			struct sf_key key = sf_key_bytes(k, kl);
			cr_assert_eq(sf_snapshot_route(s, &key, &routed, NULL, 0), 0);
			cr_assert_eq(routed, db);
			cnt++;
		}
		cr_assert_eq(rc, SF_NOTFOUND, "%s", err);
		cr_assert_eq(cnt, sh.row_count);
		total += cnt;
		sf_iter_close(it);
	}
	cr_assert_eq(total, 306);
	struct sf_shard_info bad;
	cr_assert_eq(sf_snapshot_shard(s, 3, &bad), SF_EINVAL);
	sf_snapshot_release(s);
	sf_reader_close(r);
	free(url);
}

Test(reader, pinned_manifest_by_ref_and_by_offset)
{
	char *dir = copy_fixture("utf8");
	char *u64 = sft_data("shardyfusion/u64/snapshot");
	char cmd[8192], err[512] = "";
	snprintf(cmd, sizeof(cmd), "cp -r '%s/manifests/.' '%s/manifests/' && cp -r '%s/shards/.' '%s/shards/' && cp '%s/_CURRENT' '%s/_CURRENT'",
		 u64, dir, u64, dir, u64, dir);
	cr_assert_eq(system(cmd), 0);

	struct sf_options opt;
	sf_options_init(&opt);
	opt.history_offset = 1;
	struct sf_reader *r = NULL;
	cr_assert_eq(sf_reader_open(&r, dir, &opt, err, sizeof(err)), 0, "%s", err);
	struct sf_snapshot *s = sf_reader_acquire(r);
	struct sf_snapshot_info si;
	sf_snapshot_info(s, &si);
	/* utf8 was written a little before u64 */
	cr_assert_eq(si.key_encoding, SF_ENC_UTF8, "%s", si.run_id);
	sf_snapshot_release(s);
	int changed = 5;
	cr_assert_eq(sf_reader_refresh(r, &changed, NULL, 0), 0);
	cr_assert_eq(changed, 0);

	struct sf_snapshot *p = NULL;
	struct sf_history_entry *h;
	size_t n;
	cr_assert_eq(sf_history(r, &h, &n, NULL, 0), 0);
	cr_assert_eq(n, 2);
	cr_assert_eq(sf_reader_open_manifest(r, h[0].manifest_ref, &p, err, sizeof(err)), 0, "%s", err);
	sf_snapshot_info(p, &si);
	cr_assert_eq(si.key_encoding, SF_ENC_U64BE);
	sf_snapshot_release(p);
	sf_history_free(h, n);
	sf_reader_close(r);
	sft_rmrf(dir);
	free(dir);
	free(u64);
}

Test(reader, shard_replaced_under_its_etag_is_an_error_then_the_shard_reopens)
{
	char *dir = copy_fixture("utf8");
	char cmd[8192], err[1024] = "";
	struct sf_options opt;
	struct sf_reader *r = NULL;
	void *v = NULL;
	size_t len;

	sf_options_init(&opt);
	opt.access_mode = SF_ACCESS_RANGE;
	opt.cache_bytes = 64 * 1024; /* tiny: forces fresh page fetches */
	cr_assert_eq(sf_reader_open(&r, dir, &opt, err, sizeof(err)), 0, "%s", err);
	struct sf_key k = sf_key_text("a/b", 3);
	cr_assert_eq(sf_get(r, &k, &v, &len, err, sizeof(err)), 0, "%s", err);
	sf_free(v);

	/* Rewrite every shard.db (same bytes, new identity) behind the reader. */
	snprintf(cmd, sizeof(cmd),
		 "sleep 0.01; for f in $(find '%s/shards' -name shard.db); do cp $f $f.x && mv $f.x $f; done", dir);
	cr_assert_eq(system(cmd), 0);
	int seen_error = 0;
	for (int i = 0; i < 2008 && !seen_error; i++) {
		char key[32];
		snprintf(key, sizeof(key), "item-%05d", i);
		struct sf_key ki = sf_key_text(key, strlen(key));
		int rc = sf_get(r, &ki, &v, &len, err, sizeof(err));
		if (rc == 0) {
			sf_free(v);
			continue;
		}
		cr_assert_eq(rc, SF_EHTTP_412, "%d %s", rc, err);
		seen_error = 1;
		/* The shard is reopened on the new object for later lookups:
		 * whole-object consistent, not failed for the snapshot's life. */
		rc = sf_get(r, &ki, &v, &len, err, sizeof(err));
		cr_assert_eq(rc, 0, "after reopen: %d %s", rc, err);
		sf_free(v);
	}
	cr_assert(seen_error, "a changed object was read without an error");
	sf_reader_close(r);
	sft_rmrf(dir);
	free(dir);
}

Test(reader, file_sources_are_opened_in_place_without_a_copy)
{
	char *url = sft_fixture_url("u64");
	char *cache = sft_tmpdir();
	struct sf_options opt;
	struct sf_reader *r = NULL;
	char err[512] = "", cmd[4200];
	void *v;
	size_t len;

	sf_options_init(&opt);
	opt.access_mode = SF_ACCESS_DOWNLOAD;
	opt.cache_dir = cache;
	cr_assert_eq(sf_reader_open(&r, url, &opt, err, sizeof(err)), 0, "%s", err);
	for (uint64_t k = 0; k < 300; k++) {
		struct sf_key key = sf_key_uint(k);
		int rc = sf_get(r, &key, &v, &len, NULL, 0);
		cr_assert(rc == 0 || rc == SF_NOTFOUND);
		if (rc == 0)
			sf_free(v);
	}
	struct sf_stats st;
	sf_reader_stats(r, &st);
	cr_assert_eq(st.shard_opens, 3);
	cr_assert_eq(st.downloads, 0);
	snprintf(cmd, sizeof(cmd), "test -z \"$(ls -A '%s')\"", cache);
	cr_assert_eq(system(cmd), 0, "the cache directory is not empty");
	sf_reader_close(r);
	sft_rmrf(cache);
	free(cache);
	free(url);
}
