/*
 * manifest.c -- the snapshot model: `_CURRENT` (FORMAT.md 2), the SQLite
 * manifest (FORMAT.md 3), URL rebasing of copied snapshots (FORMAT.md 8)
 * and routing a key to its shard (FORMAT.md 4).
 *
 * Everything here parses bytes fetched from a store somebody else controls,
 * so every input is hostile until proven otherwise:
 *
 *   - `_CURRENT` is capped at SF_CURRENT_MAX_BYTES and parsed with jansson
 *     (no NUL inside strings). Unknown fields are ignored, as the writers'
 *     readers do; any other shape is SF_ECURRENT. manifest_content_type is
 *     kept but never checked: shardyfusion's rollback rewrites it as
 *     "application/json" while the manifest stays SQLite.
 *
 *   - The manifest is a SQLite image. After the 16-byte magic check it is
 *     opened in memory with sqlite3_deserialize(READONLY) on a private
 *     connection hardened as SQLite's "defense against the dark arts"
 *     advice says: defensive mode, untrusted schema, no triggers or views,
 *     tight limits, cell size checks, query_only, and a progress handler
 *     whose budget grows with the input size, so that no image can hang
 *     the parser. Both tables must be ordinary tables (not views or
 *     virtual tables). Columns are looked up by name in SELECT *, so a
 *     table without the declared constraints (no PRIMARY KEY, no NOT NULL,
 *     no affinity) is still read correctly: duplicates and NULLs are found
 *     by the validation below, not assumed away.
 *
 *   - Validation (FORMAT.md 3): exactly one build_meta row; format_version
 *     4 (the only version whose layout we know; any other is
 *     SF_EUNSUPPORTED naming it, checked before the other columns so that
 *     a future layout gets the right error); 0 < num_dbs <= 2^32-1;
 *     created_at ISO-8601; key_encoding one of the four names; sharding
 *     JSON with strategy and hash_algorithm == "xxh3_64" (no default);
 *     no unknown sharding fields (shardyfusion's model forbids them, and
 *     one could change routing); hash strategy without CEL fields; at
 *     most num_dbs shard rows, no duplicate db_id, every db_id in
 *     [0, num_dbs); db_url a non-empty string; counts non-negative.
 *
 *   - CEL: shardyfs does not evaluate CEL. Categorical mode
 *     (routing_values present) is accepted: the caller gives the routing
 *     token explicitly (struct sf_key.token), and when the expression is
 *     exactly the single cel_columns entry, the key itself is the token.
 *     Direct mode (no routing_values) is SF_EUNSUPPORTED: its shard ids
 *     come from evaluating the expression, and guessing would misroute.
 *
 * The parser never keeps the SQLite connection: it copies what it needs
 * into struct manifest and closes it before returning.
 */
#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <sqlite3.h>

#include "err.h"
#include "manifest.h"

#define MANIFEST_FORMAT_VERSION 4
#define SIDECAR_FORMAT_VERSION 8
/* Largest single value read from a manifest (sharding JSON with many
 * routing values, long URLs...). */
#define MANIFEST_MAX_VALUE (16 * 1024 * 1024)

/* Error messages quote hostile text (JSON parser and SQLite messages,
 * field values): keep them on one printable line. */
static void one_line(char *err, size_t errlen)
{
	if (!err || errlen == 0)
		return;
	for (; *err; err++)
		if ((unsigned char)*err < 0x20 || *err == 0x7f)
			*err = '?';
}

/* ------------------------------------------------------------------ */
/* _CURRENT                                                            */
/* ------------------------------------------------------------------ */

void current_clear(struct sf_current *c)
{
	if (!c)
		return;
	free(c->manifest_ref);
	free(c->run_id);
	free(c->updated_at);
	free(c->manifest_content_type);
	memset(c, 0, sizeof(*c));
}

/* Copies the string member `name` of `obj` into *out. */
static int current_str(json_t *obj, const char *name, int nonempty,
		       char **out, char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, name);

	if (!v)
		return sf_errf(err, errlen, SF_ECURRENT,
			       "_CURRENT has no \"%s\"", name);
	if (!json_is_string(v))
		return sf_errf(err, errlen, SF_ECURRENT,
			       "_CURRENT \"%s\" is not a string", name);
	if (nonempty && json_string_length(v) == 0)
		return sf_errf(err, errlen, SF_ECURRENT,
			       "_CURRENT \"%s\" is empty", name);
	*out = strdup(json_string_value(v));
	if (!*out)
		return sf_errf(err, errlen, SF_ENOMEM, "out of memory");
	return 0;
}

int current_parse(const uint8_t *buf, size_t len, struct sf_current *out,
		  char *err, size_t errlen)
{
	struct sf_current c = {0};
	json_error_t jerr;
	json_t *root = NULL, *fv;
	int rc;

	if (!out)
		return sf_errf(err, errlen, SF_EINVAL, "no output");
	memset(out, 0, sizeof(*out));
	if (!buf || len == 0)
		return sf_errf(err, errlen, SF_ECURRENT, "_CURRENT is empty");
	if (len > SF_CURRENT_MAX_BYTES)
		return sf_errf(err, errlen, SF_ECURRENT,
			       "_CURRENT is %zu bytes, more than the %d allowed",
			       len, SF_CURRENT_MAX_BYTES);
	root = json_loadb((const char *)buf, len, 0, &jerr);
	if (!root) {
		sf_errf(err, errlen, SF_ECURRENT,
			"_CURRENT is not JSON: %s at line %d column %d",
			jerr.text, jerr.line, jerr.column);
		one_line(err, errlen);
		return SF_ECURRENT;
	}
	if (!json_is_object(root)) {
		rc = sf_errf(err, errlen, SF_ECURRENT,
			     "_CURRENT is not a JSON object");
		goto out;
	}
	rc = current_str(root, "manifest_ref", 1, &c.manifest_ref, err, errlen);
	if (rc == 0)
		rc = current_str(root, "run_id", 0, &c.run_id, err, errlen);
	if (rc == 0)
		rc = current_str(root, "updated_at", 0, &c.updated_at, err,
				 errlen);
	if (rc == 0)
		rc = current_str(root, "manifest_content_type", 0,
				 &c.manifest_content_type, err, errlen);
	if (rc != 0)
		goto out;
	c.format_version = 1;
	fv = json_object_get(root, "format_version");
	if (fv) {
		json_int_t v;
		if (!json_is_integer(fv)) {
			rc = sf_errf(err, errlen, SF_ECURRENT,
				     "_CURRENT \"format_version\" is not an integer");
			goto out;
		}
		v = json_integer_value(fv);
		if (v < 1 || v > INT_MAX) {
			rc = sf_errf(err, errlen, SF_ECURRENT,
				     "_CURRENT \"format_version\" %" JSON_INTEGER_FORMAT
				     " is out of range", v);
			goto out;
		}
		c.format_version = (int)v;
	}
	*out = c;
	memset(&c, 0, sizeof(c));
out:
	current_clear(&c);
	json_decref(root);
	return rc;
}

/* ------------------------------------------------------------------ */
/* ISO-8601 timestamps                                                 */
/* ------------------------------------------------------------------ */

/* Reads exactly n digits. */
static int digits(const char **p, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -1;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*out = v;
	return 0;
}

static int days_in_month(int y, int m)
{
	static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return m == 2 ? 28 + leap : d[m - 1];
}

int parse_iso8601(const char *s, double *out)
{
	int y, mo, d, h, mi, sec, oh = 0, om = 0, sign = 0;
	double frac = 0, scale = 0.1;
	struct tm tm;
	time_t t;
	const char *p = s;

	if (!s || !out)
		return SF_EINVAL;
	if (digits(&p, 4, &y) || *p++ != '-' || digits(&p, 2, &mo) ||
	    *p++ != '-' || digits(&p, 2, &d))
		return SF_EINVAL;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return SF_EINVAL;
	p++;
	if (digits(&p, 2, &h) || *p++ != ':' || digits(&p, 2, &mi) ||
	    *p++ != ':' || digits(&p, 2, &sec))
		return SF_EINVAL;
	if (y < 1 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) ||
	    h > 23 || mi > 59 || sec > 59)
		return SF_EINVAL;
	if (*p == '.' || *p == ',') {
		p++;
		if (*p < '0' || *p > '9')
			return SF_EINVAL;
		for (; *p >= '0' && *p <= '9'; p++) {
			frac += (*p - '0') * scale;
			scale /= 10;
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		sign = *p++ == '-' ? -1 : 1;
		if (digits(&p, 2, &oh))
			return SF_EINVAL;
		if (*p == ':')
			p++;
		if (digits(&p, 2, &om) || oh > 23 || om > 59)
			return SF_EINVAL;
	}
	/* No zone at all is read as UTC (pydantic accepts naive times). */
	if (*p != '\0')
		return SF_EINVAL;

	memset(&tm, 0, sizeof(tm));
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	t = timegm(&tm);
	*out = (double)t - sign * (oh * 3600.0 + om * 60.0) + frac;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Manifest: SQLite access                                             */
/* ------------------------------------------------------------------ */

struct budget {
	uint64_t ticks;
	uint64_t max_ticks;
};

static int progress_cb(void *p)
{
	struct budget *b = p;

	return ++b->ticks > b->max_ticks;
}

static int sql_error(sqlite3 *db, int src, const char *what, char *err,
		     size_t errlen)
{
	if (src == SQLITE_NOMEM)
		return sf_errf(err, errlen, SF_ENOMEM, "out of memory");
	if (src == SQLITE_INTERRUPT)
		return sf_errf(err, errlen, SF_EMANIFEST,
			       "manifest is too costly to read (%s)", what);
	return sf_errf(err, errlen, SF_EMANIFEST,
		       "manifest is not a readable database (%s: %s)", what,
		       db ? sqlite3_errmsg(db) : sqlite3_errstr(src));
}

/*
 * Opens the image read-only in a private in-memory connection. The image
 * is not copied: with SQLITE_DESERIALIZE_READONLY (and no FREEONCLOSE)
 * SQLite only reads `buf`, which must outlive the connection.
 */
static int open_image(const uint8_t *buf, size_t len, struct budget *b,
		      sqlite3 **out, char *err, size_t errlen)
{
	sqlite3 *db = NULL;
	int src, rc;

	*out = NULL;
	src = sqlite3_open_v2(":memory:", &db,
			      SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			      SQLITE_OPEN_PRIVATECACHE | SQLITE_OPEN_NOMUTEX,
			      NULL);
	if (src != SQLITE_OK) {
		rc = sql_error(NULL, src, "open", err, errlen);
		goto out;
	}
	sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_TRIGGER, 0, NULL);
	sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
#ifdef SQLITE_DBCONFIG_TRUSTED_SCHEMA
	sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
#endif
#ifdef SQLITE_DBCONFIG_ENABLE_VIEW
	sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_VIEW, 0, NULL);
#endif
	sqlite3_limit(db, SQLITE_LIMIT_LENGTH, MANIFEST_MAX_VALUE);
	sqlite3_limit(db, SQLITE_LIMIT_SQL_LENGTH, 1000000);
	sqlite3_limit(db, SQLITE_LIMIT_COLUMN, 100);
	sqlite3_limit(db, SQLITE_LIMIT_EXPR_DEPTH, 50);
	sqlite3_limit(db, SQLITE_LIMIT_COMPOUND_SELECT, 3);
	sqlite3_limit(db, SQLITE_LIMIT_VDBE_OP, 25000);
	sqlite3_limit(db, SQLITE_LIMIT_FUNCTION_ARG, 8);
	sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
	sqlite3_limit(db, SQLITE_LIMIT_LIKE_PATTERN_LENGTH, 50);
	sqlite3_limit(db, SQLITE_LIMIT_VARIABLE_NUMBER, 10);
	sqlite3_limit(db, SQLITE_LIMIT_TRIGGER_DEPTH, 1);
	/* About 1000 VM steps per tick: 10^8 steps plus ~128 per input byte. */
	b->ticks = 0;
	b->max_ticks = 100000 + len / 8;
	sqlite3_progress_handler(db, 1000, progress_cb, b);

	src = sqlite3_deserialize(db, "main", (unsigned char *)(uintptr_t)buf,
				  (sqlite3_int64)len, (sqlite3_int64)len,
				  SQLITE_DESERIALIZE_READONLY);
	if (src != SQLITE_OK) {
		rc = sql_error(db, src, "deserialize", err, errlen);
		goto out;
	}
	src = sqlite3_exec(db, "PRAGMA cell_size_check=ON; PRAGMA query_only=ON;",
			   NULL, NULL, NULL);
	if (src != SQLITE_OK) {
		rc = sql_error(db, src, "configure", err, errlen);
		goto out;
	}
	*out = db;
	db = NULL;
	rc = 0;
out:
	sqlite3_close(db);
	return rc;
}

/* Requires `name` to be an ordinary table (not a view, virtual table...). */
static int check_table(sqlite3 *db, const char *name, char *err, size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const unsigned char *type;
	int src, rc;

	src = sqlite3_prepare_v2(db,
				 "SELECT type FROM pragma_table_list "
				 "WHERE schema = 'main' AND name = ?1",
				 -1, &st, NULL);
	if (src != SQLITE_OK) {
		rc = sql_error(db, src, "schema", err, errlen);
		goto out;
	}
	sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
	src = sqlite3_step(st);
	if (src == SQLITE_DONE) {
		rc = sf_errf(err, errlen, SF_EMANIFEST,
			     "manifest has no %s table", name);
		goto out;
	}
	if (src != SQLITE_ROW) {
		rc = sql_error(db, src, "schema", err, errlen);
		goto out;
	}
	type = sqlite3_column_text(st, 0);
	if (!type || strcmp((const char *)type, "table") != 0) {
		rc = sf_errf(err, errlen, SF_EMANIFEST,
			     "manifest %s is a %s, not a table", name,
			     type ? (const char *)type : "?");
		goto out;
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/* Column index by name in a prepared SELECT *, or -1. */
static int col_index(sqlite3_stmt *st, const char *name)
{
	int n = sqlite3_column_count(st);

	for (int i = 0; i < n; i++) {
		const char *c = sqlite3_column_name(st, i);
		if (c && strcasecmp(c, name) == 0)
			return i;
	}
	return -1;
}

/*
 * Copies a TEXT column into *out. NULL (or an absent column, i < 0) gives
 * *out = NULL when `required` is 0, else an error. Numbers are accepted as
 * their text (a table without affinity may hold them); BLOBs and text
 * with a NUL byte are refused.
 */
static int col_text(sqlite3_stmt *st, int i, const char *table,
		    const char *name, int required, char **out, char *err,
		    size_t errlen)
{
	const unsigned char *p;
	int type, n;

	*out = NULL;
	type = i < 0 ? SQLITE_NULL : sqlite3_column_type(st, i);
	if (type == SQLITE_NULL) {
		if (required)
			return sf_errf(err, errlen, SF_EMANIFEST,
				       "%s.%s is missing", table, name);
		return 0;
	}
	if (type == SQLITE_BLOB)
		return sf_errf(err, errlen, SF_EMANIFEST,
			       "%s.%s is a blob, not text", table, name);
	p = sqlite3_column_text(st, i);
	n = sqlite3_column_bytes(st, i);
	if (!p)
		return sf_errf(err, errlen, SF_ENOMEM, "out of memory");
	if (strlen((const char *)p) != (size_t)n)
		return sf_errf(err, errlen, SF_EMANIFEST,
			       "%s.%s contains a NUL byte", table, name);
	*out = strdup((const char *)p);
	if (!*out)
		return sf_errf(err, errlen, SF_ENOMEM, "out of memory");
	return 0;
}

/* Reads a required INTEGER column. */
static int col_int(sqlite3_stmt *st, int i, const char *table,
		   const char *name, int64_t *out, char *err, size_t errlen)
{
	int type = i < 0 ? SQLITE_NULL : sqlite3_column_type(st, i);

	if (type == SQLITE_NULL)
		return sf_errf(err, errlen, SF_EMANIFEST, "%s.%s is missing",
			       table, name);
	if (type != SQLITE_INTEGER)
		return sf_errf(err, errlen, SF_EMANIFEST,
			       "%s.%s is not an integer", table, name);
	*out = sqlite3_column_int64(st, i);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Manifest: build_meta                                                */
/* ------------------------------------------------------------------ */

static int is_ident(const char *s)
{
	if (!(isalpha((unsigned char)*s) || *s == '_'))
		return 0;
	for (s++; *s; s++)
		if (!(isalnum((unsigned char)*s) || *s == '_'))
			return 0;
	return 1;
}

static const char *routing_token(const struct manifest *m, uint32_t i)
{
	return m->routing_values[m->routing_sorted[i]];
}

/* qsort() has no context argument in C11: a thread-local carries it. */
static _Thread_local const struct manifest *sort_ctx;

static int cmp_routing(const void *a, const void *b)
{
	const uint32_t *x = a, *y = b;
	int c = strcmp(sort_ctx->routing_values[*x],
		       sort_ctx->routing_values[*y]);

	return c != 0 ? c : (*x > *y) - (*x < *y);
}

/* Builds routing_sorted and refuses duplicate tokens. */
static int sort_routing(struct manifest *m, char *err, size_t errlen)
{
	size_t n = m->n_routing_values;

	m->routing_sorted = calloc(n ? n : 1, sizeof(uint32_t));
	if (!m->routing_sorted)
		return sf_errf(err, errlen, SF_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		m->routing_sorted[i] = (uint32_t)i;
	sort_ctx = m;
	qsort(m->routing_sorted, n, sizeof(uint32_t), cmp_routing);
	sort_ctx = NULL;
	for (size_t i = 1; i < n; i++) {
		if (strcmp(routing_token(m, (uint32_t)i - 1),
			   routing_token(m, (uint32_t)i)) == 0)
			return sf_errf(err, errlen, SF_EMANIFEST,
				       "sharding.routing_values has a duplicate value \"%.64s\"",
				       routing_token(m, (uint32_t)i));
	}
	return 0;
}

static int parse_routing_values(struct manifest *m, json_t *rv, char *err,
				size_t errlen)
{
	size_t n = json_array_size(rv);
	int ints = -1;

	if (n > UINT32_MAX)
		return sf_errf(err, errlen, SF_EMANIFEST,
			       "sharding.routing_values is too long");
	m->routing_values = calloc(n ? n : 1, sizeof(char *));
	if (!m->routing_values)
		return sf_errf(err, errlen, SF_ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++) {
		json_t *v = json_array_get(rv, i);
		char num[32];
		int is_int = json_is_integer(v);

		if (!is_int && !json_is_string(v))
			return sf_errf(err, errlen, SF_EMANIFEST,
				       "sharding.routing_values[%zu] is not an integer or a string",
				       i);
		if (ints >= 0 && ints != is_int)
			return sf_errf(err, errlen, SF_EMANIFEST,
				       "sharding.routing_values mixes integers and strings");
		ints = is_int;
		if (is_int) {
			snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
				 json_integer_value(v));
			m->routing_values[i] = strdup(num);
		} else {
			m->routing_values[i] = strdup(json_string_value(v));
		}
		if (!m->routing_values[i])
			return sf_errf(err, errlen, SF_ENOMEM, "out of memory");
		m->n_routing_values = i + 1;
	}
	m->routing_values_are_ints = ints == 1;
	return sort_routing(m, err, errlen);
}

static int dup_or_null(const char *s, char **out, char *err, size_t errlen)
{
	*out = NULL;
	if (!s)
		return 0;
	*out = strdup(s);
	return *out ? 0 : sf_errf(err, errlen, SF_ENOMEM, "out of memory");
}

static int parse_sharding(struct manifest *m, char *err, size_t errlen)
{
	static const char *const known[] = {"strategy", "hash_algorithm",
					    "cel_expr", "cel_columns",
					    "routing_values"};
	json_t *root = NULL, *v, *rv, *cols, *expr;
	json_error_t jerr;
	const char *key;
	int rc;

	root = json_loads(m->sharding_json, 0, &jerr);
	if (!root || !json_is_object(root)) {
		rc = sf_errf(err, errlen, SF_EMANIFEST,
			     "build_meta.sharding is not a JSON object%s%s",
			     root ? "" : ": ", root ? "" : jerr.text);
		goto out;
	}
	json_object_foreach(root, key, v) {
		size_t k;
		for (k = 0; k < sizeof(known) / sizeof(known[0]); k++)
			if (strcmp(key, known[k]) == 0)
				break;
		if (k == sizeof(known) / sizeof(known[0])) {
			rc = sf_errf(err, errlen, SF_EUNSUPPORTED,
				     "sharding field \"%.64s\" is not supported",
				     key);
			goto out;
		}
	}

	v = json_object_get(root, "strategy");
	if (!v || json_is_null(v)) {
		rc = sf_errf(err, errlen, SF_EMANIFEST,
			     "sharding has no strategy");
		goto out;
	}
	if (!json_is_string(v)) {
		rc = sf_errf(err, errlen, SF_EMANIFEST,
			     "sharding.strategy is not a string");
		goto out;
	}
	if (strcmp(json_string_value(v), "hash") == 0) {
		m->strategy = MANIFEST_HASH;
	} else if (strcmp(json_string_value(v), "cel") == 0) {
		m->strategy = MANIFEST_CEL;
	} else {
		rc = sf_errf(err, errlen, SF_EUNSUPPORTED,
			     "sharding strategy \"%.64s\" is not supported",
			     json_string_value(v));
		goto out;
	}
	rc = dup_or_null(json_string_value(v), &m->strategy_name, err, errlen);
	if (rc != 0)
		goto out;

	v = json_object_get(root, "hash_algorithm");
	if (!v || json_is_null(v)) {
		rc = sf_errf(err, errlen, SF_EMANIFEST,
			     "sharding has no hash_algorithm");
		goto out;
	}
	if (!json_is_string(v) ||
	    strcmp(json_string_value(v), "xxh3_64") != 0) {
		rc = sf_errf(err, errlen, SF_EMANIFEST,
			     "sharding.hash_algorithm \"%.64s\" is not xxh3_64",
			     json_is_string(v) ? json_string_value(v) : "?");
		goto out;
	}
	rc = dup_or_null("xxh3_64", &m->hash_algorithm, err, errlen);
	if (rc != 0)
		goto out;

	expr = json_object_get(root, "cel_expr");
	cols = json_object_get(root, "cel_columns");
	rv = json_object_get(root, "routing_values");
	if (expr && !json_is_null(expr) && !json_is_string(expr)) {
		rc = sf_errf(err, errlen, SF_EMANIFEST,
			     "sharding.cel_expr is not a string");
		goto out;
	}
	if (cols && !json_is_null(cols) && !json_is_object(cols)) {
		rc = sf_errf(err, errlen, SF_EMANIFEST,
			     "sharding.cel_columns is not an object");
		goto out;
	}
	if (rv && !json_is_null(rv) && !json_is_array(rv)) {
		rc = sf_errf(err, errlen, SF_EMANIFEST,
			     "sharding.routing_values is not an array");
		goto out;
	}
	if (expr && json_is_null(expr))
		expr = NULL;
	if (cols && json_is_null(cols))
		cols = NULL;
	if (rv && json_is_null(rv))
		rv = NULL;

	if (m->strategy == MANIFEST_HASH) {
		if (expr || cols || rv) {
			rc = sf_errf(err, errlen, SF_EMANIFEST,
				     "sharding strategy hash has %s",
				     expr ? "a cel_expr" : cols ? "cel_columns"
				     : "routing_values");
			goto out;
		}
		rc = 0;
		goto out;
	}

	/* strategy cel */
	if (!expr || json_string_length(expr) == 0) {
		rc = sf_errf(err, errlen, SF_EMANIFEST,
			     "sharding strategy cel has no cel_expr");
		goto out;
	}
	rc = dup_or_null(json_string_value(expr), &m->cel_expr, err, errlen);
	if (rc != 0)
		goto out;
	if (!rv) {
		rc = sf_errf(err, errlen, SF_EUNSUPPORTED,
			     "direct CEL routing is not supported (cel_expr \"%.64s\" without routing_values)",
			     m->cel_expr);
		goto out;
	}
	if (!cols || json_object_size(cols) == 0) {
		rc = sf_errf(err, errlen, SF_EMANIFEST,
			     "sharding strategy cel has no cel_columns");
		goto out;
	}
	{
		/* Only `<column>` over a single column: the token is the key. */
		char trimmed[256];
		const char *s = m->cel_expr, *e;
		const char *col = NULL;
		json_t *cv;
		size_t n;

		while (isspace((unsigned char)*s))
			s++;
		e = s + strlen(s);
		while (e > s && isspace((unsigned char)e[-1]))
			e--;
		n = (size_t)(e - s);
		if (n < sizeof(trimmed)) {
			memcpy(trimmed, s, n);
			trimmed[n] = '\0';
		} else {
			trimmed[0] = '\0';
		}
		if (json_object_size(cols) == 1)
			json_object_foreach(cols, col, cv)
				break;
		/* Any other expression needs an explicit routing token. */
		m->cel_key_is_token = col && trimmed[0] && is_ident(trimmed) &&
				      strcmp(trimmed, col) == 0;
	}
	rc = parse_routing_values(m, rv, err, errlen);
	if (rc != 0)
		goto out;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

/* custom.sqlite_sidecar: {format_version 8, filename}. Anything else in
 * custom is the writer's business; a sidecar we cannot use is ignored
 * (sidecars are an optimisation), but custom must be a JSON object. */
static int parse_custom(struct manifest *m, char *err, size_t errlen)
{
	json_t *root = NULL, *sc, *fv, *fn;
	json_error_t jerr;
	const char *name = "shard.sidecar";
	int rc;

	root = json_loads(m->custom_json, 0, &jerr);
	if (!root || !json_is_object(root)) {
		rc = sf_errf(err, errlen, SF_EMANIFEST,
			     "build_meta.custom is not a JSON object");
		goto out;
	}
	sc = json_object_get(root, "sqlite_sidecar");
	if (!json_is_object(sc)) {
		rc = 0;
		goto out;
	}
	fv = json_object_get(sc, "format_version");
	if (!json_is_integer(fv) ||
	    json_integer_value(fv) != SIDECAR_FORMAT_VERSION) {
		rc = 0;
		goto out;
	}
	fn = json_object_get(sc, "filename");
	if (fn && !json_is_null(fn)) {
		const char *f = json_is_string(fn) ? json_string_value(fn) : "";
		/* A plain object name next to shard.db, nothing else. */
		if (!*f || strchr(f, '/') || strcmp(f, ".") == 0 ||
		    strcmp(f, "..") == 0 || strlen(f) > 255) {
			rc = 0;
			goto out;
		}
		for (const char *p = f; *p; p++) {
			if ((unsigned char)*p < 0x20 || *p == '\\') {
				rc = 0;
				goto out;
			}
		}
		name = f;
	}
	m->sidecar_filename = strdup(name);
	if (!m->sidecar_filename) {
		rc = sf_errf(err, errlen, SF_ENOMEM, "out of memory");
		goto out;
	}
	m->has_sidecar = 1;
	rc = 0;
out:
	json_decref(root);
	return rc;
}

static int read_build_meta(sqlite3 *db, struct manifest *m, char *err,
			   size_t errlen)
{
	sqlite3_stmt *st = NULL;
	const char *T = "build_meta";
	int64_t v = 0;
	char *enc = NULL;
	int src, rc;

	rc = check_table(db, T, err, errlen);
	if (rc != 0)
		goto out;
	src = sqlite3_prepare_v2(db, "SELECT * FROM build_meta LIMIT 2", -1,
				 &st, NULL);
	if (src != SQLITE_OK) {
		rc = sql_error(db, src, "build_meta", err, errlen);
		goto out;
	}
	src = sqlite3_step(st);
	if (src == SQLITE_DONE) {
		rc = sf_errf(err, errlen, SF_EMANIFEST, "build_meta has no row");
		goto out;
	}
	if (src != SQLITE_ROW) {
		rc = sql_error(db, src, "build_meta", err, errlen);
		goto out;
	}

	/* The version first: a future layout must read as "unsupported". */
	rc = col_int(st, col_index(st, "format_version"), T, "format_version",
		     &v, err, errlen);
	if (rc != 0)
		goto out;
	if (v != MANIFEST_FORMAT_VERSION) {
		rc = sf_errf(err, errlen, SF_EUNSUPPORTED,
			     "manifest format_version %" PRId64
			     " is not supported (shardyfs reads version %d)",
			     v, MANIFEST_FORMAT_VERSION);
		goto out;
	}
	m->format_version = (int)v;

	rc = col_int(st, col_index(st, "num_dbs"), T, "num_dbs", &v, err,
		     errlen);
	if (rc != 0)
		goto out;
	if (v <= 0 || (uint64_t)v > UINT32_MAX) {
		rc = sf_errf(err, errlen, SF_EMANIFEST,
			     "build_meta.num_dbs %" PRId64 " is out of range (1..%" PRIu32 ")",
			     v, UINT32_MAX);
		goto out;
	}
	m->num_dbs = (uint32_t)v;

#define TEXT_COL(field, req)                                                 \
	do {                                                                 \
		rc = col_text(st, col_index(st, #field), T, #field, req,     \
			      &m->field, err, errlen);                       \
		if (rc != 0)                                                 \
			goto out;                                            \
	} while (0)
	TEXT_COL(run_id, 1);
	TEXT_COL(created_at, 1);
	TEXT_COL(s3_prefix, 1);
	TEXT_COL(key_col, 1);
	TEXT_COL(db_path_template, 1);
	TEXT_COL(shard_prefix, 1);
#undef TEXT_COL
	rc = col_text(st, col_index(st, "sharding"), T, "sharding", 1,
		      &m->sharding_json, err, errlen);
	if (rc != 0)
		goto out;
	rc = col_text(st, col_index(st, "custom"), T, "custom", 0,
		      &m->custom_json, err, errlen);
	if (rc != 0)
		goto out;
	if (!m->custom_json) {
		m->custom_json = strdup("{}");
		if (!m->custom_json) {
			rc = sf_errf(err, errlen, SF_ENOMEM, "out of memory");
			goto out;
		}
	}
	rc = col_text(st, col_index(st, "key_encoding"), T, "key_encoding", 1,
		      &enc, err, errlen);
	if (rc != 0)
		goto out;
	if (sf_encoding_parse(enc, &m->key_encoding) != 0) {
		rc = sf_errf(err, errlen, SF_EMANIFEST,
			     "build_meta.key_encoding \"%.32s\" is not one of u64be, u32be, utf8, raw",
			     enc);
		goto out;
	}

	src = sqlite3_step(st);
	if (src == SQLITE_ROW) {
		rc = sf_errf(err, errlen, SF_EMANIFEST,
			     "build_meta has more than one row");
		goto out;
	}
	if (src != SQLITE_DONE) {
		rc = sql_error(db, src, "build_meta", err, errlen);
		goto out;
	}

	if (parse_iso8601(m->created_at, &m->created_at_epoch) != 0) {
		rc = sf_errf(err, errlen, SF_EMANIFEST,
			     "build_meta.created_at \"%.40s\" is not an ISO-8601 timestamp",
			     m->created_at);
		goto out;
	}
	rc = parse_sharding(m, err, errlen);
	if (rc != 0)
		goto out;
	if (m->strategy == MANIFEST_CEL) {
		uint64_t want = m->n_routing_values ? m->n_routing_values : 1;
		if (m->num_dbs != want) {
			rc = sf_errf(err, errlen, SF_EMANIFEST,
				     "num_dbs is %" PRIu32 " but there are %zu routing_values",
				     m->num_dbs, m->n_routing_values);
			goto out;
		}
	}
	rc = parse_custom(m, err, errlen);
out:
	free(enc);
	sqlite3_finalize(st);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Manifest: shards                                                    */
/* ------------------------------------------------------------------ */

static void shard_clear(struct manifest_shard *s)
{
	free(s->db_url);
	free(s->min_key);
	free(s->max_key);
	free(s->checkpoint_id);
	free(s->writer_info);
	memset(s, 0, sizeof(*s));
}

static int cmp_shard(const void *a, const void *b)
{
	const struct manifest_shard *x = a, *y = b;

	return (x->db_id > y->db_id) - (x->db_id < y->db_id);
}

static int read_shard_row(sqlite3_stmt *st, const int *ix,
			  struct manifest_shard *s, uint32_t num_dbs,
			  char *err, size_t errlen)
{
	const char *T = "shards";
	int64_t v = 0;
	int rc;

	rc = col_int(st, ix[0], T, "db_id", &v, err, errlen);
	if (rc != 0)
		return rc;
	if (v < 0 || v >= (int64_t)num_dbs)
		return sf_errf(err, errlen, SF_EMANIFEST,
			       "shard db_id %" PRId64 " is outside [0, %" PRIu32 ")",
			       v, num_dbs);
	s->db_id = (uint32_t)v;
	rc = col_text(st, ix[1], T, "db_url", 1, &s->db_url, err, errlen);
	if (rc != 0 || !s->db_url[0])
		return rc ? rc : sf_errf(err, errlen, SF_EMANIFEST,
					 "shard %" PRIu32 " has an empty db_url",
					 s->db_id);
	rc = col_int(st, ix[2], T, "attempt", &v, err, errlen);
	if (rc != 0)
		return rc;
	if (v < 0 || v > INT_MAX)
		return sf_errf(err, errlen, SF_EMANIFEST,
			       "shard %" PRIu32 " attempt %" PRId64 " is out of range",
			       s->db_id, v);
	s->attempt = (int)v;
	rc = col_int(st, ix[3], T, "row_count", &v, err, errlen);
	if (rc != 0)
		return rc;
	if (v < 0)
		return sf_errf(err, errlen, SF_EMANIFEST,
			       "shard %" PRIu32 " row_count is negative", s->db_id);
	s->row_count = (uint64_t)v;
	rc = col_int(st, ix[4], T, "db_bytes", &v, err, errlen);
	if (rc != 0)
		return rc;
	if (v < 0)
		return sf_errf(err, errlen, SF_EMANIFEST,
			       "shard %" PRIu32 " db_bytes is negative", s->db_id);
	s->db_bytes = (uint64_t)v;
	rc = col_text(st, ix[5], T, "min_key", 0, &s->min_key, err, errlen);
	if (rc == 0)
		rc = col_text(st, ix[6], T, "max_key", 0, &s->max_key, err,
			      errlen);
	if (rc == 0)
		rc = col_text(st, ix[7], T, "checkpoint_id", 0,
			      &s->checkpoint_id, err, errlen);
	if (rc == 0)
		rc = col_text(st, ix[8], T, "writer_info", 0, &s->writer_info,
			      err, errlen);
	return rc;
}

static int read_shards(sqlite3 *db, struct manifest *m, char *err,
		       size_t errlen)
{
	static const char *const cols[] = {
		"db_id", "db_url", "attempt", "row_count", "db_bytes",
		"min_key", "max_key", "checkpoint_id", "writer_info",
	};
	sqlite3_stmt *st = NULL;
	size_t cap = 0;
	int ix[9];
	int src, rc;

	rc = check_table(db, "shards", err, errlen);
	if (rc != 0)
		goto out;
	src = sqlite3_prepare_v2(db, "SELECT * FROM shards", -1, &st, NULL);
	if (src != SQLITE_OK) {
		rc = sql_error(db, src, "shards", err, errlen);
		goto out;
	}
	for (int i = 0; i < 9; i++) {
		ix[i] = col_index(st, cols[i]);
		/* Required columns; the others may be absent (NULL). */
		if (ix[i] < 0 && i < 5) {
			rc = sf_errf(err, errlen, SF_EMANIFEST,
				     "shards has no %s column", cols[i]);
			goto out;
		}
	}
	while ((src = sqlite3_step(st)) == SQLITE_ROW) {
		if (m->n_shards >= m->num_dbs) {
			rc = sf_errf(err, errlen, SF_EMANIFEST,
				     "shards has more rows than num_dbs (%" PRIu32 ")",
				     m->num_dbs);
			goto out;
		}
		if (m->n_shards == cap) {
			size_t ncap = cap ? cap * 2 : 16;
			struct manifest_shard *ns;
			if (ncap > m->num_dbs)
				ncap = m->num_dbs;
			ns = realloc(m->shards, ncap * sizeof(*ns));
			if (!ns) {
				rc = sf_errf(err, errlen, SF_ENOMEM,
					     "out of memory");
				goto out;
			}
			m->shards = ns;
			cap = ncap;
		}
		memset(&m->shards[m->n_shards], 0, sizeof(m->shards[0]));
		m->n_shards++;
		rc = read_shard_row(st, ix, &m->shards[m->n_shards - 1],
				    m->num_dbs, err, errlen);
		if (rc != 0)
			goto out;
	}
	if (src != SQLITE_DONE) {
		rc = sql_error(db, src, "shards", err, errlen);
		goto out;
	}
	if (m->n_shards > 1)
		qsort(m->shards, m->n_shards, sizeof(m->shards[0]), cmp_shard);
	for (size_t i = 1; i < m->n_shards; i++) {
		if (m->shards[i].db_id == m->shards[i - 1].db_id) {
			rc = sf_errf(err, errlen, SF_EMANIFEST,
				     "shard db_id %" PRIu32 " appears more than once",
				     m->shards[i].db_id);
			goto out;
		}
	}
	rc = 0;
out:
	sqlite3_finalize(st);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Manifest: public entry points                                       */
/* ------------------------------------------------------------------ */

void manifest_free(struct manifest *m)
{
	if (!m)
		return;
	free(m->run_id);
	free(m->created_at);
	free(m->s3_prefix);
	free(m->key_col);
	free(m->sharding_json);
	free(m->strategy_name);
	free(m->hash_algorithm);
	free(m->cel_expr);
	for (size_t i = 0; i < m->n_routing_values; i++)
		free(m->routing_values[i]);
	free(m->routing_values);
	free(m->routing_sorted);
	free(m->db_path_template);
	free(m->shard_prefix);
	free(m->custom_json);
	free(m->sidecar_filename);
	for (size_t i = 0; i < m->n_shards; i++)
		shard_clear(&m->shards[i]);
	free(m->shards);
	free(m);
}

int manifest_parse(const uint8_t *buf, size_t len, struct manifest **out,
		   char *err, size_t errlen)
{
	static const char magic[16] = "SQLite format 3";
	struct manifest *m = NULL;
	uint8_t *copy = NULL;
	struct budget b;
	sqlite3 *db = NULL;
	int rc;

	if (!out)
		return sf_errf(err, errlen, SF_EINVAL, "no output");
	*out = NULL;
	if (!buf || len < sizeof(magic) || memcmp(buf, magic, sizeof(magic)))
		return sf_errf(err, errlen, SF_EMANIFEST,
			       "manifest is not a SQLite database (no \"SQLite format 3\" header)");
	if (len > SF_MANIFEST_MAX_BYTES)
		return sf_errf(err, errlen, SF_EMANIFEST,
			       "manifest is %zu bytes, more than the %u allowed",
			       len, SF_MANIFEST_MAX_BYTES);
	m = calloc(1, sizeof(*m));
	if (!m)
		return sf_errf(err, errlen, SF_ENOMEM, "out of memory");
	/* A database saved in WAL mode (header bytes 18-19 = 2) cannot be
	 * opened from memory; the image itself is complete, so read a copy
	 * marked as a rollback-journal database, as SQLite documents. */
	if (len >= 20 && (buf[18] == 2 || buf[19] == 2)) {
		copy = malloc(len);
		if (!copy) {
			rc = sf_errf(err, errlen, SF_ENOMEM, "out of memory");
			goto out;
		}
		memcpy(copy, buf, len);
		copy[18] = copy[19] = 1;
		buf = copy;
	}
	rc = open_image(buf, len, &b, &db, err, errlen);
	if (rc != 0)
		goto out;
	rc = read_build_meta(db, m, err, errlen);
	if (rc != 0)
		goto out;
	rc = read_shards(db, m, err, errlen);
	if (rc != 0)
		goto out;
	*out = m;
	m = NULL;
out:
	if (rc != 0)
		one_line(err, errlen);
	sqlite3_close(db);
	free(copy);
	manifest_free(m);
	return rc;
}

const struct manifest_shard *manifest_shard(const struct manifest *m,
					    uint32_t db_id)
{
	size_t lo = 0, hi;

	if (!m || db_id >= m->num_dbs)
		return NULL;
	hi = m->n_shards;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (m->shards[mid].db_id == db_id)
			return &m->shards[mid];
		if (m->shards[mid].db_id < db_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Rebasing (FORMAT.md 8)                                              */
/* ------------------------------------------------------------------ */

static size_t trim_slashes(const char *s)
{
	size_t n = strlen(s);

	while (n > 0 && s[n - 1] == '/')
		n--;
	return n;
}

char *url_rebase(const char *url, const char *from, const char *to)
{
	size_t fl, tl, rest;
	char *r;

	if (!url)
		return NULL;
	if (!from || !to)
		return strdup(url);
	fl = trim_slashes(from);
	tl = trim_slashes(to);
	/* A path prefix: "s3://b/p" covers "s3://b/p/x", not "s3://b/px". */
	if (fl == 0 || strncmp(url, from, fl) != 0 ||
	    (url[fl] != '\0' && url[fl] != '/'))
		return strdup(url);
	rest = strlen(url + fl);
	r = malloc(tl + rest + 1);
	if (!r)
		return NULL;
	memcpy(r, to, tl);
	memcpy(r + tl, url + fl, rest + 1);
	return r;
}

int manifest_rebase(struct manifest *m, const char *prefix)
{
	char **urls;
	size_t i;

	if (!m || !prefix)
		return SF_EINVAL;
	/* All or nothing: build every new URL before replacing any. */
	urls = calloc(m->n_shards ? m->n_shards : 1, sizeof(char *));
	if (!urls)
		return SF_ENOMEM;
	for (i = 0; i < m->n_shards; i++) {
		urls[i] = url_rebase(m->shards[i].db_url, m->s3_prefix, prefix);
		if (!urls[i]) {
			while (i-- > 0)
				free(urls[i]);
			free(urls);
			return SF_ENOMEM;
		}
	}
	for (i = 0; i < m->n_shards; i++) {
		free(m->shards[i].db_url);
		m->shards[i].db_url = urls[i];
	}
	free(urls);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Routing (FORMAT.md 4)                                               */
/* ------------------------------------------------------------------ */

/* Compares a token (bytes, may hold NUL) with a NUL-terminated value, in
 * the order strcmp() sorts values. */
static int cmp_token(const uint8_t *t, size_t tl, const char *v)
{
	size_t vl = strlen(v);
	int c = memcmp(t, v, tl < vl ? tl : vl);

	if (c != 0)
		return c;
	return (tl > vl) - (tl < vl);
}

/* Binary search of a token among the routing values: 0 or SF_NOTFOUND. */
static int route_token_bytes(const struct manifest *m, const uint8_t *t,
			     size_t tl, uint32_t *db_id)
{
	size_t lo = 0, hi = m->n_routing_values;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint32_t idx = m->routing_sorted[mid];
		int c = cmp_token(t, tl, m->routing_values[idx]);
		if (c == 0) {
			*db_id = idx;
			return 0;
		}
		if (c > 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return SF_NOTFOUND;
}

static int route_categorical(const struct manifest *m,
			     const struct sf_key *key, uint32_t *db_id)
{
	char num[32];
	const uint8_t *t;
	size_t tl;

	if (key->type == SF_KEY_INT) {
		if (!m->routing_values_are_ints)
			return SF_NOTFOUND;
		if (key->negative)
			snprintf(num, sizeof(num), "%" PRId64, (int64_t)key->u);
		else
			snprintf(num, sizeof(num), "%" PRIu64, key->u);
		t = (const uint8_t *)num;
		tl = strlen(num);
	} else {
		if (m->routing_values_are_ints)
			return SF_NOTFOUND;
		t = key->data ? key->data : (const uint8_t *)"";
		tl = key->len;
	}
	return route_token_bytes(m, t, tl, db_id);
}

int manifest_route(const struct manifest *m, const struct sf_key *key,
		   uint32_t *db_id, char *err, size_t errlen)
{
	int rc;

	if (!m || !key || !db_id)
		return sf_errf(err, errlen, SF_EINVAL, "no manifest or key");
	rc = route_check_key(m->key_encoding, key, err, errlen);
	if (rc != 0)
		return rc;
	if (m->strategy == MANIFEST_CEL) {
		/* An explicit token compares as text (integer routing
		 * values are kept as their decimal text). */
		if (key->token)
			return route_token_bytes(m, (const uint8_t *)key->token,
						 strlen(key->token), db_id);
		if (!m->cel_key_is_token)
			return sf_errf(err, errlen, SF_EINVAL,
				       "this snapshot routes keys by the CEL expression \"%.64s\": give a routing token",
				       m->cel_expr);
		return route_categorical(m, key, db_id);
	}
	if (key->type == SF_KEY_INT && !key->negative && key->u > INT64_MAX)
		return sf_errf(err, errlen, SF_EKEY,
			       "key %" PRIu64 " cannot be routed: shardyfusion hashes integers in [-2^63, 2^63-1] only",
			       key->u);
	*db_id = (uint32_t)(sf_key_hash(key) % m->num_dbs);
	return 0;
}
