/*
 * test_build.c -- the builder (core/build.c) against file:// prefixes,
 * read back with nothing but plain sqlite3, jansson and the manifest
 * parser: object layout, shard schema and page size, manifest schema
 * (compared with a real shardyfusion manifest), every manifest field,
 * min/max key JSON, `_CURRENT`'s exact bytes, empty shards, sidecars bound
 * to the shard's ETag, routing vectors from FORMAT.md 4, a second publish
 * keeping history, key validation and temp-file cleanup.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "manifest.h"
#include "sf_test.h"
#include "shardyfs.h"
#include "store.h"

TestSuite(build, .timeout = 120);

/* ---- helpers ---------------------------------------------------- */

struct row {
	struct sf_key key;
	const void *val;
	size_t vlen;
};

/* Builds a snapshot of rows into file://dir/snap; returns the manifest
 * ref (malloc'd). */
static char *build(const char *prefix, enum sf_key_encoding enc,
		   uint32_t num_dbs, int sidecar, const char *run_id,
		   const char *tmp_dir, const struct row *rows, size_t n)
{
	struct sf_build_options bo;
	struct sf_builder *b = NULL;
	char err[512] = "", *ref = NULL;
	int rc;

	sf_build_options_init(&bo);
	bo.key_encoding = enc;
	bo.num_dbs = num_dbs;
	bo.emit_sidecar = sidecar;
	bo.run_id = run_id;
	bo.tmp_dir = tmp_dir;
	rc = sf_builder_open(&b, prefix, NULL, &bo, err, sizeof(err));
	cr_assert_eq(rc, 0, "open: %d %s", rc, err);
	for (size_t i = 0; i < n; i++) {
		rc = sf_builder_add(b, &rows[i].key, rows[i].val, rows[i].vlen,
				    err, sizeof(err));
		cr_assert_eq(rc, 0, "add %zu: %d %s", i, rc, err);
	}
	rc = sf_builder_publish(b, &ref, err, sizeof(err));
	cr_assert_eq(rc, 0, "publish: %d %s", rc, err);
	cr_assert_not_null(ref);
	sf_builder_free(b);
	return ref;
}

static const char *path_of(const char *url)
{
	cr_assert(strncmp(url, "file://", 7) == 0, "not a file URL: %s", url);
	return url + 7;
}

static char *prefix_in(const char *dir)
{
	char *p = NULL;
	cr_assert(asprintf(&p, "file://%s/snap", dir) > 0);
	return p;
}

static int exists(const char *path)
{
	struct stat sb;
	return stat(path, &sb) == 0;
}

static struct manifest *load_manifest(const char *ref)
{
	struct manifest *m = NULL;
	char err[512] = "";
	size_t len = 0;
	uint8_t *buf = sft_read_file(path_of(ref), &len);

	cr_assert_not_null(buf, "cannot read %s", ref);
	cr_assert_eq(manifest_parse(buf, len, &m, err, sizeof(err)), 0, "%s",
		     err);
	free(buf);
	return m;
}

static char *sql_text(sqlite3 *db, const char *sql)
{
	sqlite3_stmt *st = NULL;
	char *out = NULL;

	cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK,
		     "%s: %s", sql, sqlite3_errmsg(db));
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_text(st, 0))
		out = strdup((const char *)sqlite3_column_text(st, 0));
	sqlite3_finalize(st);
	return out;
}

static sqlite3 *open_ro(const char *path)
{
	sqlite3 *db = NULL;
	char *uri = NULL;

	cr_assert(asprintf(&uri, "file:%s?immutable=1", path) > 0);
	cr_assert_eq(sqlite3_open_v2(uri, &db,
				     SQLITE_OPEN_READONLY | SQLITE_OPEN_URI,
				     NULL),
		     SQLITE_OK, "%s", path);
	free(uri);
	return db;
}

static int is_hex(const char *s, size_t n)
{
	if (strlen(s) != n)
		return 0;
	for (; *s; s++)
		if (!((*s >= '0' && *s <= '9') || (*s >= 'a' && *s <= 'f')))
			return 0;
	return 1;
}

/* YYYY-MM-DDTHH:MM:SS.ffffffZ */
static int is_stamp(const char *s)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.ddddddZ";

	if (strlen(s) != sizeof(pat) - 1)
		return 0;
	for (size_t i = 0; pat[i]; i++) {
		if (pat[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pat[i])
			return 0;
	}
	return 1;
}

/* Value of stored key `k` in the shard at db_url, or NULL. */
static uint8_t *shard_value(const char *db_url, const void *k, size_t klen,
			    size_t *vlen)
{
	char *path = NULL;
	sqlite3 *db;
	sqlite3_stmt *st = NULL;
	uint8_t *out = NULL;

	cr_assert(asprintf(&path, "%s/shard.db", path_of(db_url)) > 0);
	db = open_ro(path);
	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT v FROM kv WHERE k = ?1", -1,
					&st, NULL),
		     SQLITE_OK);
	sqlite3_bind_blob(st, 1, k, (int)klen, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW) {
		*vlen = (size_t)sqlite3_column_bytes(st, 0);
		out = malloc(*vlen + 1);
		if (*vlen)
			memcpy(out, sqlite3_column_blob(st, 0), *vlen);
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	free(path);
	return out;
}

/* ---- tests -------------------------------------------------------- */

Test(build, writes_the_shardyfusion_layout)
{
	char *dir = sft_tmpdir(), *prefix = prefix_in(dir);
	enum { N = 300, DBS = 7 };
	struct row rows[N];
	char keys[N][32], vals[N][48];
	uint64_t want_rows[DBS] = {0};
	char err[512] = "";

	for (int i = 0; i < N; i++) {
		snprintf(keys[i], sizeof(keys[i]), "key-%05d", i * 7919 % 100000);
		snprintf(vals[i], sizeof(vals[i]), "value %d", i);
		rows[i].key = sf_key_text(keys[i], strlen(keys[i]));
		rows[i].val = vals[i];
		rows[i].vlen = strlen(vals[i]);
		want_rows[sf_key_hash(&rows[i].key) % DBS]++;
	}
	char *ref = build(prefix, SF_ENC_UTF8, DBS, 1, "run1", NULL, rows, N);

	/* _CURRENT: sorted keys, no spaces, exactly these five fields. */
	char *cur_path = NULL;
	cr_assert(asprintf(&cur_path, "%s/snap/_CURRENT", dir) > 0);
	size_t clen = 0;
	char *cur = (char *)sft_read_file(cur_path, &clen);
	cr_assert_not_null(cur);
	struct sf_current c;
	cr_assert_eq(current_parse((uint8_t *)cur, clen, &c, err, sizeof(err)),
		     0, "%s", err);
	cr_assert_str_eq(c.manifest_ref, ref);
	cr_assert_str_eq(c.run_id, "run1");
	cr_assert(is_stamp(c.updated_at), "%s", c.updated_at);
	char *want = NULL;
	cr_assert(asprintf(&want,
			   "{\"format_version\":1,\"manifest_content_type\":"
			   "\"application/x-sqlite3\",\"manifest_ref\":\"%s\","
			   "\"run_id\":\"run1\",\"updated_at\":\"%s\"}",
			   ref, c.updated_at) > 0);
	cr_assert_str_eq(cur, want);
	current_clear(&c);

	/* Manifest location. */
	char *mdir = NULL;
	cr_assert(asprintf(&mdir, "%s/manifests/", prefix) > 0);
	cr_assert(strncmp(ref, mdir, strlen(mdir)) == 0, "%s", ref);
	const char *ts = ref + strlen(mdir);
	char tsbuf[28];
	memcpy(tsbuf, ts, 27);
	tsbuf[27] = 0;
	cr_assert(is_stamp(tsbuf), "%s", ts);
	cr_assert_str_eq(ts + 27, "_run_id=run1/manifest");

	/* Manifest schema: identical to a real shardyfusion manifest. */
	char *fx = sft_data("shardyfusion/utf8/snapshot/manifests/"
			    "2026-11-25T07:32:19.496948Z_run_id="
			    "b9aa90b271ef41d7ad4ae9f6e42e4aac/manifest");
	sqlite3 *fdb = open_ro(fx), *mdb = open_ro(path_of(ref));
	const char *tables[] = {"build_meta", "shards"};
	for (int t = 0; t < 2; t++) {
		char q[128];
		snprintf(q, sizeof(q),
			 "SELECT sql FROM sqlite_master WHERE name = '%s'",
			 tables[t]);
		char *a = sql_text(fdb, q), *b = sql_text(mdb, q);
		cr_assert_not_null(a);
		cr_assert_not_null(b, "no table %s", tables[t]);
		cr_assert_str_eq(b, a);
		free(a);
		free(b);
	}
	char *ntables = sql_text(mdb, "SELECT count(*) FROM sqlite_master");
	cr_assert_str_eq(ntables, "2"); /* two tables, no index, nothing else */
	free(ntables);
	char *meta = sql_text(mdb, "SELECT count(*) FROM build_meta");
	cr_assert_str_eq(meta, "1");
	free(meta);

	/* build_meta fields. */
	struct {
		const char *col, *want;
	} fields[] = {
		{"run_id", "run1"},
		{"num_dbs", "7"},
		{"s3_prefix", prefix},
		{"key_col", "_key"},
		{"sharding", "{\"cel_columns\": null, \"cel_expr\": null, "
			     "\"hash_algorithm\": \"xxh3_64\", \"routing_values\": "
			     "null, \"strategy\": \"hash\"}"},
		{"db_path_template", "db={db_id:05d}"},
		{"shard_prefix", "shards"},
		{"format_version", "4"},
		{"key_encoding", "utf8"},
		{"custom", "{\"sqlite_sidecar\": {\"codec\": \"zstd\", "
			   "\"filename\": \"shard.sidecar\", \"format_version\": 8, "
			   "\"page_size\": 4096}}"},
		{"typeof(num_dbs)", "integer"},
		{"typeof(format_version)", "integer"},
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		char q[128];
		snprintf(q, sizeof(q), "SELECT %s FROM build_meta", fields[i].col);
		char *v = sql_text(mdb, q);
		cr_assert_not_null(v, "%s", fields[i].col);
		cr_assert_str_eq(v, fields[i].want, "%s", fields[i].col);
		free(v);
	}
	char *created = sql_text(mdb, "SELECT created_at FROM build_meta");
	cr_assert(is_stamp(created), "%s", created);
	free(created);
	sqlite3_close(fdb);

	/* Shard rows: one per non-empty shard, as the parser sees them. */
	struct manifest *m = load_manifest(ref);
	cr_assert_eq(m->num_dbs, DBS);
	cr_assert_eq(m->key_encoding, SF_ENC_UTF8);
	cr_assert(m->has_sidecar);
	size_t nonempty = 0;
	for (int d = 0; d < DBS; d++)
		nonempty += want_rows[d] != 0;
	cr_assert_eq(m->n_shards, nonempty);
	for (size_t i = 0; i < m->n_shards; i++) {
		const struct manifest_shard *s = &m->shards[i];
		char *wurl = NULL, *db = NULL, *sc = NULL;

		cr_assert_eq(s->row_count, want_rows[s->db_id]);
		cr_assert(asprintf(&wurl, "%s/shards/run_id=run1/db=%05u/attempt=00",
				   prefix, s->db_id) > 0);
		cr_assert_str_eq(s->db_url, wurl);
		cr_assert_eq(s->attempt, 0);
		cr_assert(is_hex(s->checkpoint_id, 32), "%s", s->checkpoint_id);
		cr_assert_str_eq(s->writer_info,
				 "{\"attempt\": 0, \"duration_ms\": 0, "
				 "\"stage_id\": null, \"task_attempt_id\": null}");
		cr_assert(asprintf(&db, "%s/shard.db", path_of(wurl)) > 0);
		cr_assert(asprintf(&sc, "%s/shard.sidecar", path_of(wurl)) > 0);
		struct stat sb;
		cr_assert_eq(stat(db, &sb), 0, "%s", db);
		cr_assert_eq((uint64_t)sb.st_size, s->db_bytes);

		/* The shard database itself. */
		sqlite3 *sdb = open_ro(db);
		char *schema = sql_text(sdb, "SELECT group_concat(sql, ';') FROM "
					     "sqlite_master WHERE type = 'table'");
		cr_assert_str_eq(schema, "CREATE TABLE kv (k BLOB PRIMARY KEY, "
					 "v BLOB NOT NULL) WITHOUT ROWID");
		free(schema);
		char *ps = sql_text(sdb, "PRAGMA page_size");
		cr_assert_str_eq(ps, "4096");
		free(ps);
		char *cnt = sql_text(sdb, "SELECT count(*) FROM kv");
		char wc[32];
		snprintf(wc, sizeof(wc), "%llu", (unsigned long long)s->row_count);
		cr_assert_str_eq(cnt, wc);
		free(cnt);
		char *fl = sql_text(sdb, "PRAGMA freelist_count");
		cr_assert_str_eq(fl, "0");
		free(fl);
		sqlite3_close(sdb);
		char *j = NULL;
		cr_assert(asprintf(&j, "%s-journal", db) > 0);
		cr_assert(!exists(j), "journal left behind");
		free(j);

		/* Sidecar: SQPC v8, page size 4096, bound to the ETag. */
		struct store *st = NULL;
		struct store_info info;
		char *dburl = NULL;
		cr_assert(asprintf(&dburl, "%s/shard.db", wurl) > 0);
		cr_assert_eq(store_open(&st, prefix, NULL, err, sizeof(err)), 0,
			     "%s", err);
		cr_assert_eq(store_head(st, dburl, &info, err, sizeof(err)), 0,
			     "%s", err);
		store_close(st);
		size_t sclen = 0;
		uint8_t *scb = sft_read_file(sc, &sclen);
		cr_assert_not_null(scb, "no sidecar %s", sc);
		size_t tl = strlen(info.etag);
		cr_assert(tl > 0);
		cr_assert_geq(sclen, 18 + tl);
		cr_assert(memcmp(scb, "SQPC", 4) == 0);
		cr_assert_eq(scb[4], 8);
		cr_assert_eq(scb[13] | scb[14] << 8 | scb[15] << 16 |
				     (uint32_t)scb[16] << 24,
			     4096u);
		cr_assert_eq(scb[17], tl);
		cr_assert(memcmp(scb + 18, info.etag, tl) == 0,
			  "sidecar not bound to %s", info.etag);
		free(scb);
		free(dburl);
		free(wurl);
		free(db);
		free(sc);
	}

	/* Empty shards: no row and no directory. */
	for (int d = 0; d < DBS; d++) {
		char *p = NULL;
		cr_assert(asprintf(&p, "%s/snap/shards/run_id=run1/db=%05d", dir,
				   d) > 0);
		cr_assert_eq(exists(p), want_rows[d] != 0, "%s", p);
		cr_assert_eq(manifest_shard(m, (uint32_t)d) != NULL,
			     want_rows[d] != 0);
		free(p);
	}

	/* Every row reads back from the shard its key routes to. */
	for (int i = 0; i < N; i++) {
		uint32_t d = (uint32_t)(sf_key_hash(&rows[i].key) % DBS);
		size_t vlen = 0;
		uint8_t *v = shard_value(manifest_shard(m, d)->db_url, keys[i],
					 strlen(keys[i]), &vlen);
		cr_assert_not_null(v, "%s", keys[i]);
		cr_assert_eq(vlen, rows[i].vlen);
		cr_assert(memcmp(v, vals[i], vlen) == 0);
		free(v);
	}

	sqlite3_close(mdb);
	manifest_free(m);
	free(fx);
	free(mdir);
	free(want);
	free(cur);
	free(cur_path);
	free(ref);
	free(prefix);
	sft_rmrf(dir);
	free(dir);
}

Test(build, routes_as_the_format_vectors_say)
{
	/* FORMAT.md 4: int 0 -> 1, int 1 -> 6, int 42 -> 0 (mod 8);
	 * text "user-123" -> 1 (mod 5), text "" -> 3 (mod 5). */
	char *dir = sft_tmpdir(), *prefix = prefix_in(dir);
	struct row rows[] = {
		{sf_key_uint(0), "zero", 4},
		{sf_key_uint(1), "one", 3},
		{sf_key_uint(42), "forty-two", 9},
	};
	char *ref = build(prefix, SF_ENC_U64BE, 8, 0, NULL, NULL, rows, 3);
	struct manifest *m = load_manifest(ref);
	const uint32_t want[] = {1, 6, 0};
	for (int i = 0; i < 3; i++) {
		uint8_t k[8] = {0};
		size_t vlen;
		k[7] = (uint8_t)rows[i].key.u;
		const struct manifest_shard *s = manifest_shard(m, want[i]);
		cr_assert_not_null(s, "shard %u", want[i]);
		uint8_t *v = shard_value(s->db_url, k, 8, &vlen);
		cr_assert_not_null(v, "key %d not in shard %u", i, want[i]);
		cr_assert_eq(vlen, rows[i].vlen);
		free(v);
	}
	cr_assert_eq(m->n_shards, 3);
	cr_assert_str_eq(m->custom_json, "{}");
	cr_assert(!m->has_sidecar);
	manifest_free(m);
	free(ref);

	struct row trows[] = {
		{sf_key_text("user-123", 8), "u", 1},
		{sf_key_text("", 0), "", 0},
	};
	char *p2 = NULL;
	cr_assert(asprintf(&p2, "%s2", prefix) > 0);
	ref = build(p2, SF_ENC_UTF8, 5, 1, NULL, NULL, trows, 2);
	m = load_manifest(ref);
	size_t vlen = 99;
	uint8_t *v = shard_value(manifest_shard(m, 1)->db_url, "user-123", 8,
				 &vlen);
	cr_assert_not_null(v);
	free(v);
	v = shard_value(manifest_shard(m, 3)->db_url, "", 0, &vlen);
	cr_assert_not_null(v, "empty key");
	cr_assert_eq(vlen, 0);
	free(v);
	cr_assert_str_eq(manifest_shard(m, 3)->min_key, "\"\"");
	manifest_free(m);
	free(ref);
	free(p2);
	free(prefix);
	sft_rmrf(dir);
	free(dir);
}

/* min_key/max_key of a one-shard snapshot of the given rows. */
static void min_max(enum sf_key_encoding enc, const struct row *rows,
		    size_t n, const char *want_min, const char *want_max)
{
	char *dir = sft_tmpdir(), *prefix = prefix_in(dir);
	char *ref = build(prefix, enc, 1, 1, NULL, NULL, rows, n);
	struct manifest *m = load_manifest(ref);
	const struct manifest_shard *s = manifest_shard(m, 0);

	cr_assert_not_null(s);
	if (want_min)
		cr_assert_str_eq(s->min_key, want_min);
	else
		cr_assert_null(s->min_key, "min %s", s->min_key);
	if (want_max)
		cr_assert_str_eq(s->max_key, want_max);
	else
		cr_assert_null(s->max_key, "max %s", s->max_key);
	cr_assert_eq(s->row_count, n);
	manifest_free(m);
	free(ref);
	free(prefix);
	sft_rmrf(dir);
	free(dir);
}

Test(build, writes_min_max_keys_as_shardyfusion_does)
{
	struct row u64[] = {
		{sf_key_uint(49997), "a", 1},
		{sf_key_uint(4), "b", 1},
		{sf_key_uint(INT64_MAX), "c", 1},
	};
	min_max(SF_ENC_U64BE, u64, 3, "4", "9223372036854775807");

	struct row u32[] = {
		{sf_key_uint(4294967295u), "a", 1},
		{sf_key_uint(7), "b", 1},
	};
	min_max(SF_ENC_U32BE, u32, 2, "7", "4294967295");

	/* ASCII escaping, lowercase \u, surrogate pairs. */
	struct row utf8[] = {
		{sf_key_text("h\xc3\xa9llo", 6), "a", 1},
		{sf_key_text("\xf0\x9f\x94\x91", 4), "b", 1},
		{sf_key_text("\x01\"\\\t\x7f", 5), "c", 1},
	};
	min_max(SF_ENC_UTF8, utf8, 3, "\"\\u0001\\\"\\\\\\t\\u007f\"",
		"\"\\ud83d\\udd11\"");

	/* Bytes keys: their UTF-8 decoding, or null when not UTF-8. */
	struct row raw[] = {
		{sf_key_bytes("\0", 1), "a", 1},
		{sf_key_bytes("\xff\x00", 2), "b", 1},
		{sf_key_bytes("\xf4\x8f\xbf\xbf~0", 6), "c", 1},
	};
	min_max(SF_ENC_RAW, raw, 3, "\"\\u0000\"", NULL);
	struct row raw2[] = {
		{sf_key_bytes("\0\0", 2), "a", 1},
		{sf_key_bytes("\xf4\x8f\xbf\xbf~0", 6), "c", 1},
		{sf_key_bytes("\xc0\x80", 2), "d", 1}, /* overlong: not UTF-8 */
	};
	min_max(SF_ENC_RAW, raw2, 3, "\"\\u0000\\u0000\"",
		"\"\\udbff\\udfff~0\"");
}

Test(build, keeps_the_last_value_big_values_and_odd_keys)
{
	char *dir = sft_tmpdir(), *prefix = prefix_in(dir);
	size_t big = 300 * 1024;
	uint8_t *bv = malloc(big);
	for (size_t i = 0; i < big; i++)
		bv[i] = (uint8_t)(i * 131 + 7);
	struct row rows[] = {
		{sf_key_bytes("a\0b", 3), "first", 5},
		{sf_key_bytes("a\0b", 3), "second", 6},
		{sf_key_bytes("big", 3), bv, big},
		{sf_key_text("50%/x", 5), "", 0},
		{sf_key_bytes("", 0), "empty key", 9},
	};
	char *ref = build(prefix, SF_ENC_RAW, 3, 1, NULL, NULL, rows, 5);
	struct manifest *m = load_manifest(ref);
	uint64_t total = 0;
	for (size_t i = 0; i < m->n_shards; i++)
		total += m->shards[i].row_count;
	cr_assert_eq(total, 4, "duplicate key counted twice");
	for (size_t i = 1; i < 5; i++) {
		uint32_t d = (uint32_t)(sf_key_hash(&rows[i].key) % 3);
		size_t vlen = 0;
		uint8_t *v = shard_value(manifest_shard(m, d)->db_url,
					 rows[i].key.data, rows[i].key.len,
					 &vlen);
		cr_assert_not_null(v, "row %zu", i);
		cr_assert_eq(vlen, rows[i].vlen, "row %zu", i);
		cr_assert(memcmp(v, rows[i].val, vlen) == 0, "row %zu", i);
		free(v);
	}
	manifest_free(m);
	free(ref);
	free(bv);
	free(prefix);
	sft_rmrf(dir);
	free(dir);
}

Test(build, a_second_publish_moves_current_and_keeps_history)
{
	char *dir = sft_tmpdir(), *prefix = prefix_in(dir);
	struct row r1[] = {{sf_key_uint(1), "old", 3}};
	struct row r2[] = {{sf_key_uint(1), "new", 3}, {sf_key_uint(2), "x", 1}};
	char *ref1 = build(prefix, SF_ENC_U64BE, 2, 1, NULL, NULL, r1, 1);
	char *ref2 = build(prefix, SF_ENC_U64BE, 2, 1, NULL, NULL, r2, 2);
	char err[256] = "";

	cr_assert_str_neq(ref1, ref2);
	cr_assert(strcmp(ref1, ref2) < 0, "manifest names sort by time");
	struct manifest *m1 = load_manifest(ref1), *m2 = load_manifest(ref2);
	cr_assert_str_neq(m1->run_id, m2->run_id);
	cr_assert(is_hex(m1->run_id, 32), "%s", m1->run_id);
	cr_assert_eq(m1->shards[0].row_count, 1);

	char *cur_path = NULL;
	cr_assert(asprintf(&cur_path, "%s/snap/_CURRENT", dir) > 0);
	size_t clen;
	uint8_t *cur = sft_read_file(cur_path, &clen);
	struct sf_current c;
	cr_assert_eq(current_parse(cur, clen, &c, err, sizeof(err)), 0);
	cr_assert_str_eq(c.manifest_ref, ref2);
	cr_assert_str_eq(c.run_id, m2->run_id);
	current_clear(&c);

	/* Both manifests remain under manifests/. */
	char *mdir = NULL;
	cr_assert(asprintf(&mdir, "%s/snap/manifests", dir) > 0);
	DIR *d = opendir(mdir);
	int n = 0;
	struct dirent *e;
	for (e = readdir(d); e; e = readdir(d))
		n += e->d_name[0] != '.';
	closedir(d);
	cr_assert_eq(n, 2);

	free(mdir);
	free(cur);
	free(cur_path);
	manifest_free(m1);
	manifest_free(m2);
	free(ref1);
	free(ref2);
	free(prefix);
	sft_rmrf(dir);
	free(dir);
}

Test(build, publishes_an_empty_snapshot)
{
	char *dir = sft_tmpdir(), *prefix = prefix_in(dir);
	char *ref = build(prefix, SF_ENC_UTF8, 4, 1, NULL, NULL, NULL, 0);
	struct manifest *m = load_manifest(ref);

	cr_assert_eq(m->num_dbs, 4);
	cr_assert_eq(m->n_shards, 0);
	manifest_free(m);
	free(ref);
	free(prefix);
	sft_rmrf(dir);
	free(dir);
}

Test(build, rejects_bad_options_and_keys)
{
	char *dir = sft_tmpdir(), *prefix = prefix_in(dir);
	struct sf_build_options bo;
	struct sf_builder *b = NULL;
	char err[256] = "";

	sf_build_options_init(&bo);
	bo.num_dbs = 0;
	cr_assert_eq(sf_builder_open(&b, prefix, NULL, &bo, err, sizeof(err)),
		     SF_EINVAL);
	cr_assert_null(b);
	sf_build_options_init(&bo);
	bo.run_id = "../evil";
	cr_assert_eq(sf_builder_open(&b, prefix, NULL, &bo, err, sizeof(err)),
		     SF_EINVAL);

	sf_build_options_init(&bo);
	bo.key_encoding = SF_ENC_U32BE;
	bo.tmp_dir = dir;
	cr_assert_eq(sf_builder_open(&b, prefix, NULL, &bo, err, sizeof(err)),
		     0, "%s", err);
	struct sf_key big = sf_key_uint(1ull << 40);
	struct sf_key neg = sf_key_int(-1);
	struct sf_key txt = sf_key_text("abc", 3);
	cr_assert_eq(sf_builder_add(b, &big, "v", 1, err, sizeof(err)), SF_EKEY);
	cr_assert_eq(sf_builder_add(b, &neg, "v", 1, err, sizeof(err)), SF_EKEY);
	cr_assert_eq(sf_builder_add(b, &txt, "v", 1, err, sizeof(err)), SF_EKEY);
	struct sf_key wide = sf_key_uint(4294967295u);
	cr_assert_eq(sf_builder_add(b, &wide, "v", 1, err, sizeof(err)), 0);
	struct sf_key ok = sf_key_uint(5);
	cr_assert_eq(sf_builder_add(b, &ok, "v", 1, err, sizeof(err)), 0, "%s",
		     err);
	char *ref = NULL;
	cr_assert_eq(sf_builder_publish(b, &ref, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(sf_builder_publish(b, NULL, err, sizeof(err)), SF_EINVAL);
	cr_assert_eq(sf_builder_add(b, &ok, "v", 1, err, sizeof(err)),
		     SF_EINVAL);
	sf_builder_free(b);
	sf_free(ref);

	/* u64be keys above 2^63-1 cannot be routed (shardyfusion hashes
	 * integers as signed 64-bit): refused, not published unreachable. */
	sf_build_options_init(&bo);
	bo.tmp_dir = dir;
	cr_assert_eq(sf_builder_open(&b, prefix, NULL, &bo, err, sizeof(err)),
		     0, "%s", err);
	struct sf_key top = sf_key_uint(1ull << 63);
	cr_assert_eq(sf_builder_add(b, &top, "v", 1, err, sizeof(err)), SF_EKEY);
	struct sf_key max = sf_key_uint(INT64_MAX);
	cr_assert_eq(sf_builder_add(b, &max, "v", 1, err, sizeof(err)), 0);
	sf_builder_free(b); /* never published */

	/* Temp files lived under tmp_dir and are gone. */
	DIR *d = opendir(dir);
	struct dirent *e;
	for (e = readdir(d); e; e = readdir(d))
		cr_assert(e->d_name[0] == '.' || !strcmp(e->d_name, "snap"),
			  "left behind: %s", e->d_name);
	closedir(d);
	free(prefix);
	sft_rmrf(dir);
	free(dir);
}

Test(build, publishing_to_an_unwritable_prefix_fails_cleanly)
{
	char *dir = sft_tmpdir();
	char *file = NULL, *prefix = NULL, *ref = NULL;
	struct sf_build_options bo;
	struct sf_builder *b = NULL;
	char err[256] = "";
	struct sf_key k = sf_key_uint(1);

	/* The prefix is below a regular file: nothing can be created. */
	cr_assert(asprintf(&file, "%s/plain", dir) > 0);
	cr_assert_eq(sft_write_file(file, "x", 1), 0);
	cr_assert(asprintf(&prefix, "file://%s/snap", file) > 0);
	sf_build_options_init(&bo);
	bo.tmp_dir = dir;
	int rc = sf_builder_open(&b, prefix, NULL, &bo, err, sizeof(err));
	if (rc == 0) {
		cr_assert_eq(sf_builder_add(b, &k, "v", 1, err, sizeof(err)), 0);
		rc = sf_builder_publish(b, &ref, err, sizeof(err));
		sf_builder_free(b);
	}
	cr_assert_lt(rc, 0);
	cr_assert_null(ref);
	cr_assert(err[0], "an error message");
	free(file);
	free(prefix);
	sft_rmrf(dir);
	free(dir);
}
