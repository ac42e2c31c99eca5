/*
 * manifest.h -- the snapshot model's parsers: `_CURRENT` (FORMAT.md 2) and
 * the SQLite manifest (FORMAT.md 3), with every validation rule of those
 * sections, plus URL rebasing for copied snapshots (FORMAT.md 8) and
 * routing (FORMAT.md 4, hash and categorical CEL).
 *
 * Bytes handed to these parsers are untrusted: any input gives either a
 * valid structure or an error with a clear message, never a crash.
 * This module does no I/O: callers fetch the bytes through the store.
 */
#ifndef SF_MANIFEST_H
#define SF_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "shardyfs.h"

#define SF_CURRENT_MAX_BYTES (64 * 1024)
#define SF_MANIFEST_MAX_BYTES (256u * 1024 * 1024)

struct sf_current {
	char *manifest_ref;
	char *run_id;
	char *updated_at;
	char *manifest_content_type;
	int format_version; /* default 1 */
};

/* Parses `_CURRENT` JSON. Returns 0 or SF_ECURRENT with a message.
 * On success the caller owns the strings (current_clear()). */
int current_parse(const uint8_t *buf, size_t len, struct sf_current *out,
		  char *err, size_t errlen);
void current_clear(struct sf_current *c);

struct manifest_shard {
	uint32_t db_id;
	char *db_url;          /* rebased after manifest_rebase() */
	int attempt;
	uint64_t row_count;
	uint64_t db_bytes;
	char *min_key;         /* JSON text or NULL */
	char *max_key;
	char *checkpoint_id;   /* may be NULL */
	char *writer_info;     /* JSON text or NULL */
};

enum manifest_strategy { MANIFEST_HASH = 0, MANIFEST_CEL = 1 };

struct manifest {
	char *run_id;
	char *created_at;
	double created_at_epoch;
	uint32_t num_dbs;
	char *s3_prefix;
	char *key_col;
	char *sharding_json;
	enum manifest_strategy strategy;
	char *strategy_name;      /* "hash" / "cel" */
	char *hash_algorithm;     /* "xxh3_64" */
	char *cel_expr;           /* NULL unless cel */
	/* Categorical routing: routing_values[i] is the token of db i, as the
	 * canonical text of the JSON value (strings unquoted, numbers as
	 * written). n_routing_values = 0 with strategy cel means direct mode,
	 * which manifest_parse() refuses with SF_EUNSUPPORTED. */
	char **routing_values;
	size_t n_routing_values;
	char *db_path_template;
	char *shard_prefix;
	int format_version;
	enum sf_key_encoding key_encoding;
	char *custom_json;
	int has_sidecar;          /* custom.sqlite_sidecar present, v8 */
	char *sidecar_filename;   /* default "shard.sidecar" */
	struct manifest_shard *shards; /* n_shards rows, sorted by db_id */
	size_t n_shards;
	/* Added by manifest.c for categorical routing: 1 when routing_values
	 * are JSON integers (tokens match integer keys), 0 when strings
	 * (tokens match text/bytes keys); routing_sorted lists the indexes
	 * of routing_values in strcmp order (binary search). */
	int routing_values_are_ints;
	/* Categorical CEL whose expression is the key column alone: a key
	 * with no explicit token routes by its own value. */
	int cel_key_is_token;
	uint32_t *routing_sorted;
};

/*
 * Parses and validates manifest bytes (a SQLite database image: rejects
 * anything not starting with "SQLite format 3\0"). Returns 0 and a
 * manifest owned by the caller (manifest_free()), or SF_EMANIFEST /
 * SF_EUNSUPPORTED (format_version, direct CEL) with a message.
 * Decisions (see manifest.c): only format_version 4 is read (any other is
 * SF_EUNSUPPORTED naming it); unknown sharding fields, unknown strategies
 * and CEL expressions other than the bare key column are SF_EUNSUPPORTED;
 * a WAL-mode header is read from a private copy; `buf` is only read and
 * need not outlive the call.
 */
int manifest_parse(const uint8_t *buf, size_t len, struct manifest **out,
		   char *err, size_t errlen);
void manifest_free(struct manifest *m);

/* The row of db_id, or NULL for an empty shard (or db_id out of range). */
const struct manifest_shard *manifest_shard(const struct manifest *m,
					    uint32_t db_id);

/*
 * Rewrites every db_url that starts with m->s3_prefix (compared without
 * trailing '/') onto `prefix`. URLs outside s3_prefix are left alone.
 * Returns 0 or SF_ENOMEM.
 */
int manifest_rebase(struct manifest *m, const char *prefix);

/* Rebases one URL: a malloc'd copy, rewritten if it starts with `from`. */
char *url_rebase(const char *url, const char *from, const char *to);

/*
 * Routes a key: hash strategy -> xxh3_64(canonical bytes) mod num_dbs;
 * categorical CEL -> the index of the routing value equal to the key's
 * token (the key's text, or decimal integer). Returns 0 with *db_id,
 * SF_NOTFOUND for an unknown token (or a key type that cannot equal the
 * routing values' type), or SF_EKEY when the key does not fit
 * m->key_encoding (route_check_key()) or, for hash routing, is an
 * integer >= 2^63 (shardyfusion hashes signed 64-bit integers only).
 * Thread-safe on a shared manifest (read-only).
 */
int manifest_route(const struct manifest *m, const struct sf_key *key,
		   uint32_t *db_id, char *err, size_t errlen);

/*
 * Checks that a key fits encoding `enc` as sf_key_encode() would store it:
 * integer encodings take SF_KEY_INT in range (u64be: 0..2^64-1, u32be:
 * 0..2^32-1, never negative); utf8/raw take SF_KEY_TEXT or SF_KEY_BYTES.
 * Returns 0, SF_EKEY (with a message naming the encoding) or SF_EINVAL.
 * Lives in route.c.
 */
int route_check_key(enum sf_key_encoding enc, const struct sf_key *key,
		    char *err, size_t errlen);

/* Parses "YYYY-MM-DDTHH:MM:SS[.ffffff](Z|+HH:MM)" to epoch seconds.
 * Returns 0 or SF_EINVAL. */
int parse_iso8601(const char *s, double *out);

#endif
