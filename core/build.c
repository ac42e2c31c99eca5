/*
 * build.c -- the snapshot builder: sf_builder_open/add/publish/free.
 *
 * It writes a snapshot in exactly the layout shardyfusion's Python writer
 * produces (FORMAT.md sections 1-3, 6 and 7), so that shardyfusion's own
 * readers and ours read it alike:
 *
 *   P/shards/run_id=<RUN>/db=<NNNNN>/attempt=00/shard.db      per non-empty shard
 *   P/shards/run_id=<RUN>/db=<NNNNN>/attempt=00/shard.sidecar bound to its ETag
 *   P/manifests/<TS>_run_id=<RUN>/manifest                    SQLite manifest
 *   P/_CURRENT                                                written last
 *
 * Design. Rows are not kept in memory: sf_builder_add() routes each key
 * (xxh3_64 of its canonical bytes mod num_dbs, FORMAT.md 4), encodes it
 * (FORMAT.md 5) and inserts it into one private staging database,
 * `rows(db_id, k, v)` keyed by (db_id, k), so that a key added twice keeps
 * its last value and every shard's rows come back in stored-key order.
 * sf_builder_publish() then writes each non-empty shard as its own SQLite
 * file (ATTACHed to the staging connection, journal_mode=OFF, page size
 * 4096, rows inserted in key order so the file is as compact as a VACUUMed
 * one), uploads it, takes the ETag the store returned, builds the sidecar
 * bound to that ETag and uploads it next to the database. The manifest is
 * written last but one; `_CURRENT` is overwritten last, so a reader sees
 * either the old or the new snapshot, never a torn one.
 *
 * Every temporary file lives in one private directory under tmp_dir,
 * removed by sf_builder_free().
 *
 * What is not here: multi-attempt writes, CEL sharding, "auto" page sizes,
 * run records under P/runs/ (readers ignore them).
 *
 * Divisions: small helpers (ids, timestamps, JSON text), the staging
 * database, shard writing, manifest writing, the public functions.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <sqlite3.h>

#include "err.h"
#include "sfvfs.h"
#include "shardyfs.h"
#include "store.h"

#define BUILD_MAX_DBS (1u << 20)
#define BUILD_MAX_KEY (1u << 20)          /* 1 MiB per key */
#define BUILD_MAX_VALUE (512u * 1024 * 1024) /* below SQLite's 1e9 limit */
#define BUILD_PAGE_SIZE 4096

static const char SHARDING_JSON[] =
	"{\"cel_columns\": null, \"cel_expr\": null, \"hash_algorithm\": "
	"\"xxh3_64\", \"routing_values\": null, \"strategy\": \"hash\"}";
static const char WRITER_INFO_JSON[] =
	"{\"attempt\": 0, \"duration_ms\": 0, \"stage_id\": null, "
	"\"task_attempt_id\": null}";
static const char CUSTOM_SIDECAR_JSON[] =
	"{\"sqlite_sidecar\": {\"codec\": \"zstd\", \"filename\": "
	"\"shard.sidecar\", \"format_version\": 8, \"page_size\": 4096}}";

/* The manifest schema, column for column as in shardyfusion's manifests. */
static const char MANIFEST_SCHEMA[] =
	"CREATE TABLE build_meta (\n"
	"    run_id           TEXT    NOT NULL,\n"
	"    created_at       TEXT    NOT NULL,\n"
	"    num_dbs          INTEGER NOT NULL,\n"
	"    s3_prefix        TEXT    NOT NULL,\n"
	"    key_col          TEXT    NOT NULL,\n"
	"    sharding         TEXT    NOT NULL,\n"
	"    db_path_template TEXT    NOT NULL,\n"
	"    shard_prefix     TEXT    NOT NULL,\n"
	"    format_version   INTEGER NOT NULL,\n"
	"    key_encoding     TEXT    NOT NULL,\n"
	"    custom           TEXT    NOT NULL DEFAULT '{}'\n"
	");\n"
	"CREATE TABLE shards (\n"
	"    db_id         INTEGER NOT NULL PRIMARY KEY,\n"
	"    db_url        TEXT,\n"
	"    attempt       INTEGER NOT NULL,\n"
	"    row_count     INTEGER NOT NULL,\n"
	"    db_bytes      INTEGER NOT NULL,\n"
	"    min_key       TEXT,\n"
	"    max_key       TEXT,\n"
	"    checkpoint_id TEXT,\n"
	"    writer_info   TEXT    NOT NULL DEFAULT '{}'\n"
	");\n";

struct sf_builder {
	struct store *st;
	char *prefix;        /* normalised prefix URL, no trailing '/' */
	char *run_id;
	char *key_col;
	char *tmp;           /* private temp directory */
	sqlite3 *db;         /* staging database tmp/staging.db */
	sqlite3_stmt *ins;   /* INSERT OR REPLACE INTO rows */
	uint8_t *kbuf;       /* encoded-key scratch */
	size_t kcap;
	uint32_t num_dbs;
	enum sf_key_encoding enc;
	int emit_sidecar;
	int done;            /* published, or failed while publishing */
};

/* ------------------------------------------------------------------ */
/* Helpers: ids, timestamps, JSON text                                 */
/* ------------------------------------------------------------------ */

/* A uuid4 as 32 lowercase hex digits (shardyfusion's uuid4().hex). */
static int uuid_hex(char out[33])
{
	uint8_t b[16];
	size_t got = 0;

	while (got < sizeof(b)) {
		ssize_t r = getrandom(b + got, sizeof(b) - got, 0);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		got += (size_t)r;
	}
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x40);
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80);
	for (int i = 0; i < 16; i++)
		snprintf(out + 2 * i, 3, "%02x", b[i]);
	return 0;
}

/* Now as "YYYY-MM-DDTHH:MM:SS.ffffffZ" (UTC, microseconds). */
static void utc_stamp(char out[40])
{
	struct timespec ts;
	struct tm tm;
	char base[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 40, "%s.%06uZ", base,
		 (unsigned)(ts.tv_nsec / 1000) % 1000000u);
}

/*
 * Decodes one strict UTF-8 sequence (as Python's decoder: no overlongs, no
 * surrogates, nothing above U+10FFFF). Returns its length, or 0 when the
 * bytes at p are not valid UTF-8.
 */
static size_t utf8_decode(const uint8_t *p, size_t n, uint32_t *cp)
{
	uint8_t c = p[0];
	size_t len;
	uint32_t v, min;

	if (c < 0x80) {
		*cp = c;
		return 1;
	} else if (c >= 0xc2 && c <= 0xdf) {
		len = 2;
		v = c & 0x1f;
		min = 0x80;
	} else if (c >= 0xe0 && c <= 0xef) {
		len = 3;
		v = c & 0x0f;
		min = 0x800;
	} else if (c >= 0xf0 && c <= 0xf4) {
		len = 4;
		v = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (p[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*cp = v;
	return len;
}

/*
 * The key's text as Python's json.dumps(str) writes it (ensure_ascii:
 * `"` and `\` and \b \f \n \r \t escaped by name, every other character
 * outside ' '..'~' as \uXXXX in lowercase hex, astral characters as
 * surrogate pairs). Returns a malloc'd string (caller frees), or NULL with
 * *invalid = 1 when the bytes are not UTF-8, or NULL on ENOMEM.
 */
static char *json_quote_utf8(const uint8_t *p, size_t n, int *invalid)
{
	char *out, *o;
	size_t i = 0;

	*invalid = 0;
	if (n > (SIZE_MAX - 3) / 12)
		return NULL;
	out = malloc(n * 12 + 3); /* 4 bytes -> two \uXXXX at most */
	if (!out)
		return NULL;
	o = out;
	*o++ = '"';
	while (i < n) {
		uint32_t cp;
		size_t l = utf8_decode(p + i, n - i, &cp);

		if (!l) {
			free(out);
			*invalid = 1;
			return NULL;
		}
		i += l;
		switch (cp) {
		case '"': o += sprintf(o, "\\\""); break;
		case '\\': o += sprintf(o, "\\\\"); break;
		case '\b': o += sprintf(o, "\\b"); break;
		case '\f': o += sprintf(o, "\\f"); break;
		case '\n': o += sprintf(o, "\\n"); break;
		case '\r': o += sprintf(o, "\\r"); break;
		case '\t': o += sprintf(o, "\\t"); break;
		default:
			if (cp >= 0x20 && cp <= 0x7e) {
				*o++ = (char)cp;
			} else if (cp < 0x10000) {
				o += sprintf(o, "\\u%04x", (unsigned)cp);
			} else {
				uint32_t v = cp - 0x10000;
				o += sprintf(o, "\\u%04x\\u%04x",
					     (unsigned)(0xd800 + (v >> 10)),
					     (unsigned)(0xdc00 + (v & 0x3ff)));
			}
		}
	}
	*o++ = '"';
	*o = 0;
	return out;
}

/*
 * min_key/max_key JSON for stored key bytes (FORMAT.md 3): a number for the
 * integer encodings, a JSON string for text and bytes, JSON null (returned
 * as NULL with rc 0) for bytes that are not UTF-8. *out is malloc'd.
 */
static int key_json(enum sf_key_encoding enc, const uint8_t *k, size_t n,
		    char **out)
{
	int invalid = 0;

	*out = NULL;
	if (enc == SF_ENC_U64BE || enc == SF_ENC_U32BE) {
		uint64_t v = 0;
		size_t want = enc == SF_ENC_U64BE ? 8 : 4;

		if (n != want)
			return SF_EIO;
		for (size_t i = 0; i < n; i++)
			v = (v << 8) | k[i];
		if (asprintf(out, "%" PRIu64, v) < 0) {
			*out = NULL;
			return SF_ENOMEM;
		}
		return 0;
	}
	*out = json_quote_utf8(k, n, &invalid);
	if (!*out && !invalid)
		return SF_ENOMEM;
	return 0;
}

static int valid_run_id(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 128 || !strcmp(s, ".") || !strcmp(s, ".."))
		return 0;
	for (; *s; s++) {
		char c = *s;
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '-' || c == '_' ||
		      c == '.'))
			return 0;
	}
	return 1;
}

/* Removes every file in dir, then dir (not recursive: the builder makes no
 * subdirectories). */
static void rm_tmpdir(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d) {
		for (e = readdir(d); e; e = readdir(d)) {
			char *p = NULL;
			if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
				continue;
			if (asprintf(&p, "%s/%s", dir, e->d_name) >= 0) {
				unlink(p);
				free(p);
			}
		}
		closedir(d);
	}
	rmdir(dir);
}

static int sql_err(sqlite3 *db, char *err, size_t errlen, const char *what)
{
	return sf_errf(err, errlen, SF_EIO, "builder: %s: %s", what,
		       db ? sqlite3_errmsg(db) : "out of memory");
}

static int sql_exec(sqlite3 *db, const char *sql, char *err, size_t errlen)
{
	char *msg = NULL;

	if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
		int rc = sf_errf(err, errlen, SF_EIO, "builder: %s",
				 msg ? msg : sqlite3_errmsg(db));
		sqlite3_free(msg);
		return rc;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* Staging database                                                    */
/* ------------------------------------------------------------------ */

static int staging_open(struct sf_builder *b, char *err, size_t errlen)
{
	char *path = NULL;
	int rc;

	if (asprintf(&path, "%s/staging.db", b->tmp) < 0)
		return SF_ENOMEM;
	if (sqlite3_open_v2(path, &b->db,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				    SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		rc = sql_err(b->db, err, errlen, "open staging database");
		goto out;
	}
	rc = sql_exec(b->db,
		      "PRAGMA journal_mode=OFF;"
		      "PRAGMA synchronous=OFF;"
		      "PRAGMA temp_store=FILE;"
		      "PRAGMA cache_size=-16384;"
		      "CREATE TABLE rows (db_id INTEGER NOT NULL, k BLOB NOT NULL,"
		      " v BLOB NOT NULL, PRIMARY KEY (db_id, k)) WITHOUT ROWID;"
		      "BEGIN;",
		      err, errlen);
	if (rc)
		goto out;
	if (sqlite3_prepare_v2(b->db,
			       "INSERT OR REPLACE INTO rows VALUES (?1, ?2, ?3)",
			       -1, &b->ins, NULL) != SQLITE_OK)
		rc = sql_err(b->db, err, errlen, "prepare insert");
out:
	free(path);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Shards                                                              */
/* ------------------------------------------------------------------ */

struct shard_row {
	uint32_t db_id;
	uint64_t rows;
	char *min_json; /* NULL = JSON null */
	char *max_json;
};

/*
 * Writes the rows of db_id into `path` as a shard database: one table kv,
 * page size 4096, journal_mode=OFF, rows inserted in key order.
 */
static int shard_write(struct sf_builder *b, uint32_t db_id, const char *path,
		       char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	int rc, attached = 0;

	if (sqlite3_prepare_v2(b->db, "ATTACH ?1 AS shard", -1, &st, NULL) !=
	    SQLITE_OK)
		return sql_err(b->db, err, errlen, "prepare attach");
	sqlite3_bind_text(st, 1, path, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = sql_err(b->db, err, errlen, "attach shard database");
		goto out;
	}
	attached = 1;
	sqlite3_finalize(st);
	st = NULL;
	rc = sql_exec(b->db,
		      "PRAGMA shard.page_size=4096;"
		      "PRAGMA shard.journal_mode=OFF;"
		      "PRAGMA shard.synchronous=OFF;"
		      "CREATE TABLE shard.kv (k BLOB PRIMARY KEY, v BLOB NOT NULL)"
		      " WITHOUT ROWID;",
		      err, errlen);
	if (rc)
		goto out;
	if (sqlite3_prepare_v2(b->db,
			       "INSERT INTO shard.kv SELECT k, v FROM main.rows"
			       " WHERE db_id = ?1 ORDER BY k",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = sql_err(b->db, err, errlen, "prepare shard copy");
		goto out;
	}
	sqlite3_bind_int64(st, 1, db_id);
	if (sqlite3_step(st) != SQLITE_DONE) {
		rc = sql_err(b->db, err, errlen, "write shard");
		goto out;
	}
out:
	sqlite3_finalize(st);
	if (attached && sqlite3_exec(b->db, "DETACH shard", NULL, NULL, NULL) !=
				SQLITE_OK && !rc)
		rc = sql_err(b->db, err, errlen, "detach shard database");
	return rc;
}

/* Counts, min and max keys of every non-empty shard, by db_id. */
static int shard_rows(struct sf_builder *b, struct shard_row **out, size_t *n,
		      char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	struct shard_row *rows = NULL;
	size_t cnt = 0, cap = 0;
	int rc = 0, s;

	if (sqlite3_prepare_v2(b->db,
			       "SELECT db_id, count(*), min(k), max(k) FROM rows"
			       " GROUP BY db_id ORDER BY db_id",
			       -1, &st, NULL) != SQLITE_OK)
		return sql_err(b->db, err, errlen, "prepare shard stats");
	for (s = sqlite3_step(st); s == SQLITE_ROW; s = sqlite3_step(st)) {
		struct shard_row *r;

		if (cnt == cap) {
			size_t nc = cap ? cap * 2 : 16;
			struct shard_row *nr = realloc(rows, nc * sizeof(*nr));
			if (!nr) {
				rc = SF_ENOMEM;
				goto out;
			}
			rows = nr;
			cap = nc;
		}
		r = &rows[cnt++];
		memset(r, 0, sizeof(*r));
		r->db_id = (uint32_t)sqlite3_column_int64(st, 0);
		r->rows = (uint64_t)sqlite3_column_int64(st, 1);
		rc = key_json(b->enc, sqlite3_column_blob(st, 2),
			      (size_t)sqlite3_column_bytes(st, 2), &r->min_json);
		if (!rc)
			rc = key_json(b->enc, sqlite3_column_blob(st, 3),
				      (size_t)sqlite3_column_bytes(st, 3),
				      &r->max_json);
		if (rc) {
			sf_errf(err, errlen, rc, "builder: shard %u: bad key",
				r->db_id);
			goto out;
		}
	}
	if (s != SQLITE_DONE)
		rc = sql_err(b->db, err, errlen, "shard stats");
out:
	sqlite3_finalize(st);
	if (rc) {
		for (size_t i = 0; i < cnt; i++) {
			free(rows[i].min_json);
			free(rows[i].max_json);
		}
		free(rows);
		rows = NULL;
		cnt = 0;
	}
	*out = rows;
	*n = cnt;
	return rc;
}

/*
 * Writes, uploads and (optionally) sidecars one shard; fills *db_bytes and
 * *db_url (malloc'd, caller frees).
 */
static int shard_publish(struct sf_builder *b, uint32_t db_id,
			 uint64_t *db_bytes, char **db_url, char *err,
			 size_t errlen)
{
	char *path = NULL, *dir = NULL, *obj = NULL, *sc_url = NULL;
	uint8_t *sc = NULL;
	size_t sclen = 0;
	struct store_info info;
	struct stat sb;
	int rc;

	*db_url = NULL;
	/* asprintf leaves its pointer undefined on failure: reset each. */
	if (asprintf(&path, "%s/shard-%05u.db", b->tmp, db_id) < 0)
		path = NULL;
	if (asprintf(&dir, "%s/shards/run_id=%s/db=%05u/attempt=00", b->prefix,
		     b->run_id, db_id) < 0)
		dir = NULL;
	if (!dir || asprintf(&obj, "%s/shard.db", dir) < 0)
		obj = NULL;
	if (!dir || asprintf(&sc_url, "%s/shard.sidecar", dir) < 0)
		sc_url = NULL;
	if (!path || !dir || !obj || !sc_url) {
		rc = SF_ENOMEM;
		goto out;
	}
	unlink(path);
	rc = shard_write(b, db_id, path, err, errlen);
	if (rc)
		goto out;
	if (stat(path, &sb) != 0) {
		rc = sf_errf(err, errlen, SF_EIO, "builder: stat %s: %s", path,
			     strerror(errno));
		goto out;
	}
	*db_bytes = (uint64_t)sb.st_size;
	memset(&info, 0, sizeof(info));
	rc = store_put_file(b->st, obj, path, "application/x-sqlite3", &info,
			    err, errlen);
	if (rc)
		goto out;
	sf_log(SF_LOG_INFO, "builder: uploaded %s (%" PRIu64 " bytes)", obj,
	       *db_bytes);
	if (b->emit_sidecar) {
		rc = sfv_sidecar_build(path, info.etag, &sc, &sclen, err,
				       errlen);
		if (rc) {
			sf_err_prefix(err, errlen, "builder: sidecar of shard %u",
				      db_id);
			goto out;
		}
		rc = store_put(b->st, sc_url, sc, sclen,
			       "application/octet-stream", NULL, err, errlen);
		if (rc)
			goto out;
	}
	*db_url = dir;
	dir = NULL;
out:
	if (path)
		unlink(path);
	free(path);
	free(dir);
	free(obj);
	free(sc_url);
	free(sc);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Manifest                                                            */
/* ------------------------------------------------------------------ */

static int manifest_create(struct sf_builder *b, const char *path,
			   const char *created_at, sqlite3 **out, char *err,
			   size_t errlen)
{
	sqlite3 *m = NULL;
	sqlite3_stmt *st = NULL;
	int rc;

	*out = NULL;
	unlink(path);
	if (sqlite3_open_v2(path, &m,
			    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				    SQLITE_OPEN_NOMUTEX,
			    NULL) != SQLITE_OK) {
		rc = sql_err(m, err, errlen, "open manifest");
		goto out;
	}
	rc = sql_exec(m, "PRAGMA page_size=4096; PRAGMA journal_mode=OFF;",
		      err, errlen);
	if (!rc)
		rc = sql_exec(m, MANIFEST_SCHEMA, err, errlen);
	if (!rc)
		rc = sql_exec(m, "BEGIN", err, errlen);
	if (rc)
		goto out;
	if (sqlite3_prepare_v2(m,
			       "INSERT INTO build_meta (run_id, created_at,"
			       " num_dbs, s3_prefix, key_col, sharding,"
			       " db_path_template, shard_prefix, format_version,"
			       " key_encoding, custom) VALUES (?1, ?2, ?3, ?4,"
			       " ?5, ?6, 'db={db_id:05d}', 'shards', 4, ?7, ?8)",
			       -1, &st, NULL) != SQLITE_OK) {
		rc = sql_err(m, err, errlen, "prepare build_meta");
		goto out;
	}
	sqlite3_bind_text(st, 1, b->run_id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, created_at, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, b->num_dbs);
	sqlite3_bind_text(st, 4, b->prefix, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, b->key_col, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, SHARDING_JSON, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, sf_encoding_name(b->enc), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, b->emit_sidecar ? CUSTOM_SIDECAR_JSON : "{}",
			  -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = sql_err(m, err, errlen, "insert build_meta");
out:
	sqlite3_finalize(st);
	if (rc) {
		sqlite3_close(m);
		unlink(path);
	} else {
		*out = m;
	}
	return rc;
}

static int manifest_add_shard(sqlite3 *m, const struct shard_row *r,
			      const char *db_url, uint64_t db_bytes,
			      char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	char ckpt[33];
	int rc = 0;

	rc = uuid_hex(ckpt);
	if (rc)
		return sf_errf(err, errlen, SF_EIO, "builder: getrandom failed");
	if (sqlite3_prepare_v2(m,
			       "INSERT INTO shards (db_id, db_url, attempt,"
			       " row_count, db_bytes, min_key, max_key,"
			       " checkpoint_id, writer_info) VALUES (?1, ?2, 0,"
			       " ?3, ?4, ?5, ?6, ?7, ?8)",
			       -1, &st, NULL) != SQLITE_OK)
		return sql_err(m, err, errlen, "prepare shards");
	sqlite3_bind_int64(st, 1, r->db_id);
	sqlite3_bind_text(st, 2, db_url, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, (sqlite3_int64)r->rows);
	sqlite3_bind_int64(st, 4, (sqlite3_int64)db_bytes);
	if (r->min_json)
		sqlite3_bind_text(st, 5, r->min_json, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 5);
	if (r->max_json)
		sqlite3_bind_text(st, 6, r->max_json, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 6);
	sqlite3_bind_text(st, 7, ckpt, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 8, WRITER_INFO_JSON, -1, SQLITE_STATIC);
	if (sqlite3_step(st) != SQLITE_DONE)
		rc = sql_err(m, err, errlen, "insert shard row");
	sqlite3_finalize(st);
	return rc;
}

/* The `_CURRENT` JSON: sorted keys, no spaces (FORMAT.md 2). */
static char *current_json(const char *manifest_ref, const char *run_id,
			  const char *updated_at)
{
	json_t *o = json_object();
	char *s = NULL;

	if (!o)
		return NULL;
	if (json_object_set_new(o, "format_version", json_integer(1)) ||
	    json_object_set_new(o, "manifest_content_type",
				json_string("application/x-sqlite3")) ||
	    json_object_set_new(o, "manifest_ref", json_string(manifest_ref)) ||
	    json_object_set_new(o, "run_id", json_string(run_id)) ||
	    json_object_set_new(o, "updated_at", json_string(updated_at)))
		goto out;
	s = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENSURE_ASCII);
out:
	json_decref(o);
	return s;
}

/* ------------------------------------------------------------------ */
/* Public functions                                                    */
/* ------------------------------------------------------------------ */

int sf_builder_open(struct sf_builder **out, const char *prefix,
		    const struct sf_options *opt,
		    const struct sf_build_options *bo_in, char *err,
		    size_t errlen)
{
	struct sf_build_options defaults;
	const struct sf_build_options *bo = bo_in;
	struct sf_builder *b = NULL;
	const char *tmpbase;
	char rid[33];
	int rc;

	sfv_sqlite_setup(); /* before anything touches SQLite */
	if (!out || !prefix || !*prefix)
		return sf_errf(err, errlen, SF_EINVAL, "builder: no prefix");
	*out = NULL;
	if (!bo) {
		sf_build_options_init(&defaults);
		bo = &defaults;
	}
	if (bo->num_dbs == 0 || bo->num_dbs > BUILD_MAX_DBS)
		return sf_errf(err, errlen, SF_EINVAL,
			       "builder: num_dbs must be in 1..%u",
			       BUILD_MAX_DBS);
	if ((unsigned)bo->key_encoding > SF_ENC_RAW)
		return sf_errf(err, errlen, SF_EINVAL,
			       "builder: unknown key encoding %d",
			       (int)bo->key_encoding);
	if (bo->run_id && !valid_run_id(bo->run_id))
		return sf_errf(err, errlen, SF_EINVAL,
			       "builder: run id must be 1-128 characters of "
			       "[A-Za-z0-9._-]");
	if (bo->key_col && !*bo->key_col)
		return sf_errf(err, errlen, SF_EINVAL, "builder: empty key_col");

	b = calloc(1, sizeof(*b));
	if (!b)
		return SF_ENOMEM;
	b->num_dbs = bo->num_dbs;
	b->enc = bo->key_encoding;
	b->emit_sidecar = bo->emit_sidecar;
	b->prefix = store_url_normalize(prefix);
	if (!bo->run_id) {
		rc = uuid_hex(rid);
		if (rc) {
			rc = sf_errf(err, errlen, SF_EIO,
				     "builder: getrandom failed");
			goto out;
		}
	}
	b->run_id = strdup(bo->run_id ? bo->run_id : rid);
	b->key_col = strdup(bo->key_col ? bo->key_col : "_key");
	if (!b->prefix || !b->run_id || !b->key_col) {
		rc = SF_ENOMEM;
		goto out;
	}
	if (!store_url_scheme(b->prefix)) {
		rc = sf_errf(err, errlen, SF_EURL,
			     "builder: unsupported prefix URL %s", prefix);
		goto out;
	}
	if (opt)
		sf_log_set(opt->log_level, opt->log_fn, opt->log_ctx);
	rc = store_open(&b->st, b->prefix, opt, err, errlen);
	if (rc)
		goto out;

	tmpbase = bo->tmp_dir;
	if (!tmpbase || !*tmpbase)
		tmpbase = getenv("TMPDIR");
	if (!tmpbase || !*tmpbase)
		tmpbase = "/tmp";
	if (asprintf(&b->tmp, "%s/shardyfs-build-XXXXXX", tmpbase) < 0) {
		b->tmp = NULL;
		rc = SF_ENOMEM;
		goto out;
	}
	if (!mkdtemp(b->tmp)) {
		rc = sf_errf(err, errlen, SF_EIO,
			     "builder: cannot create a temp dir under %s: %s",
			     tmpbase, strerror(errno));
		free(b->tmp);
		b->tmp = NULL;
		goto out;
	}
	rc = staging_open(b, err, errlen);
out:
	if (rc) {
		sf_builder_free(b);
		return rc;
	}
	*out = b;
	return 0;
}

int sf_builder_add(struct sf_builder *b, const struct sf_key *key,
		   const void *value, size_t vlen, char *err, size_t errlen)
{
	size_t need, klen = 0;
	uint32_t db_id;
	int rc;

	if (!b || !key || (!value && vlen))
		return sf_errf(err, errlen, SF_EINVAL, "builder: bad argument");
	if (b->done)
		return sf_errf(err, errlen, SF_EINVAL,
			       "builder: already published");
	if (vlen > BUILD_MAX_VALUE)
		return sf_errf(err, errlen, SF_EINVAL,
			       "builder: value of %zu bytes is too large", vlen);
	if (key->type != SF_KEY_INT && key->len > BUILD_MAX_KEY)
		return sf_errf(err, errlen, SF_EKEY,
			       "builder: key of %zu bytes is too large",
			       key->len);
	/* As manifest_route() and shardyfusion: integers hash as signed
	 * 64-bit, so a key above 2^63-1 could never be looked up. */
	if (key->type == SF_KEY_INT && !key->negative && key->u > INT64_MAX)
		return sf_errf(err, errlen, SF_EKEY,
			       "key %" PRIu64 " cannot be routed: shardyfusion "
			       "hashes integers in [-2^63, 2^63-1] only",
			       key->u);
	need = key->type == SF_KEY_INT ? 8 : key->len;
	if (need == 0)
		need = 1;
	if (need > b->kcap) {
		uint8_t *nb = realloc(b->kbuf, need);
		if (!nb)
			return SF_ENOMEM;
		b->kbuf = nb;
		b->kcap = need;
	}
	rc = sf_key_encode(b->enc, key, b->kbuf, b->kcap, &klen, err, errlen);
	if (rc)
		return rc;
	db_id = (uint32_t)(sf_key_hash(key) % b->num_dbs);

	sqlite3_reset(b->ins);
	sqlite3_bind_int64(b->ins, 1, db_id);
	sqlite3_bind_blob64(b->ins, 2, b->kbuf, klen, SQLITE_STATIC);
	/* A zero-length value must still be a BLOB, never NULL. */
	sqlite3_bind_blob64(b->ins, 3, vlen ? value : (const void *)"", vlen,
			    SQLITE_STATIC);
	if (sqlite3_step(b->ins) != SQLITE_DONE)
		rc = sql_err(b->db, err, errlen, "stage row");
	sqlite3_reset(b->ins);
	sqlite3_clear_bindings(b->ins);
	return rc;
}

int sf_builder_publish(struct sf_builder *b, char **manifest_ref, char *err,
		       size_t errlen)
{
	struct shard_row *rows = NULL;
	size_t nrows = 0;
	sqlite3 *m = NULL;
	char created_at[40], ts[40], updated_at[40];
	char *mpath = NULL, *mref = NULL, *cur_url = NULL, *cur = NULL;
	int rc;

	if (manifest_ref)
		*manifest_ref = NULL;
	if (!b)
		return sf_errf(err, errlen, SF_EINVAL, "builder: bad argument");
	if (b->done)
		return sf_errf(err, errlen, SF_EINVAL,
			       "builder: already published");
	b->done = 1;
	sqlite3_finalize(b->ins);
	b->ins = NULL;
	rc = sql_exec(b->db, "COMMIT", err, errlen);
	if (rc)
		goto out;
	rc = shard_rows(b, &rows, &nrows, err, errlen);
	if (rc)
		goto out;

	utc_stamp(created_at);
	if (asprintf(&mpath, "%s/manifest", b->tmp) < 0) {
		mpath = NULL;
		rc = SF_ENOMEM;
		goto out;
	}
	rc = manifest_create(b, mpath, created_at, &m, err, errlen);
	if (rc)
		goto out;
	for (size_t i = 0; i < nrows; i++) {
		uint64_t db_bytes = 0;
		char *db_url = NULL;

		rc = shard_publish(b, rows[i].db_id, &db_bytes, &db_url, err,
				   errlen);
		if (!rc)
			rc = manifest_add_shard(m, &rows[i], db_url, db_bytes,
						err, errlen);
		free(db_url);
		if (rc)
			goto out;
	}
	rc = sql_exec(m, "COMMIT", err, errlen);
	if (rc)
		goto out;
	if (sqlite3_close(m) != SQLITE_OK) {
		rc = sql_err(m, err, errlen, "close manifest");
		m = NULL;
		goto out;
	}
	m = NULL;

	utc_stamp(ts);
	if (asprintf(&mref, "%s/manifests/%s_run_id=%s/manifest", b->prefix, ts,
		     b->run_id) < 0) {
		mref = NULL;
		rc = SF_ENOMEM;
		goto out;
	}
	rc = store_put_file(b->st, mref, mpath, "application/x-sqlite3", NULL,
			    err, errlen);
	if (rc)
		goto out;

	utc_stamp(updated_at);
	cur = current_json(mref, b->run_id, updated_at);
	cur_url = store_url_join(b->prefix, "_CURRENT");
	if (!cur || !cur_url) {
		rc = SF_ENOMEM;
		goto out;
	}
	rc = store_put(b->st, cur_url, cur, strlen(cur), "application/json",
		       NULL, err, errlen);
	if (rc)
		goto out;
	sf_log(SF_LOG_INFO, "builder: published %s", mref);
	if (manifest_ref) {
		*manifest_ref = mref;
		mref = NULL;
	}
out:
	if (m)
		sqlite3_close(m);
	if (mpath)
		unlink(mpath);
	for (size_t i = 0; i < nrows; i++) {
		free(rows[i].min_json);
		free(rows[i].max_json);
	}
	free(rows);
	free(mpath);
	free(mref);
	free(cur_url);
	free(cur); /* jansson's default allocator is malloc */
	return rc;
}

void sf_builder_free(struct sf_builder *b)
{
	if (!b)
		return;
	sqlite3_finalize(b->ins);
	if (b->db)
		sqlite3_close(b->db);
	if (b->tmp)
		rm_tmpdir(b->tmp);
	if (b->st)
		store_close(b->st);
	free(b->tmp);
	free(b->prefix);
	free(b->run_id);
	free(b->key_col);
	free(b->kbuf);
	free(b);
}
