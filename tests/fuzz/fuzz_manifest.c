/*
 * fuzz_manifest.c -- fuzz target for manifest_parse() (core/manifest.c):
 * the input is a manifest image, i.e. a whole SQLite database fetched from
 * an untrusted store. Seeds are the real fixture manifests and malformed
 * variants (tests/fuzz/corpus/fuzz_manifest/), so mutations reach SQLite's
 * page parsing, the schema checks, the JSON of `sharding` and `custom`,
 * and every validation rule of FORMAT.md 3.
 *
 * On failure the code must be negative with a one-line message. On
 * success the invariants the rest of the library relies on are checked
 * (shards sorted and unique, ids in range, URLs non-empty, lookups by
 * binary search agree, routing stays in range) and rebasing and routing
 * are exercised. Any violation aborts. Inputs are capped at 1 MiB.
 *
 * Random bytes rarely stay a valid SQLite image, so an input starting
 * with 'J' is read as fields instead (separated by 0x01: sharding JSON,
 * custom JSON, created_at, key_encoding, num_dbs, format_version, then
 * one shard db_id per remaining byte, minus 8): the target builds a
 * well-formed manifest from them with SQLite and parses that. This drives
 * the JSON and validation code directly.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_INPUT (1024 * 1024)

static void check_route(const struct manifest *m, const struct sf_key *k)
{
	uint32_t id = UINT32_MAX;
	char err[256];
	int rc = manifest_route(m, k, &id, err, sizeof(err));

	if (rc == 0 && id >= m->num_dbs)
		abort();
	/* CEL over another column needs an explicit token: SF_EINVAL. */
	if (rc == SF_EINVAL &&
	    !(m->strategy == MANIFEST_CEL && !m->cel_key_is_token && !k->token))
		abort();
	if (rc != 0 && rc != SF_NOTFOUND && rc != SF_EKEY && rc != SF_EINVAL)
		abort();
}

static void check_manifest(struct manifest *m, const uint8_t *data,
			   size_t size)
{
	struct sf_key k;

	if (m->num_dbs == 0 || m->n_shards > m->num_dbs)
		abort();
	if (!m->run_id || !m->created_at || !m->s3_prefix || !m->key_col ||
	    !m->hash_algorithm || strcmp(m->hash_algorithm, "xxh3_64") != 0 ||
	    !m->custom_json || !m->sharding_json || m->format_version != 4)
		abort();
	if (m->strategy == MANIFEST_CEL &&
	    m->num_dbs != (m->n_routing_values ? m->n_routing_values : 1))
		abort();
	if (m->has_sidecar && (!m->sidecar_filename || !*m->sidecar_filename ||
			       strchr(m->sidecar_filename, '/')))
		abort();
	for (size_t i = 0; i < m->n_shards; i++) {
		const struct manifest_shard *s = &m->shards[i];
		if (s->db_id >= m->num_dbs || !s->db_url || !*s->db_url)
			abort();
		if (i > 0 && m->shards[i - 1].db_id >= s->db_id)
			abort();
		if (manifest_shard(m, s->db_id) != s)
			abort();
	}
	if (m->n_shards < m->num_dbs && m->num_dbs <= 4096) {
		size_t found = 0;
		for (uint32_t d = 0; d < m->num_dbs; d++)
			found += manifest_shard(m, d) != NULL;
		if (found != m->n_shards)
			abort();
	}

	k = sf_key_uint(size);
	check_route(m, &k);
	k = sf_key_uint(UINT64_MAX);
	check_route(m, &k);
	k = sf_key_text((const char *)data, size > 64 ? 64 : size);
	check_route(m, &k);
	for (size_t i = 0; i < m->n_routing_values && i < 8; i++) {
		const char *t = m->routing_values[i];
		k = sf_key_text(t, strlen(t));
		check_route(m, &k);
		/* An explicit token selects exactly its routing value,
		 * whatever the (well-formed) key. */
		k = m->key_encoding == SF_ENC_U64BE ||
				    m->key_encoding == SF_ENC_U32BE
			    ? sf_key_uint(1)
			    : sf_key_text("k", 1);
		k.token = t;
		uint32_t id = UINT32_MAX;
		if (manifest_route(m, &k, &id, NULL, 0) != 0 ||
		    strcmp(m->routing_values[id], t) != 0)
			abort();
	}

	if (manifest_rebase(m, "file:///fuzz/copy/") != 0)
		abort();
	for (size_t i = 0; i < m->n_shards; i++)
		if (!m->shards[i].db_url || !*m->shards[i].db_url)
			abort();
}

/* Splits the next field off [*p, end) at 0x01 (malloc'd, NUL-terminated;
 * NUL bytes inside are kept, so SQLite sees them as part of the text). */
static char *field(const uint8_t **p, const uint8_t *end, size_t *n)
{
	const uint8_t *s = *p, *e = memchr(s, 1, (size_t)(end - s));
	char *f;

	if (!e)
		e = end;
	*n = (size_t)(e - s);
	f = malloc(*n + 1);
	if (!f)
		abort();
	memcpy(f, s, *n);
	f[*n] = '\0';
	*p = e < end ? e + 1 : end;
	return f;
}

/* Builds a manifest image from fields (see the top comment). */
static uint8_t *structured_image(const uint8_t *data, size_t size,
				 size_t *len)
{
	const uint8_t *p = data + 1, *end = data + size;
	char *f[6];
	size_t fl[6];
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	sqlite3_int64 n = 0;
	unsigned char *ser;
	uint8_t *img = NULL;

	for (int i = 0; i < 6; i++)
		f[i] = field(&p, end, &fl[i]);
	if (sqlite3_open(":memory:", &db) != SQLITE_OK)
		abort();
	if (sqlite3_exec(db,
			 "CREATE TABLE build_meta (run_id, created_at, num_dbs,"
			 " s3_prefix, key_col, sharding, db_path_template,"
			 " shard_prefix, format_version, key_encoding, custom);"
			 "CREATE TABLE shards (db_id, db_url, attempt, row_count,"
			 " db_bytes, min_key, max_key, checkpoint_id, writer_info);",
			 NULL, NULL, NULL) != SQLITE_OK)
		abort();
	sqlite3_prepare_v2(db, "INSERT INTO build_meta VALUES('r', ?1, ?2,"
			   " 's3://b/p', '_key', ?3, 'db', 'shards', ?4, ?5, ?6)",
			   -1, &st, NULL);
	sqlite3_bind_text(st, 1, f[2], (int)fl[2], SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, strtoll(f[4], NULL, 10));
	sqlite3_bind_text(st, 3, f[0], (int)fl[0], SQLITE_STATIC);
	sqlite3_bind_int64(st, 4, fl[5] ? strtoll(f[5], NULL, 10) : 4);
	sqlite3_bind_text(st, 5, f[3], (int)fl[3], SQLITE_STATIC);
	sqlite3_bind_text(st, 6, f[1], (int)fl[1], SQLITE_STATIC);
	sqlite3_step(st);
	sqlite3_finalize(st);
	sqlite3_prepare_v2(db, "INSERT INTO shards VALUES(?1,"
			   " 's3://b/p/shards/' || ?1, 0, 1, 1, '1', '2', 'c', '{}')",
			   -1, &st, NULL);
	for (; p < end; p++) {
		sqlite3_bind_int64(st, 1, (int)*p - 8);
		sqlite3_step(st);
		sqlite3_reset(st);
	}
	sqlite3_finalize(st);
	ser = sqlite3_serialize(db, "main", &n, 0);
	if (ser) {
		img = malloc((size_t)n);
		if (!img)
			abort();
		memcpy(img, ser, (size_t)n);
		*len = (size_t)n;
		sqlite3_free(ser);
	}
	sqlite3_close(db);
	for (int i = 0; i < 6; i++)
		free(f[i]);
	return img;
}

static void parse_one(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size > MAX_INPUT)
		return 0;
	if (size > 0 && data[0] == 'J') {
		size_t len = 0;
		uint8_t *img = structured_image(data, size, &len);
		if (img)
			parse_one(img, len);
		free(img);
		return 0;
	}
	parse_one(data, size);
	return 0;
}

static void parse_one(const uint8_t *data, size_t size)
{
	struct manifest *m = NULL;
	char err[256];
	int rc;

	err[0] = '\0';
	rc = manifest_parse(data, size, &m, err, sizeof(err));
	if (rc == 0) {
		if (!m)
			abort();
		check_manifest(m, data, size);
		manifest_free(m);
		return;
	}
	if (rc > 0 || m || !err[0] || strchr(err, '\n')) {
		fprintf(stderr, "manifest_parse: rc %d, err \"%s\"\n", rc, err);
		abort();
	}
}
