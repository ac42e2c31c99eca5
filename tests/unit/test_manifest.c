/*
 * test_manifest.c -- manifest_parse() against every validation rule of
 * FORMAT.md 3 (one test per rule, each manifest built here with SQLite and
 * serialized), hostile images (bad magic, truncation, random bytes,
 * views), categorical CEL routing, parse_iso8601(), the sidecar entry of
 * `custom`, URL rebasing (FORMAT.md 8), and the four real shardyfusion
 * fixtures: each parses as its info.json says, and every key of
 * answers.tsv routes to the shard whose shard.db really holds it.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sqlite3.h>

#include "manifest.h"
#include "sf_test.h"

TestSuite(manifest, .timeout = 120);

/* ---- building manifests ------------------------------------------- */

#define DDL_META                                                             \
	"CREATE TABLE build_meta (run_id TEXT NOT NULL, created_at TEXT NOT NULL," \
	" num_dbs INTEGER NOT NULL, s3_prefix TEXT NOT NULL, key_col TEXT NOT NULL," \
	" sharding TEXT NOT NULL, db_path_template TEXT NOT NULL,"          \
	" shard_prefix TEXT NOT NULL, format_version INTEGER NOT NULL,"     \
	" key_encoding TEXT NOT NULL, custom TEXT NOT NULL DEFAULT '{}');"
#define DDL_SHARDS                                                           \
	"CREATE TABLE shards (db_id INTEGER NOT NULL PRIMARY KEY, db_url TEXT," \
	" attempt INTEGER NOT NULL, row_count INTEGER NOT NULL,"            \
	" db_bytes INTEGER NOT NULL, min_key TEXT, max_key TEXT,"           \
	" checkpoint_id TEXT, writer_info TEXT NOT NULL DEFAULT '{}');"
/* The same tables without any constraint, to store NULLs and duplicates. */
#define DDL_META_LOOSE                                                       \
	"CREATE TABLE build_meta (run_id, created_at, num_dbs, s3_prefix,"   \
	" key_col, sharding, db_path_template, shard_prefix, format_version," \
	" key_encoding, custom);"
#define DDL_SHARDS_LOOSE                                                     \
	"CREATE TABLE shards (db_id, db_url, attempt, row_count, db_bytes,"  \
	" min_key, max_key, checkpoint_id, writer_info);"

#define HASH_SHARDING                                                        \
	"{\"cel_columns\": null, \"cel_expr\": null, \"hash_algorithm\": \"xxh3_64\", " \
	"\"routing_values\": null, \"strategy\": \"hash\"}"
#define SIDECAR_CUSTOM                                                       \
	"{\"sqlite_sidecar\": {\"codec\": \"zstd\", \"filename\": \"shard.sidecar\", " \
	"\"format_version\": 8, \"page_size\": 4096}}"

struct meta {
	const char *run_id;
	const char *created_at;
	long long num_dbs;
	const char *s3_prefix;
	const char *sharding;
	long long format_version;
	const char *key_encoding;
	const char *custom;
	int loose; /* build_meta without NOT NULL constraints */
};

static struct meta meta_default(void)
{
	struct meta m = {
		"run1", "2026-11-25T07:32:19.680212Z", 4, "s3://b/p",
		HASH_SHARDING, 4, "u64be", SIDECAR_CUSTOM, 0,
	};
	return m;
}

/* INSERT for a build_meta row (sqlite3_free). */
static char *meta_insert(const struct meta *m)
{
	return sqlite3_mprintf(
		"INSERT INTO build_meta VALUES(%Q, %Q, %lld, %Q, '_key', %Q,"
		" 'db={db_id:05d}', 'shards', %lld, %Q, %Q);",
		m->run_id, m->created_at, m->num_dbs, m->s3_prefix, m->sharding,
		m->format_version, m->key_encoding, m->custom);
}

/* INSERT for one shard row with a standard URL (sqlite3_free). */
static char *shard_insert(long long db_id)
{
	return sqlite3_mprintf(
		"INSERT INTO shards VALUES(%lld,"
		" 's3://b/p/shards/run_id=run1/db=%05lld/attempt=00', 0, 10,"
		" 8192, '1', '99', 'ck%lld',"
		" '{\"attempt\": 0, \"duration_ms\": 0, \"stage_id\": null, \"task_attempt_id\": null}');",
		db_id, db_id, db_id);
}

/* Runs SQL on a fresh in-memory database and serializes it (malloc'd). */
static uint8_t *image_of(const char *sql, size_t *len)
{
	sqlite3 *db = NULL;
	char *e = NULL;
	sqlite3_int64 n = 0;
	unsigned char *p;
	uint8_t *out;

	cr_assert_eq(sqlite3_open(":memory:", &db), SQLITE_OK);
	cr_assert_eq(sqlite3_exec(db, sql, NULL, NULL, &e), SQLITE_OK,
		     "building test manifest: %s", e ? e : "?");
	p = sqlite3_serialize(db, "main", &n, 0);
	cr_assert_not_null(p);
	out = malloc((size_t)n);
	cr_assert_not_null(out);
	memcpy(out, p, (size_t)n);
	sqlite3_free(p);
	sqlite3_close(db);
	*len = (size_t)n;
	return out;
}

/* A manifest from a build_meta row and shard ids (-1 ends the list). */
static uint8_t *standard_image(const struct meta *m, const long long *ids,
			       size_t *len)
{
	char *sql = sqlite3_mprintf("%s%s", m->loose ? DDL_META_LOOSE : DDL_META,
				    DDL_SHARDS);
	char *ins = meta_insert(m);
	uint8_t *img;

	sql = sqlite3_mprintf("%z%z", sql, ins);
	for (size_t i = 0; ids && ids[i] >= 0; i++)
		sql = sqlite3_mprintf("%z%z", sql, shard_insert(ids[i]));
	img = image_of(sql, len);
	sqlite3_free(sql);
	return img;
}

static int parse_sql(const char *sql, struct manifest **out, char *err,
		     size_t errlen)
{
	size_t len;
	uint8_t *img = image_of(sql, &len);
	int rc = manifest_parse(img, len, out, err, errlen);

	free(img);
	return rc;
}

static int parse_meta(const struct meta *m, const long long *ids,
		      struct manifest **out, char *err, size_t errlen)
{
	size_t len;
	uint8_t *img = standard_image(m, ids, &len);
	int rc = manifest_parse(img, len, out, err, errlen);

	free(img);
	return rc;
}

/* Asserts a parse fails with `code` and a message containing `word`. */
static void expect_meta(const struct meta *m, const long long *ids, int code,
			const char *word)
{
	struct manifest *man = (struct manifest *)0x1;
	char err[512] = "";
	int rc = parse_meta(m, ids, &man, err, sizeof(err));

	cr_assert_eq(rc, code, "rc %d (%s), want %d", rc, err, code);
	cr_assert_null(man, "no manifest on failure");
	cr_assert_not_null(strstr(err, word), "message \"%s\" lacks \"%s\"",
			   err, word);
}

static void expect_sql(const char *sql, int code, const char *word)
{
	struct manifest *man = (struct manifest *)0x1;
	char err[512] = "";
	int rc = parse_sql(sql, &man, err, sizeof(err));

	cr_assert_eq(rc, code, "rc %d (%s), want %d", rc, err, code);
	cr_assert_null(man);
	cr_assert_not_null(strstr(err, word), "message \"%s\" lacks \"%s\"",
			   err, word);
}

/* ---- a valid manifest ------------------------------------------------ */

Test(manifest, parses_a_valid_manifest)
{
	struct meta mt = meta_default();
	long long ids[] = {2, 0, -1};
	struct manifest *m = NULL;
	const struct manifest_shard *s;
	char err[512] = "";

	cr_assert_eq(parse_meta(&mt, ids, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(m->run_id, "run1");
	cr_assert_str_eq(m->created_at, "2026-11-25T07:32:19.680212Z");
	cr_assert_float_eq(m->created_at_epoch, 1795591939.680212, 1e-5);
	cr_assert_eq(m->num_dbs, 4);
	cr_assert_str_eq(m->s3_prefix, "s3://b/p");
	cr_assert_str_eq(m->key_col, "_key");
	cr_assert_eq(m->strategy, MANIFEST_HASH);
	cr_assert_str_eq(m->strategy_name, "hash");
	cr_assert_str_eq(m->hash_algorithm, "xxh3_64");
	cr_assert_null(m->cel_expr);
	cr_assert_eq(m->n_routing_values, 0);
	cr_assert_str_eq(m->db_path_template, "db={db_id:05d}");
	cr_assert_str_eq(m->shard_prefix, "shards");
	cr_assert_eq(m->format_version, 4);
	cr_assert_eq(m->key_encoding, SF_ENC_U64BE);
	cr_assert_eq(m->has_sidecar, 1);
	cr_assert_str_eq(m->sidecar_filename, "shard.sidecar");
	cr_assert_eq(m->n_shards, 2);
	/* Sorted by db_id whatever the row order. */
	cr_assert_eq(m->shards[0].db_id, 0);
	cr_assert_eq(m->shards[1].db_id, 2);
	cr_assert_null(manifest_shard(m, 1), "db 1 has no row: empty shard");
	cr_assert_null(manifest_shard(m, 3));
	cr_assert_null(manifest_shard(m, 4), "out of range");
	cr_assert_null(manifest_shard(m, UINT32_MAX));
	s = manifest_shard(m, 2);
	cr_assert_not_null(s);
	cr_assert_str_eq(s->db_url, "s3://b/p/shards/run_id=run1/db=00002/attempt=00");
	cr_assert_eq(s->attempt, 0);
	cr_assert_eq(s->row_count, 10);
	cr_assert_eq(s->db_bytes, 8192);
	cr_assert_str_eq(s->min_key, "1");
	cr_assert_str_eq(s->max_key, "99");
	cr_assert_str_eq(s->checkpoint_id, "ck2");
	cr_assert_not_null(strstr(s->writer_info, "duration_ms"));
	manifest_free(m);
	manifest_free(NULL);
}

Test(manifest, finds_every_shard_by_binary_search)
{
	struct meta mt = meta_default();
	long long ids[40];
	struct manifest *m = NULL;
	size_t k = 0;

	mt.num_dbs = 100;
	for (long long i = 97; i >= 0; i -= 3)
		ids[k++] = i;
	ids[k] = -1;
	cr_assert_eq(parse_meta(&mt, ids, &m, NULL, 0), 0);
	cr_assert_eq(m->n_shards, k);
	for (uint32_t d = 0; d < 100; d++) {
		const struct manifest_shard *s = manifest_shard(m, d);
		if (d % 3 == 1) {
			cr_assert_not_null(s, "db %u", d);
			cr_assert_eq(s->db_id, d);
		} else {
			cr_assert_null(s, "db %u", d);
		}
	}
	manifest_free(m);
}

Test(manifest, accepts_a_manifest_with_no_shard_rows)
{
	struct meta mt = meta_default();
	struct manifest *m = NULL;

	cr_assert_eq(parse_meta(&mt, NULL, &m, NULL, 0), 0);
	cr_assert_eq(m->n_shards, 0);
	cr_assert_null(manifest_shard(m, 0));
	manifest_free(m);
}

/* ---- build_meta rows ------------------------------------------------ */

Test(manifest, rejects_missing_build_meta)
{
	expect_sql(DDL_SHARDS, SF_EMANIFEST, "no build_meta table");
}

Test(manifest, rejects_missing_shards_table)
{
	struct meta mt = meta_default();
	char *sql = sqlite3_mprintf("%s%z", DDL_META, meta_insert(&mt));

	expect_sql(sql, SF_EMANIFEST, "no shards table");
	sqlite3_free(sql);
}

Test(manifest, rejects_empty_build_meta)
{
	expect_sql(DDL_META DDL_SHARDS, SF_EMANIFEST, "build_meta has no row");
}

Test(manifest, rejects_two_build_meta_rows)
{
	struct meta mt = meta_default();
	char *sql = sqlite3_mprintf("%s%s%z%z", DDL_META, DDL_SHARDS,
				    meta_insert(&mt), meta_insert(&mt));

	expect_sql(sql, SF_EMANIFEST, "more than one row");
	sqlite3_free(sql);
}

Test(manifest, rejects_a_build_meta_view)
{
	struct meta mt = meta_default();
	char *sql = sqlite3_mprintf(
		"%s%s%z ALTER TABLE build_meta RENAME TO bm;"
		" CREATE VIEW build_meta AS SELECT * FROM bm;",
		DDL_META, DDL_SHARDS, meta_insert(&mt));
	struct manifest *m = NULL;
	char err[512] = "";

	cr_assert_eq(parse_sql(sql, &m, err, sizeof(err)), SF_EMANIFEST, "%s",
		     err);
	cr_assert_not_null(strstr(err, "build_meta"), "%s", err);
	sqlite3_free(sql);
}

Test(manifest, rejects_missing_required_column)
{
	struct meta mt = meta_default();
	char *sql = sqlite3_mprintf(
		"CREATE TABLE build_meta (run_id, created_at, num_dbs, s3_prefix,"
		" sharding, db_path_template, shard_prefix, format_version,"
		" key_encoding, custom);"
		"INSERT INTO build_meta VALUES(%Q, %Q, 4, 's3://b/p', %Q, 'x', 'y', 4,"
		" 'u64be', '{}');%s",
		mt.run_id, mt.created_at, mt.sharding, DDL_SHARDS);

	expect_sql(sql, SF_EMANIFEST, "key_col");
	sqlite3_free(sql);
}

Test(manifest, reads_columns_by_name_in_any_order)
{
	struct meta mt = meta_default();
	char *sql = sqlite3_mprintf(
		"CREATE TABLE build_meta (custom, key_encoding, format_version,"
		" shard_prefix, db_path_template, sharding, key_col, s3_prefix,"
		" num_dbs, created_at, run_id, extra_col);"
		"INSERT INTO build_meta VALUES(NULL, 'utf8', 4, 'sh', 'tpl', %Q,"
		" 'k', 's3://b/p', 2, %Q, 'r', 'ignored');"
		"CREATE TABLE shards (writer_info, db_url, db_bytes, row_count,"
		" attempt, db_id);"
		"INSERT INTO shards VALUES(NULL, 's3://b/p/x', 5, 6, 1, 1);",
		mt.sharding, mt.created_at);
	struct manifest *m = NULL;
	char err[512] = "";

	cr_assert_eq(parse_sql(sql, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(m->run_id, "r");
	cr_assert_eq(m->key_encoding, SF_ENC_UTF8);
	cr_assert_str_eq(m->custom_json, "{}", "NULL custom reads as {}");
	cr_assert_eq(m->has_sidecar, 0);
	cr_assert_eq(m->n_shards, 1);
	cr_assert_eq(m->shards[0].db_id, 1);
	cr_assert_eq(m->shards[0].attempt, 1);
	cr_assert_eq(m->shards[0].row_count, 6);
	cr_assert_eq(m->shards[0].db_bytes, 5);
	cr_assert_null(m->shards[0].min_key);
	cr_assert_null(m->shards[0].checkpoint_id);
	cr_assert_null(m->shards[0].writer_info);
	manifest_free(m);
	sqlite3_free(sql);
}

/* ---- the image itself ---------------------------------------------- */

Test(manifest, rejects_bad_magic)
{
	struct meta mt = meta_default();
	size_t len;
	uint8_t *img = standard_image(&mt, NULL, &len);
	struct manifest *m = NULL;
	char err[512] = "";
	const char *json = "{\"required\": {}, \"shards\": []}";

	img[0] = 's';
	cr_assert_eq(manifest_parse(img, len, &m, err, sizeof(err)),
		     SF_EMANIFEST);
	cr_assert_not_null(strstr(err, "SQLite format 3"), "%s", err);
	img[0] = 'S';
	img[15] = ' '; /* the NUL of the magic */
	cr_assert_eq(manifest_parse(img, len, &m, err, sizeof(err)),
		     SF_EMANIFEST);
	cr_assert_eq(manifest_parse((const uint8_t *)json, strlen(json), &m,
				    err, sizeof(err)), SF_EMANIFEST);
	cr_assert_eq(manifest_parse(img, 0, &m, err, sizeof(err)),
		     SF_EMANIFEST);
	cr_assert_eq(manifest_parse(NULL, 0, &m, err, sizeof(err)),
		     SF_EMANIFEST);
	cr_assert_eq(manifest_parse((const uint8_t *)"SQLite format 3", 16, &m,
				    err, sizeof(err)), SF_EMANIFEST);
	cr_assert_null(m);
	free(img);
}

Test(manifest, rejects_truncated_images)
{
	struct meta mt = meta_default();
	long long ids[] = {0, 1, 3, -1};
	size_t len;
	uint8_t *img = standard_image(&mt, ids, &len);
	size_t must_fail[] = {16, 17, 99, 100, 101, 512, 4096};
	struct manifest *m = NULL;
	char err[512];

	cr_assert_gt(len, 4096);
	for (size_t i = 0; i < sizeof(must_fail) / sizeof(must_fail[0]); i++) {
		cr_assert_eq(manifest_parse(img, must_fail[i], &m, err,
					    sizeof(err)), SF_EMANIFEST,
			     "truncated to %zu", must_fail[i]);
		cr_assert_null(m);
	}
	/* Any other cut: an error, or (when only zero bytes were cut) the
	 * same manifest; never a crash or a different value. */
	for (size_t cut = 16; cut < len; cut += 61) {
		int rc = manifest_parse(img, cut, &m, err, sizeof(err));
		if (rc == 0) {
			cr_assert_eq(m->n_shards, 3, "cut %zu", cut);
			cr_assert_str_eq(m->run_id, "run1");
			manifest_free(m);
		} else {
			cr_assert_eq(rc, SF_EMANIFEST, "cut %zu: %d %s", cut, rc,
				     err);
		}
	}
	free(img);
}

Test(manifest, rejects_random_bytes)
{
	struct meta mt = meta_default();
	size_t len;
	uint8_t *img = standard_image(&mt, NULL, &len);
	uint8_t *junk = malloc(len);
	uint64_t x = 0x9e3779b97f4a7c15ull;
	struct manifest *m = NULL;

	cr_assert_not_null(junk);
	for (int round = 0; round < 100; round++) {
		for (size_t i = 0; i < len; i++) {
			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			junk[i] = (uint8_t)x;
		}
		cr_assert_eq(manifest_parse(junk, len, &m, NULL, 0),
			     SF_EMANIFEST);
		/* With a valid magic: still an error. */
		memcpy(junk, "SQLite format 3", 16);
		cr_assert_eq(manifest_parse(junk, len, &m, NULL, 0),
			     SF_EMANIFEST);
		/* A real header and page 1, random later pages. */
		memcpy(junk, img, 4096);
		cr_assert_eq(manifest_parse(junk, len, &m, NULL, 0),
			     SF_EMANIFEST, "round %d", round);
	}
	free(junk);
	free(img);
}

Test(manifest, survives_flipped_bytes)
{
	struct meta mt = meta_default();
	long long ids[] = {0, 1, 2, 3, -1};
	size_t len;
	uint8_t *img = standard_image(&mt, ids, &len);
	struct manifest *m = NULL;

	for (size_t i = 0; i < len; i += 7) {
		uint8_t saved = img[i];
		int rc;
		img[i] ^= 0x5a;
		rc = manifest_parse(img, len, &m, NULL, 0);
		cr_assert(rc == 0 || rc < 0, "byte %zu", i);
		if (rc == 0)
			manifest_free(m);
		img[i] = saved;
	}
	free(img);
}

/* ---- num_dbs and shard rows ------------------------------------------ */

Test(manifest, rejects_num_dbs_zero)
{
	struct meta mt = meta_default();

	mt.num_dbs = 0;
	expect_meta(&mt, NULL, SF_EMANIFEST, "num_dbs");
	mt.num_dbs = -3;
	expect_meta(&mt, NULL, SF_EMANIFEST, "num_dbs");
}

Test(manifest, rejects_num_dbs_beyond_uint32)
{
	struct meta mt = meta_default();
	struct manifest *m = NULL;

	mt.num_dbs = 4294967296ll;
	expect_meta(&mt, NULL, SF_EMANIFEST, "num_dbs");
	mt.num_dbs = 4294967295ll;
	cr_assert_eq(parse_meta(&mt, NULL, &m, NULL, 0), 0);
	cr_assert_eq(m->num_dbs, UINT32_MAX);
	manifest_free(m);
}

Test(manifest, rejects_num_dbs_as_text)
{
	struct meta mt = meta_default();
	char *sql = sqlite3_mprintf(
		"CREATE TABLE build_meta (run_id, created_at, num_dbs, s3_prefix,"
		" key_col, sharding, db_path_template, shard_prefix, format_version,"
		" key_encoding, custom);"
		"INSERT INTO build_meta VALUES('r', %Q, '4', 's3://b/p', 'k', %Q,"
		" 't', 's', 4, 'u64be', '{}');%s",
		mt.created_at, mt.sharding, DDL_SHARDS);

	expect_sql(sql, SF_EMANIFEST, "num_dbs is not an integer");
	sqlite3_free(sql);
}

Test(manifest, rejects_more_rows_than_num_dbs)
{
	struct meta mt = meta_default();
	long long ids[] = {0, 1, 2, -1};

	mt.num_dbs = 2;
	expect_meta(&mt, ids, SF_EMANIFEST, "more rows than num_dbs");
}

Test(manifest, rejects_duplicate_db_id)
{
	struct meta mt = meta_default();
	char *sql = sqlite3_mprintf("%s%s%z%z%z%z", DDL_META, DDL_SHARDS_LOOSE,
				    meta_insert(&mt), shard_insert(1),
				    shard_insert(3), shard_insert(1));

	expect_sql(sql, SF_EMANIFEST, "db_id 1 appears more than once");
	sqlite3_free(sql);
}

Test(manifest, rejects_db_id_out_of_range)
{
	struct meta mt = meta_default();
	long long ids[] = {0, 4, -1};
	char *sql;

	expect_meta(&mt, ids, SF_EMANIFEST, "db_id 4 is outside [0, 4)");
	sql = sqlite3_mprintf("%s%s%z%z", DDL_META, DDL_SHARDS_LOOSE,
			      meta_insert(&mt), shard_insert(-1));
	expect_sql(sql, SF_EMANIFEST, "outside");
	sqlite3_free(sql);
	sql = sqlite3_mprintf("%s%s%z INSERT INTO shards VALUES('2', 'u', 0,"
			      " 1, 1, NULL, NULL, NULL, '{}');",
			      DDL_META, DDL_SHARDS_LOOSE, meta_insert(&mt));
	expect_sql(sql, SF_EMANIFEST, "db_id is not an integer");
	sqlite3_free(sql);
}

Test(manifest, rejects_bad_db_url)
{
	struct meta mt = meta_default();
	char *sql;

	sql = sqlite3_mprintf("%s%s%z INSERT INTO shards VALUES(0, NULL, 0, 1,"
			      " 1, NULL, NULL, NULL, '{}');",
			      DDL_META, DDL_SHARDS, meta_insert(&mt));
	expect_sql(sql, SF_EMANIFEST, "db_url");
	sqlite3_free(sql);
	sql = sqlite3_mprintf("%s%s%z INSERT INTO shards VALUES(0, '', 0, 1, 1,"
			      " NULL, NULL, NULL, '{}');",
			      DDL_META, DDL_SHARDS, meta_insert(&mt));
	expect_sql(sql, SF_EMANIFEST, "empty db_url");
	sqlite3_free(sql);
	sql = sqlite3_mprintf("%s%s%z INSERT INTO shards VALUES(0, x'00', 0, 1,"
			      " 1, NULL, NULL, NULL, '{}');",
			      DDL_META, DDL_SHARDS_LOOSE, meta_insert(&mt));
	expect_sql(sql, SF_EMANIFEST, "db_url");
	sqlite3_free(sql);
}

Test(manifest, rejects_negative_counts)
{
	struct meta mt = meta_default();
	char *sql;

	sql = sqlite3_mprintf("%s%s%z INSERT INTO shards VALUES(0, 'u', 0, -1,"
			      " 1, NULL, NULL, NULL, '{}');",
			      DDL_META, DDL_SHARDS, meta_insert(&mt));
	expect_sql(sql, SF_EMANIFEST, "row_count");
	sqlite3_free(sql);
	sql = sqlite3_mprintf("%s%s%z INSERT INTO shards VALUES(0, 'u', 0, 1,"
			      " -1, NULL, NULL, NULL, '{}');",
			      DDL_META, DDL_SHARDS, meta_insert(&mt));
	expect_sql(sql, SF_EMANIFEST, "db_bytes");
	sqlite3_free(sql);
	sql = sqlite3_mprintf("%s%s%z INSERT INTO shards VALUES(0, 'u', -2, 1,"
			      " 1, NULL, NULL, NULL, '{}');",
			      DDL_META, DDL_SHARDS, meta_insert(&mt));
	expect_sql(sql, SF_EMANIFEST, "attempt");
	sqlite3_free(sql);
}

/* ---- sharding JSON ---------------------------------------------------- */

Test(manifest, rejects_missing_strategy)
{
	struct meta mt = meta_default();

	mt.sharding = "{\"hash_algorithm\": \"xxh3_64\"}";
	expect_meta(&mt, NULL, SF_EMANIFEST, "no strategy");
	mt.sharding = "{\"hash_algorithm\": \"xxh3_64\", \"strategy\": null}";
	expect_meta(&mt, NULL, SF_EMANIFEST, "no strategy");
	mt.sharding = "{\"hash_algorithm\": \"xxh3_64\", \"strategy\": 1}";
	expect_meta(&mt, NULL, SF_EMANIFEST, "strategy");
}

Test(manifest, refuses_unknown_strategy)
{
	struct meta mt = meta_default();

	mt.sharding = "{\"hash_algorithm\": \"xxh3_64\", \"strategy\": \"range\"}";
	expect_meta(&mt, NULL, SF_EUNSUPPORTED, "range");
}

Test(manifest, rejects_missing_hash_algorithm)
{
	struct meta mt = meta_default();

	mt.sharding = "{\"strategy\": \"hash\"}";
	expect_meta(&mt, NULL, SF_EMANIFEST, "no hash_algorithm");
	mt.sharding = "{\"strategy\": \"hash\", \"hash_algorithm\": null}";
	expect_meta(&mt, NULL, SF_EMANIFEST, "no hash_algorithm");
}

Test(manifest, rejects_hash_algorithm_md5)
{
	struct meta mt = meta_default();

	mt.sharding = "{\"strategy\": \"hash\", \"hash_algorithm\": \"md5\"}";
	expect_meta(&mt, NULL, SF_EMANIFEST, "md5");
	mt.sharding = "{\"strategy\": \"hash\", \"hash_algorithm\": \"XXH3_64\"}";
	expect_meta(&mt, NULL, SF_EMANIFEST, "hash_algorithm");
}

Test(manifest, rejects_malformed_sharding_json)
{
	struct meta mt = meta_default();

	mt.sharding = "{\"strategy\": \"hash\"";
	expect_meta(&mt, NULL, SF_EMANIFEST, "sharding");
	mt.sharding = "[\"hash\"]";
	expect_meta(&mt, NULL, SF_EMANIFEST, "sharding");
	mt.sharding = NULL;
	mt.loose = 1;
	expect_meta(&mt, NULL, SF_EMANIFEST, "sharding is missing");
}

Test(manifest, refuses_unknown_sharding_fields)
{
	struct meta mt = meta_default();

	mt.sharding = "{\"strategy\": \"hash\", \"hash_algorithm\": \"xxh3_64\","
		      " \"hash_seed\": 7}";
	expect_meta(&mt, NULL, SF_EUNSUPPORTED, "hash_seed");
}

Test(manifest, rejects_cel_fields_with_hash)
{
	struct meta mt = meta_default();

	mt.sharding = "{\"strategy\": \"hash\", \"hash_algorithm\": \"xxh3_64\","
		      " \"routing_values\": [\"a\"]}";
	mt.num_dbs = 1;
	expect_meta(&mt, NULL, SF_EMANIFEST, "routing_values");
	mt.sharding = "{\"strategy\": \"hash\", \"hash_algorithm\": \"xxh3_64\","
		      " \"cel_expr\": \"key\"}";
	expect_meta(&mt, NULL, SF_EMANIFEST, "cel_expr");
}

/* ---- key_encoding and format_version ------------------------------- */

Test(manifest, rejects_unknown_key_encoding)
{
	struct meta mt = meta_default();

	mt.key_encoding = "u16be";
	expect_meta(&mt, NULL, SF_EMANIFEST, "u16be");
	mt.key_encoding = "UTF8";
	expect_meta(&mt, NULL, SF_EMANIFEST, "key_encoding");
	mt.key_encoding = NULL;
	mt.loose = 1;
	expect_meta(&mt, NULL, SF_EMANIFEST, "key_encoding");
}

Test(manifest, reads_each_key_encoding)
{
	static const char *const names[] = {"u64be", "u32be", "utf8", "raw"};

	for (int i = 0; i < 4; i++) {
		struct meta mt = meta_default();
		struct manifest *m = NULL;

		mt.key_encoding = names[i];
		cr_assert_eq(parse_meta(&mt, NULL, &m, NULL, 0), 0);
		cr_assert_eq((int)m->key_encoding, i);
		manifest_free(m);
	}
}

Test(manifest, refuses_format_version_99)
{
	struct meta mt = meta_default();

	mt.format_version = 99;
	expect_meta(&mt, NULL, SF_EUNSUPPORTED, "format_version 99");
	mt.format_version = 3;
	expect_meta(&mt, NULL, SF_EUNSUPPORTED, "format_version 3");
	mt.format_version = 5;
	expect_meta(&mt, NULL, SF_EUNSUPPORTED, "5");
}

Test(manifest, names_an_unsupported_version_before_other_errors)
{
	/* A future layout with different columns: still "unsupported". */
	expect_sql("CREATE TABLE build_meta (format_version, stuff);"
		   "INSERT INTO build_meta VALUES(7, 'x');"
		   "CREATE TABLE shards (anything);",
		   SF_EUNSUPPORTED, "format_version 7");
}

/* ---- created_at ------------------------------------------------------- */

Test(manifest, rejects_bad_created_at)
{
	struct meta mt = meta_default();

	mt.created_at = "yesterday";
	expect_meta(&mt, NULL, SF_EMANIFEST, "created_at");
	mt.created_at = "2026-02-30T00:00:00Z";
	expect_meta(&mt, NULL, SF_EMANIFEST, "created_at");
}

struct ts_vec {
	char s[48];
	int ok;
	double epoch;
};

ParameterizedTestParameters(manifest, parses_iso8601)
{
	static struct ts_vec v[] = {
		{"1970-01-01T00:00:00Z", 1, 0},
		{"1970-01-01T00:00:00+00:00", 1, 0},
		{"2026-11-25T07:32:19.680212Z", 1, 1795591939.680212},
		{"2026-11-25T07:32:19.680212+00:00", 1, 1795591939.680212},
		{"2026-11-25T07:32:19+01:00", 1, 1795588339.0},
		{"2026-11-25T07:32:19+0100", 1, 1795588339.0},
		{"2026-11-25T07:32:19-05:30", 1, 1795611739.0},
		{"2026-11-25 07:32:19Z", 1, 1795591939.0},
		{"2026-11-25T07:32:19z", 1, 1795591939.0},
		{"2026-11-25T07:32:19", 1, 1795591939.0},
		{"2024-02-29T23:59:59.5Z", 1, 1709251199.5},
		{"1969-12-31T23:59:59Z", 1, -1.0},
		{"2026-11-25T07:32:19.123456789Z", 1, 1795591939.123456789},
		{"2026-02-29T00:00:00Z", 0, 0},
		{"2026-13-01T00:00:00Z", 0, 0},
		{"2026-00-01T00:00:00Z", 0, 0},
		{"2026-11-31T00:00:00Z", 0, 0},
		{"2026-11-25T24:00:00Z", 0, 0},
		{"2026-11-25T23:60:00Z", 0, 0},
		{"2026-11-25T23:59:60Z", 0, 0},
		{"2026-11-25T07:32:19.Z", 0, 0},
		{"2026-11-25T07:32:19Zjunk", 0, 0},
		{"2026-11-25T07:32:19+1", 0, 0},
		{"2026-11-25T07:32:19+24:00", 0, 0},
		{"2026-11-25", 0, 0},
		{"2026-11-25T07:32", 0, 0},
		{" 2026-11-25T07:32:19Z", 0, 0},
		{"26-11-25T07:32:19Z", 0, 0},
		{"2026/11/25T07:32:19Z", 0, 0},
		{"0000-01-01T00:00:00Z", 0, 0},
		{"", 0, 0},
	};
	return cr_make_param_array(struct ts_vec, v, sizeof(v) / sizeof(v[0]));
}

ParameterizedTest(struct ts_vec *v, manifest, parses_iso8601)
{
	double t = -12345;
	int rc = parse_iso8601(v->s, &t);

	if (!v->ok) {
		cr_assert_eq(rc, SF_EINVAL, "accepted \"%s\"", v->s);
		return;
	}
	cr_assert_eq(rc, 0, "rejected \"%s\"", v->s);
	cr_assert(fabs(t - v->epoch) < 1e-5, "\"%s\": %f, want %f", v->s, t,
		  v->epoch);
}

/* ---- CEL -------------------------------------------------------------- */

Test(manifest, refuses_direct_cel)
{
	struct meta mt = meta_default();

	mt.sharding = "{\"cel_columns\": {\"key\": \"int\"}, \"cel_expr\":"
		      " \"shard_hash(key) % 4u\", \"hash_algorithm\": \"xxh3_64\","
		      " \"routing_values\": null, \"strategy\": \"cel\"}";
	expect_meta(&mt, NULL, SF_EUNSUPPORTED,
		    "direct CEL routing is not supported");
	mt.sharding = "{\"cel_expr\": \"key\", \"hash_algorithm\": \"xxh3_64\","
		      " \"strategy\": \"cel\"}";
	expect_meta(&mt, NULL, SF_EUNSUPPORTED,
		    "direct CEL routing is not supported");
}

Test(manifest, rejects_cel_without_expression)
{
	struct meta mt = meta_default();

	mt.num_dbs = 2;
	mt.sharding = "{\"cel_columns\": {\"key\": \"string\"},"
		      " \"hash_algorithm\": \"xxh3_64\", \"routing_values\":"
		      " [\"a\", \"b\"], \"strategy\": \"cel\"}";
	expect_meta(&mt, NULL, SF_EMANIFEST, "cel_expr");
	mt.sharding = "{\"cel_expr\": \"key\", \"hash_algorithm\": \"xxh3_64\","
		      " \"routing_values\": [\"a\", \"b\"], \"strategy\": \"cel\"}";
	expect_meta(&mt, NULL, SF_EMANIFEST, "cel_columns");
}

Test(manifest, cel_expressions_it_cannot_evaluate_need_an_explicit_token)
{
	struct meta mt = meta_default();
	struct manifest *m = NULL;
	uint32_t db = 99;
	char err[256] = "";

	mt.num_dbs = 2;
	mt.key_encoding = "utf8";
	mt.sharding = "{\"cel_columns\": {\"key\": \"string\", \"region\":"
		      " \"string\"}, \"cel_expr\": \"region\", \"hash_algorithm\":"
		      " \"xxh3_64\", \"routing_values\": [\"eu\", \"us\"],"
		      " \"strategy\": \"cel\"}";
	cr_assert_eq(parse_meta(&mt, NULL, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(m->cel_key_is_token, 0);
	/* Without a token: a clear error, never a guess. */
	struct sf_key k = sf_key_text("user-1", 6);
	cr_assert_eq(manifest_route(m, &k, &db, err, sizeof(err)), SF_EINVAL);
	cr_assert(strstr(err, "routing token") != NULL, "%s", err);
	/* With one: its position in routing_values; unknown is not found. */
	k.token = "us";
	cr_assert_eq(manifest_route(m, &k, &db, NULL, 0), 0);
	cr_assert_eq(db, 1);
	k.token = "eu";
	cr_assert_eq(manifest_route(m, &k, &db, NULL, 0), 0);
	cr_assert_eq(db, 0);
	k.token = "mars";
	cr_assert_eq(manifest_route(m, &k, &db, NULL, 0), SF_NOTFOUND);
	manifest_free(m);

	m = NULL;
	mt.sharding = "{\"cel_columns\": {\"key\": \"string\"}, \"cel_expr\":"
		      " \"key.substring(0, 2)\", \"hash_algorithm\": \"xxh3_64\","
		      " \"routing_values\": [\"ab\", \"cd\"], \"strategy\": \"cel\"}";
	cr_assert_eq(parse_meta(&mt, NULL, &m, err, sizeof(err)), 0, "%s", err);
	k = sf_key_text("cdef", 4);
	cr_assert_eq(manifest_route(m, &k, &db, NULL, 0), SF_EINVAL);
	k.token = "cd";
	cr_assert_eq(manifest_route(m, &k, &db, NULL, 0), 0);
	cr_assert_eq(db, 1);
	manifest_free(m);
}

Test(manifest, rejects_routing_values_length_mismatch)
{
	struct meta mt = meta_default();
	struct manifest *m = NULL;

	mt.key_encoding = "utf8";
	mt.num_dbs = 3;
	mt.sharding = "{\"cel_columns\": {\"key\": \"string\"}, \"cel_expr\":"
		      " \"key\", \"hash_algorithm\": \"xxh3_64\","
		      " \"routing_values\": [\"us\", \"eu\"], \"strategy\": \"cel\"}";
	expect_meta(&mt, NULL, SF_EMANIFEST, "routing_values");
	/* max(1, len): an empty list needs num_dbs 1. */
	mt.sharding = "{\"cel_columns\": {\"key\": \"string\"}, \"cel_expr\":"
		      " \"key\", \"hash_algorithm\": \"xxh3_64\","
		      " \"routing_values\": [], \"strategy\": \"cel\"}";
	expect_meta(&mt, NULL, SF_EMANIFEST, "routing_values");
	mt.num_dbs = 1;
	cr_assert_eq(parse_meta(&mt, NULL, &m, NULL, 0), 0);
	cr_assert_eq(m->n_routing_values, 0);
	manifest_free(m);
}

Test(manifest, rejects_bad_routing_values)
{
	struct meta mt = meta_default();

	mt.key_encoding = "utf8";
	mt.num_dbs = 2;
	mt.sharding = "{\"cel_columns\": {\"key\": \"string\"}, \"cel_expr\":"
		      " \"key\", \"hash_algorithm\": \"xxh3_64\","
		      " \"routing_values\": [\"us\", \"us\"], \"strategy\": \"cel\"}";
	expect_meta(&mt, NULL, SF_EMANIFEST, "duplicate");
	mt.sharding = "{\"cel_columns\": {\"key\": \"string\"}, \"cel_expr\":"
		      " \"key\", \"hash_algorithm\": \"xxh3_64\","
		      " \"routing_values\": [\"us\", 3], \"strategy\": \"cel\"}";
	expect_meta(&mt, NULL, SF_EMANIFEST, "mixes");
	mt.sharding = "{\"cel_columns\": {\"key\": \"string\"}, \"cel_expr\":"
		      " \"key\", \"hash_algorithm\": \"xxh3_64\","
		      " \"routing_values\": [1.5, 2.5], \"strategy\": \"cel\"}";
	expect_meta(&mt, NULL, SF_EMANIFEST, "routing_values[0]");
	mt.sharding = "{\"cel_columns\": {\"key\": \"string\"}, \"cel_expr\":"
		      " \"key\", \"hash_algorithm\": \"xxh3_64\","
		      " \"routing_values\": [true, false], \"strategy\": \"cel\"}";
	expect_meta(&mt, NULL, SF_EMANIFEST, "routing_values[0]");
	mt.sharding = "{\"cel_columns\": {\"key\": \"string\"}, \"cel_expr\":"
		      " \"key\", \"hash_algorithm\": \"xxh3_64\","
		      " \"routing_values\": [\"a\", null], \"strategy\": \"cel\"}";
	expect_meta(&mt, NULL, SF_EMANIFEST, "routing_values[1]");
}

Test(manifest, routes_categorical_text_keys)
{
	struct meta mt = meta_default();
	struct manifest *m = NULL;
	const char *tok[] = {"us", "eu", "ap-south", "a", ""};
	char err[512] = "";
	uint32_t id = 99;
	struct sf_key k;

	mt.key_encoding = "utf8";
	mt.num_dbs = 5;
	mt.sharding = "{\"cel_columns\": {\"key\": \"string\"}, \"cel_expr\":"
		      " \" key \", \"hash_algorithm\": \"xxh3_64\","
		      " \"routing_values\": [\"us\", \"eu\", \"ap-south\", \"a\", \"\"],"
		      " \"strategy\": \"cel\"}";
	cr_assert_eq(parse_meta(&mt, NULL, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(m->strategy, MANIFEST_CEL);
	cr_assert_str_eq(m->strategy_name, "cel");
	cr_assert_str_eq(m->cel_expr, " key ");
	cr_assert_eq(m->n_routing_values, 5);
	cr_assert_str_eq(m->routing_values[2], "ap-south");
	for (uint32_t i = 0; i < 5; i++) {
		k = sf_key_text(tok[i], strlen(tok[i]));
		cr_assert_eq(manifest_route(m, &k, &id, err, sizeof(err)), 0,
			     "%s", err);
		cr_assert_eq(id, i, "token \"%s\"", tok[i]);
	}
	k = sf_key_text("zz", 2);
	cr_assert_eq(manifest_route(m, &k, &id, NULL, 0), SF_NOTFOUND);
	k = sf_key_text("us\0", 3); /* a NUL makes it another token */
	cr_assert_eq(manifest_route(m, &k, &id, NULL, 0), SF_NOTFOUND);
	k = sf_key_text("u", 1);
	cr_assert_eq(manifest_route(m, &k, &id, NULL, 0), SF_NOTFOUND);
	k = sf_key_bytes("eu", 2);
	cr_assert_eq(manifest_route(m, &k, &id, NULL, 0), 0);
	cr_assert_eq(id, 1);
	k = sf_key_uint(1);
	cr_assert_eq(manifest_route(m, &k, &id, err, sizeof(err)), SF_EKEY);
	manifest_free(m);
}

Test(manifest, routes_categorical_integer_keys)
{
	struct meta mt = meta_default();
	struct manifest *m = NULL;
	char err[512] = "";
	uint32_t id = 99;
	struct sf_key k;

	mt.key_encoding = "u64be";
	mt.num_dbs = 3;
	mt.sharding = "{\"cel_columns\": {\"key\": \"int\"}, \"cel_expr\": \"key\","
		      " \"hash_algorithm\": \"xxh3_64\", \"routing_values\":"
		      " [10, 200, 5], \"strategy\": \"cel\"}";
	cr_assert_eq(parse_meta(&mt, NULL, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(m->routing_values_are_ints, 1);
	cr_assert_str_eq(m->routing_values[1], "200");
	k = sf_key_uint(5);
	cr_assert_eq(manifest_route(m, &k, &id, NULL, 0), 0);
	cr_assert_eq(id, 2);
	k = sf_key_uint(200);
	cr_assert_eq(manifest_route(m, &k, &id, NULL, 0), 0);
	cr_assert_eq(id, 1);
	k = sf_key_uint(20);
	cr_assert_eq(manifest_route(m, &k, &id, NULL, 0), SF_NOTFOUND);
	k = sf_key_text("10", 2);
	cr_assert_eq(manifest_route(m, &k, &id, NULL, 0), SF_EKEY);
	manifest_free(m);
}

/* ---- hash routing ----------------------------------------------------- */

Test(manifest, routes_by_hash_modulo_num_dbs)
{
	struct meta mt = meta_default();
	struct manifest *m = NULL;
	uint32_t id;
	char err[512] = "";
	struct sf_key k;

	mt.num_dbs = 5;
	cr_assert_eq(parse_meta(&mt, NULL, &m, NULL, 0), 0);
	k = sf_key_uint(42);
	cr_assert_eq(manifest_route(m, &k, &id, NULL, 0), 0);
	cr_assert_eq(id, 0); /* FORMAT.md 4: int 42 mod 5 */
	k = sf_key_uint(123456789);
	cr_assert_eq(manifest_route(m, &k, &id, NULL, 0), 0);
	cr_assert_eq(id, 4);
	k = sf_key_uint(INT64_MAX);
	cr_assert_eq(manifest_route(m, &k, &id, NULL, 0), 0);
	cr_assert_eq(id, 2);
	/* Beyond shardyfusion's hashable range, negative, wrong type. */
	k = sf_key_uint((uint64_t)INT64_MAX + 1);
	cr_assert_eq(manifest_route(m, &k, &id, err, sizeof(err)), SF_EKEY);
	cr_assert_not_null(strstr(err, "2^63"), "%s", err);
	k = sf_key_int(-1);
	cr_assert_eq(manifest_route(m, &k, &id, NULL, 0), SF_EKEY);
	k = sf_key_text("42", 2);
	cr_assert_eq(manifest_route(m, &k, &id, NULL, 0), SF_EKEY);
	manifest_free(m);
}

Test(manifest, routes_text_by_hash)
{
	struct meta mt = meta_default();
	struct manifest *m = NULL;
	uint32_t id;
	struct sf_key k;

	mt.num_dbs = 16;
	mt.key_encoding = "utf8";
	cr_assert_eq(parse_meta(&mt, NULL, &m, NULL, 0), 0);
	k = sf_key_text("user-123", 8);
	cr_assert_eq(manifest_route(m, &k, &id, NULL, 0), 0);
	cr_assert_eq(id, 9);
	k = sf_key_text("", 0);
	cr_assert_eq(manifest_route(m, &k, &id, NULL, 0), 0);
	cr_assert_eq(id, 2);
	k = sf_key_uint(1);
	cr_assert_eq(manifest_route(m, &k, &id, NULL, 0), SF_EKEY);
	manifest_free(m);
}

/* ---- custom / sidecar --------------------------------------------------- */

struct sc_vec {
	char custom[160];
	int rc;
	int has;
	char filename[32];
};

ParameterizedTestParameters(manifest, parses_sidecar_custom)
{
	static struct sc_vec v[] = {
		{SIDECAR_CUSTOM, 0, 1, "shard.sidecar"},
		{"{\"sqlite_sidecar\": {\"format_version\": 8}}", 0, 1, "shard.sidecar"},
		{"{\"sqlite_sidecar\": {\"format_version\": 8, \"filename\": \"pc.bin\"}}", 0, 1, "pc.bin"},
		{"{\"sqlite_sidecar\": {\"format_version\": 8, \"filename\": null}}", 0, 1, "shard.sidecar"},
		{"{\"sqlite_sidecar\": {\"format_version\": 7}}", 0, 0, ""},
		{"{\"sqlite_sidecar\": {\"format_version\": \"8\"}}", 0, 0, ""},
		{"{\"sqlite_sidecar\": {\"format_version\": 8, \"filename\": \"../x\"}}", 0, 0, ""},
		{"{\"sqlite_sidecar\": {\"format_version\": 8, \"filename\": \"..\"}}", 0, 0, ""},
		{"{\"sqlite_sidecar\": {\"format_version\": 8, \"filename\": \"\"}}", 0, 0, ""},
		{"{\"sqlite_sidecar\": {\"format_version\": 8, \"filename\": 3}}", 0, 0, ""},
		{"{\"sqlite_sidecar\": true}", 0, 0, ""},
		{"{\"other\": 1}", 0, 0, ""},
		{"{}", 0, 0, ""},
		{"not json", SF_EMANIFEST, 0, ""},
		{"[]", SF_EMANIFEST, 0, ""},
	};
	return cr_make_param_array(struct sc_vec, v, sizeof(v) / sizeof(v[0]));
}

ParameterizedTest(struct sc_vec *v, manifest, parses_sidecar_custom)
{
	struct meta mt = meta_default();
	struct manifest *m = NULL;
	char err[512] = "";
	int rc;

	mt.custom = v->custom;
	rc = parse_meta(&mt, NULL, &m, err, sizeof(err));
	cr_assert_eq(rc, v->rc, "%s: %d %s", v->custom, rc, err);
	if (rc != 0) {
		cr_assert_not_null(strstr(err, "custom"), "%s", err);
		return;
	}
	cr_assert_eq(m->has_sidecar, v->has, "%s", v->custom);
	if (v->has)
		cr_assert_str_eq(m->sidecar_filename, v->filename);
	cr_assert_str_eq(m->custom_json, v->custom);
	manifest_free(m);
}

/* ---- rebasing (FORMAT.md 8) ------------------------------------------ */

struct rb_vec {
	char url[64];
	char from[32];
	char to[32];
	char want[64];
};

ParameterizedTestParameters(manifest, rebases_urls)
{
	static struct rb_vec v[] = {
		{"s3://b/p/shards/x", "s3://b/p", "file:///c", "file:///c/shards/x"},
		{"s3://b/p/shards/x", "s3://b/p/", "file:///c/", "file:///c/shards/x"},
		{"s3://b/p/shards/x", "s3://b/p//", "/data/c", "/data/c/shards/x"},
		{"s3://b/p", "s3://b/p", "s3://o/q", "s3://o/q"},
		{"s3://b/px/shards/x", "s3://b/p", "file:///c", "s3://b/px/shards/x"},
		{"s3://b/q/shards/x", "s3://b/p", "file:///c", "s3://b/q/shards/x"},
		{"s3://b/p/shards/x", "s3://b/p", "/", "/shards/x"},
		{"s3://b/p/shards/x", "", "file:///c", "s3://b/p/shards/x"},
		{"s3://b/p/shards/x", "s3://B/p", "file:///c", "s3://b/p/shards/x"},
		{"s3://b/p/shards/x", "http://h/a", "file:///c", "s3://b/p/shards/x"},
	};
	return cr_make_param_array(struct rb_vec, v, sizeof(v) / sizeof(v[0]));
}

ParameterizedTest(struct rb_vec *v, manifest, rebases_urls)
{
	char *r = url_rebase(v->url, v->from, v->to);

	cr_assert_not_null(r);
	cr_assert_str_eq(r, v->want, "rebase %s from %s to %s", v->url, v->from,
			 v->to);
	free(r);
}

Test(manifest, rebases_only_urls_under_s3_prefix)
{
	struct meta mt = meta_default();
	char *sql = sqlite3_mprintf(
		"%s%s%z INSERT INTO shards VALUES(0, 's3://b/p/shards/a', 0, 1, 1,"
		" NULL, NULL, NULL, '{}'), (1, 's3://b/px/shards/b', 0, 1, 1, NULL,"
		" NULL, NULL, '{}'), (2, 'https://cdn/x/shards/c', 0, 1, 1, NULL,"
		" NULL, NULL, '{}');",
		DDL_META, DDL_SHARDS, meta_insert(&mt));
	struct manifest *m = NULL;

	cr_assert_eq(parse_sql(sql, &m, NULL, 0), 0);
	cr_assert_eq(manifest_rebase(m, "file:///mnt/copy/"), 0);
	cr_assert_str_eq(m->shards[0].db_url, "file:///mnt/copy/shards/a");
	cr_assert_str_eq(m->shards[1].db_url, "s3://b/px/shards/b");
	cr_assert_str_eq(m->shards[2].db_url, "https://cdn/x/shards/c");
	cr_assert_str_eq(m->s3_prefix, "s3://b/p", "the original is kept");
	manifest_free(m);
	sqlite3_free(sql);
}

/* ---- the real fixtures -------------------------------------------------- */

static uint8_t *fixture_manifest(const char *name, size_t *len)
{
	char rel[128];
	char *dir, *cur, *path;
	struct sf_current c;
	uint8_t *buf;
	size_t clen;
	const char *tail;

	snprintf(rel, sizeof(rel), "shardyfusion/%s/snapshot", name);
	dir = sft_data(rel);
	cr_assert_eq(asprintf(&cur, "%s/_CURRENT", dir) > 0, 1);
	buf = sft_read_file(cur, &clen);
	cr_assert_not_null(buf, "%s", cur);
	cr_assert_eq(current_parse(buf, clen, &c, NULL, 0), 0);
	/* The ref names the original bucket: take the part after /manifests/. */
	tail = strstr(c.manifest_ref, "/manifests/");
	cr_assert_not_null(tail);
	cr_assert_eq(asprintf(&path, "%s%s", dir, tail) > 0, 1);
	free(buf);
	buf = sft_read_file(path, len);
	cr_assert_not_null(buf, "%s", path);
	current_clear(&c);
	free(path);
	free(cur);
	free(dir);
	return buf;
}

static json_t *fixture_info(const char *name)
{
	char rel[128], *path;
	json_error_t e;
	json_t *j;

	snprintf(rel, sizeof(rel), "shardyfusion/%s/info.json", name);
	path = sft_data(rel);
	j = json_load_file(path, 0, &e);
	cr_assert_not_null(j, "%s: %s", path, e.text);
	free(path);
	return j;
}

struct fx {
	char name[16];
	enum sf_key_encoding enc;
};

ParameterizedTestParameters(manifest, fixture_matches_info_json)
{
	static struct fx v[] = {
		{"u64", SF_ENC_U64BE},
		{"utf8", SF_ENC_UTF8},
		{"sparse", SF_ENC_UTF8},
		{"raw", SF_ENC_RAW},
	};
	return cr_make_param_array(struct fx, v, sizeof(v) / sizeof(v[0]));
}

ParameterizedTest(struct fx *v, manifest, fixture_matches_info_json)
{
	size_t len;
	uint8_t *buf = fixture_manifest(v->name, &len);
	json_t *info = fixture_info(v->name), *empty;
	struct manifest *m = NULL;
	char err[512] = "";
	uint32_t num_dbs;
	int is_empty[64] = {0};
	size_t i;

	cr_assert_eq(manifest_parse(buf, len, &m, err, sizeof(err)), 0,
		     "%s: %s", v->name, err);
	num_dbs = (uint32_t)json_integer_value(json_object_get(info, "num_dbs"));
	cr_assert_eq(m->num_dbs, num_dbs);
	cr_assert_lt(num_dbs, 64);
	cr_assert_str_eq(m->run_id,
			 json_string_value(json_object_get(info, "run_id")));
	cr_assert_str_eq(m->s3_prefix,
			 json_string_value(json_object_get(info, "written_as")));
	cr_assert_str_eq(sf_encoding_name(m->key_encoding),
			 json_string_value(json_object_get(info, "key_encoding")));
	cr_assert_eq(m->key_encoding, v->enc);
	cr_assert_eq(m->strategy, MANIFEST_HASH);
	cr_assert_str_eq(m->hash_algorithm, "xxh3_64");
	cr_assert_eq(m->format_version, 4);
	cr_assert_eq(m->has_sidecar, 1);
	cr_assert_str_eq(m->sidecar_filename, "shard.sidecar");
	/* Written on 2026-11-25 (UTC). */
	cr_assert_geq(m->created_at_epoch, 1795564800.0);
	cr_assert_lt(m->created_at_epoch, 1795651200.0);
	empty = json_object_get(info, "empty_db_ids");
	for (i = 0; i < json_array_size(empty); i++)
		is_empty[json_integer_value(json_array_get(empty, i))] = 1;
	cr_assert_eq(m->n_shards, num_dbs - json_array_size(empty));
	for (uint32_t d = 0; d < num_dbs; d++) {
		const struct manifest_shard *s = manifest_shard(m, d);
		if (is_empty[d]) {
			cr_assert_null(s, "%s db %u is empty", v->name, d);
			continue;
		}
		cr_assert_not_null(s, "%s db %u", v->name, d);
		cr_assert_gt(s->row_count, 0);
		cr_assert_gt(s->db_bytes, 0);
		cr_assert_not_null(s->checkpoint_id);
		cr_assert_not_null(s->min_key);
		cr_assert_not_null(strstr(s->db_url, m->s3_prefix));
	}
	manifest_free(m);
	json_decref(info);
	free(buf);
}

/* Opens <db_url>/shard.db of every non-empty shard (after rebasing onto
 * the local copy) and checks each answers.tsv key is in the shard it
 * routes to, and each absent key is not. */
ParameterizedTestParameters(manifest, fixture_keys_route_to_their_shard)
{
	static struct fx v[] = {
		{"u64", SF_ENC_U64BE},
		{"utf8", SF_ENC_UTF8},
		{"sparse", SF_ENC_UTF8},
		{"raw", SF_ENC_RAW},
	};
	return cr_make_param_array(struct fx, v, sizeof(v) / sizeof(v[0]));
}

static int shard_has(sqlite3 *db, const uint8_t *k, size_t kl, int64_t *vlen)
{
	sqlite3_stmt *st = NULL;
	int found;

	cr_assert_eq(sqlite3_prepare_v2(db, "SELECT length(v) FROM kv WHERE k = ?",
					-1, &st, NULL), SQLITE_OK);
	sqlite3_bind_blob(st, 1, kl ? (const void *)k : "", (int)kl,
			  SQLITE_STATIC);
	found = sqlite3_step(st) == SQLITE_ROW;
	if (found && vlen)
		*vlen = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return found;
}

static void key_of(const struct fx *v, const char *user, const uint8_t *raw,
		   size_t rawlen, struct sf_key *k)
{
	char err[256] = "";

	if (v->enc == SF_ENC_RAW) {
		*k = sf_key_bytes(raw, rawlen);
		return;
	}
	cr_assert_eq(sf_key_from_text(v->enc, user, strlen(user), k, err,
				      sizeof(err)), 0, "%s: %s", user, err);
}

ParameterizedTest(struct fx *v, manifest, fixture_keys_route_to_their_shard)
{
	size_t len, n;
	uint8_t *buf = fixture_manifest(v->name, &len);
	json_t *info = fixture_info(v->name), *absent;
	struct sft_answer *a = sft_answers(v->name, &n);
	sqlite3 *dbs[64] = {0};
	size_t per[64] = {0};
	struct manifest *m = NULL;
	char rel[128], *dir, err[512] = "";
	size_t i;

	cr_assert_gt(n, 0);
	cr_assert_eq(n, (size_t)json_integer_value(json_object_get(info,
								  "num_keys")));
	cr_assert_eq(manifest_parse(buf, len, &m, err, sizeof(err)), 0, "%s",
		     err);
	snprintf(rel, sizeof(rel), "shardyfusion/%s/snapshot", v->name);
	dir = sft_data(rel);
	cr_assert_eq(manifest_rebase(m, dir), 0);
	for (i = 0; i < m->n_shards; i++) {
		char *p;
		cr_assert_eq(strncmp(m->shards[i].db_url, dir, strlen(dir)), 0,
			     "rebased: %s", m->shards[i].db_url);
		cr_assert_eq(asprintf(&p, "%s/shard.db", m->shards[i].db_url) > 0, 1);
		cr_assert_eq(sqlite3_open_v2(p, &dbs[m->shards[i].db_id],
					     SQLITE_OPEN_READONLY, NULL),
			     SQLITE_OK, "%s", p);
		free(p);
	}

	for (i = 0; i < n; i++) {
		struct sf_key k;
		uint8_t enc[4096];
		size_t el;
		uint32_t id = UINT32_MAX;
		int64_t vlen = -1;

		key_of(v, a[i].user_key, a[i].key, a[i].klen, &k);
		/* The stored form of the user's key is the key_hex column. */
		cr_assert_eq(sf_key_encode(m->key_encoding, &k, enc, sizeof(enc),
					   &el, NULL, 0), 0);
		cr_assert_eq(el, a[i].klen, "key %s", a[i].user_key);
		cr_assert_eq(memcmp(enc, a[i].key, el), 0, "key %s",
			     a[i].user_key);
		cr_assert_eq(manifest_route(m, &k, &id, err, sizeof(err)), 0,
			     "%s", err);
		cr_assert_lt(id, m->num_dbs);
		cr_assert_not_null(dbs[id], "key %s routes to empty shard %u",
				   a[i].user_key, id);
		cr_assert(shard_has(dbs[id], enc, el, &vlen),
			  "%s key %s is not in shard %u", v->name,
			  a[i].user_key, id);
		cr_assert_eq((uint64_t)vlen, a[i].vlen);
		per[id]++;
	}
	for (i = 0; i < m->n_shards; i++)
		cr_assert_eq(per[m->shards[i].db_id], m->shards[i].row_count,
			     "shard %u row_count", m->shards[i].db_id);

	absent = json_object_get(info, "absent_keys");
	cr_assert_gt(json_array_size(absent), 0);
	for (i = 0; i < json_array_size(absent); i++) {
		const char *s = json_string_value(json_array_get(absent, i));
		uint8_t raw[64], enc[4096];
		size_t rl = strlen(s) / 2, el;
		struct sf_key k;
		uint32_t id;

		if (v->enc == SF_ENC_RAW)
			for (size_t j = 0; j < rl; j++)
				cr_assert_eq(sscanf(s + 2 * j, "%2hhx", &raw[j]), 1);
		key_of(v, s, raw, rl, &k);
		cr_assert_eq(manifest_route(m, &k, &id, NULL, 0), 0);
		cr_assert_eq(sf_key_encode(m->key_encoding, &k, enc, sizeof(enc),
					   &el, NULL, 0), 0);
		if (dbs[id])
			cr_assert_not(shard_has(dbs[id], enc, el, NULL),
				      "absent key %s found", s);
	}

	for (i = 0; i < 64; i++)
		sqlite3_close(dbs[i]);
	sft_answers_free(a, n);
	manifest_free(m);
	json_decref(info);
	free(dir);
	free(buf);
}

Test(manifest, reads_an_image_saved_in_wal_mode)
{
	size_t len;
	uint8_t *buf = fixture_manifest("u64", &len);
	struct manifest *m = NULL;
	char err[512] = "";

	cr_assert_eq(buf[18], 1, "the fixture is a rollback-journal image");
	buf[18] = buf[19] = 2;
	cr_assert_eq(manifest_parse(buf, len, &m, err, sizeof(err)), 0, "%s",
		     err);
	cr_assert_eq(m->num_dbs, 3);
	cr_assert_eq(buf[18], 2, "the caller's bytes are not modified");
	manifest_free(m);
	free(buf);
}

Test(manifest, rejects_a_virtual_build_meta)
{
	struct meta mt = meta_default();
	char *sql = sqlite3_mprintf(
		"CREATE VIRTUAL TABLE build_meta USING fts5(run_id, created_at,"
		" num_dbs, s3_prefix, key_col, sharding, db_path_template,"
		" shard_prefix, format_version, key_encoding, custom);"
		"%s%z", DDL_SHARDS, meta_insert(&mt));
	struct manifest *m = NULL;
	char err[512] = "";
	int rc;

	rc = parse_sql(sql, &m, err, sizeof(err));
	cr_assert_eq(rc, SF_EMANIFEST, "%d %s", rc, err);
	cr_assert_null(m);
	sqlite3_free(sql);
}

Test(manifest, parses_a_manifest_with_many_shards)
{
	/* The parser's work budget grows with the image size: 200000 shard
	 * rows parse, and binary search finds any of them. */
	struct meta mt = meta_default();
	char *sql;
	struct manifest *m = NULL;
	char err[512] = "";

	mt.num_dbs = 200000;
	sql = sqlite3_mprintf(
		"%s%s%z WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1"
		" FROM c WHERE i < 199999) INSERT INTO shards SELECT i,"
		" 's3://b/p/shards/db=' || i, 0, 1, 1, NULL, NULL, NULL, '{}'"
		" FROM c;",
		DDL_META, DDL_SHARDS, meta_insert(&mt));
	cr_assert_eq(parse_sql(sql, &m, err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(m->n_shards, 200000);
	cr_assert_str_eq(manifest_shard(m, 123456)->db_url,
			 "s3://b/p/shards/db=123456");
	manifest_free(m);
	sqlite3_free(sql);
}
