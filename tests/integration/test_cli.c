/*
 * test_cli.c -- the `shardyfs` binary end to end: `build` from TSV and
 * JSON lines into file:// and into moto S3, for every key encoding and
 * num_dbs 1, 5, 8 and 32 (so with empty shards), with values over 64 KiB,
 * binary values, and keys with unicode, '/', '%', a leading '-', NUL and
 * 0xff; then EVERY key read back with `get` (hex keys, several at once),
 * `get` of single text keys (exact bytes, no newline) and `multiget`
 * (jsonl, hex values); `shards`/`info` against what the keys route to;
 * --strict, keys that do not fit the encoding (exit 2, never "not
 * found"), a prefix with no _CURRENT, history with --offset/--ref, health
 * and a corrupt shard.
 *
 * The real-fixture reads are in test_cli_fixtures.c.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sf_test.h"
#include "shardyfs.h"

TestSuite(cli, .timeout = 600);

/* ---- helpers ---------------------------------------------------- */

static char *hex(const void *p, size_t n)
{
	const uint8_t *s = p;
	char *o = malloc(2 * n + 1);
	for (size_t i = 0; i < n; i++)
		sprintf(o + 2 * i, "%02x", s[i]);
	o[2 * n] = 0;
	return o;
}

static char *b64(const void *p, size_t n)
{
	static const char t[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	const uint8_t *s = p;
	char *o = malloc((n + 2) / 3 * 4 + 1), *w = o;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		if (i + 2 < n)
			v |= s[i + 2];
		*w++ = t[v >> 18];
		*w++ = t[(v >> 12) & 63];
		*w++ = i + 1 < n ? t[(v >> 6) & 63] : '=';
		*w++ = i + 2 < n ? t[v & 63] : '=';
	}
	*w = 0;
	return o;
}

/* The environment and prefix of one place to build into. */
struct place {
	char *env;    /* "" or the S3 environment assignments */
	char *prefix; /* file:///... or s3://bucket/... */
	char *dir;    /* a private local dir (temp files, inputs) */
	char *bucket;
};

static void place_init(struct place *pl, int s3)
{
	memset(pl, 0, sizeof(*pl));
	pl->dir = sft_tmpdir();
	if (s3) {
		struct sft_s3 conn;
		sft_s3_env(&conn);
		pl->bucket = sft_unique_bucket();
		sft_s3_mkbucket(&conn, pl->bucket);
		pl->env = sft_s3_cli_env(&conn);
		cr_assert(asprintf(&pl->prefix, "s3://%s/snaps/one", pl->bucket) > 0);
	} else {
		pl->env = strdup("");
		cr_assert(asprintf(&pl->prefix, "file://%s/snap", pl->dir) > 0);
	}
}

static void place_fini(struct place *pl)
{
	sft_rmrf(pl->dir);
	free(pl->dir);
	free(pl->env);
	free(pl->prefix);
	free(pl->bucket);
}

/* Runs `ENV shardyfs ARGS`; returns the exit code. */
static int cli(const struct place *pl, char **out, size_t *outlen,
	       char **err, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int cli(const struct place *pl, char **out, size_t *outlen,
	       char **err, const char *fmt, ...)
{
	va_list ap;
	char *args = NULL, *cmd = NULL;
	int rc;

	va_start(ap, fmt);
	cr_assert(vasprintf(&args, fmt, ap) >= 0);
	va_end(ap);
	cr_assert(asprintf(&cmd, "%s %s %s", pl->env, sft_cli(), args) > 0);
	rc = sft_run(cmd, out, outlen, err);
	free(args);
	free(cmd);
	return rc;
}

/* One row of a generated data set. */
struct kv {
	struct sf_key key; /* points into k */
	uint8_t k[64];
	size_t klen;
	uint64_t ival;
	char *user;  /* the key as text for the CLI, or NULL (NUL, 0xff) */
	char *khex;  /* the key for --key-hex */
	uint8_t *v;
	size_t vlen;
};

static void put_be(char *out, uint64_t v, int width)
{
	uint8_t b[8];
	for (int i = 0; i < width; i++)
		b[i] = (uint8_t)(v >> (8 * (width - 1 - i)));
	char *h = hex(b, (size_t)width);
	strcpy(out, h);
	free(h);
}

static void set_value(struct kv *r, size_t i)
{
	if (i == 3) { /* over 64 KiB, binary */
		r->vlen = 70 * 1024 + 17;
		r->v = malloc(r->vlen);
		for (size_t j = 0; j < r->vlen; j++)
			r->v[j] = (uint8_t)(j * 7 + i);
	} else if (i == 4) { /* empty */
		r->vlen = 0;
		r->v = malloc(1);
	} else if (i % 5 == 0) { /* binary with NUL, newline and 0xff */
		static const uint8_t bin[] = {0, '\n', 0xff, 'x', 0, '\t', 0x80};
		r->vlen = sizeof(bin);
		r->v = malloc(r->vlen);
		memcpy(r->v, bin, r->vlen);
	} else {
		r->v = (uint8_t *)NULL;
		cr_assert(asprintf((char **)&r->v, "value %zu \xc3\xa9 / %%", i) > 0);
		r->vlen = strlen((char *)r->v);
	}
}

static struct kv *dataset(enum sf_key_encoding enc, size_t *n)
{
	static const char *const texts[] = {
		"a", "h\xc3\xa9llo", "\xf0\x9f\x94\x91", "50%", "a/b/c",
		"with space", "", ".dot", "-dash", "%2F", "x'y\"z", "\xe2\x82\xac",
	};
	static const uint8_t raws[][6] = {
		{0}, {0, 0}, {0xff, 0}, {'a', 0, 'b'}, {'/', '%'}, {0xf4, 0x8f, 0xbf, 0xbf},
		{0xc3, 0xa9}, {0x7f}, {0xff}, {0xfe, 0xff, 0},
	};
	static const size_t rawlen[] = {1, 2, 2, 3, 2, 4, 2, 1, 1, 3};
	const size_t N = 44;
	struct kv *a = calloc(N, sizeof(*a));

	for (size_t i = 0; i < N; i++) {
		struct kv *r = &a[i];
		r->khex = malloc(2 * sizeof(r->k) + 1);
		if (enc == SF_ENC_U64BE || enc == SF_ENC_U32BE) {
			static const uint64_t sp64[] = {0, 1, 255, 256,
				4294967296ull, 4611686018427387904ull,
				9223372036854775806ull, 9223372036854775807ull};
			static const uint64_t sp32[] = {0, 1, 255, 256, 65536,
				2147483648u, 4294967294u, 4294967295u};
			uint64_t v = i < 8 ? (enc == SF_ENC_U64BE ? sp64[i] : sp32[i])
					   : (uint64_t)i * 7919u + 3;
			r->ival = v;
			r->key = sf_key_uint(v);
			cr_assert(asprintf(&r->user, "%llu", (unsigned long long)v) > 0);
			put_be(r->khex, v, enc == SF_ENC_U64BE ? 8 : 4);
		} else if (enc == SF_ENC_UTF8) {
			char buf[64];
			if (i < sizeof(texts) / sizeof(texts[0]))
				snprintf(buf, sizeof(buf), "%s", texts[i]);
			else
				snprintf(buf, sizeof(buf), "item/%03zu-\xc3\xbc%%", i);
			r->klen = strlen(buf);
			memcpy(r->k, buf, r->klen);
			r->user = strdup(buf);
			r->key = sf_key_text((const char *)r->k, r->klen);
			char *h = hex(r->k, r->klen);
			strcpy(r->khex, h);
			free(h);
		} else {
			if (i < sizeof(rawlen) / sizeof(rawlen[0])) {
				r->klen = rawlen[i];
				memcpy(r->k, raws[i], r->klen);
			} else {
				r->klen = 5;
				for (size_t j = 0; j < 5; j++)
					r->k[j] = (uint8_t)(i * 31 + j * 97);
			}
			int printable = r->klen > 0;
			for (size_t j = 0; j < r->klen; j++)
				if (r->k[j] < 0x20 || r->k[j] >= 0x7f)
					printable = 0;
			if (printable)
				r->user = strndup((const char *)r->k, r->klen);
			r->key = sf_key_bytes(r->k, r->klen);
			char *h = hex(r->k, r->klen);
			strcpy(r->khex, h);
			free(h);
		}
		set_value(r, i);
	}
	*n = N;
	return a;
}

static void dataset_free(struct kv *a, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(a[i].user);
		free(a[i].khex);
		free(a[i].v);
	}
	free(a);
}

/* Writes the input file for `build`; returns the extra build options. */
static const char *write_input(const char *path, enum sf_key_encoding enc,
			       const struct kv *a, size_t n, int jsonl)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	for (size_t i = 0; i < n; i++) {
		const struct kv *r = &a[i];
		if (!jsonl) {
			/* TSV: hex values; keys as text, hex for raw. */
			char *vh = hex(r->v, r->vlen);
			fprintf(f, "%s\t%s\n",
				enc == SF_ENC_RAW ? r->khex : r->user, vh);
			free(vh);
			continue;
		}
		json_t *o = json_object(), *k, *v;
		if (enc == SF_ENC_RAW)
			k = json_pack("{s:s}", "hex", r->khex);
		else if (enc == SF_ENC_UTF8)
			k = json_stringn((const char *)r->k, r->klen);
		else if (r->ival % 2)
			k = json_integer((json_int_t)r->ival);
		else
			k = json_string(r->user); /* decimal text works too */
		/* Text values as JSON strings, anything else as base64. */
		v = r->vlen && !memchr(r->v, 0, r->vlen) ?
			    json_stringn((const char *)r->v, r->vlen) : NULL;
		if (!v) {
			char *b = b64(r->v, r->vlen);
			v = json_pack("{s:s}", "base64", b);
			free(b);
		}
		cr_assert_not_null(k);
		json_object_set_new(o, "key", k);
		json_object_set_new(o, "value", v);
		char *line = json_dumps(o, JSON_COMPACT);
		fprintf(f, "%s\n", line);
		free(line);
		json_decref(o);
	}
	cr_assert_eq(fclose(f), 0);
	if (jsonl)
		return "--format jsonl";
	return enc == SF_ENC_RAW ? "--format tsv --key-format hex --value-format hex"
				 : "--format tsv --value-format hex";
}

/* Builds the data set at pl->prefix, then reads every key back. */
static void roundtrip(const struct place *pl, enum sf_key_encoding enc,
		      uint32_t num_dbs, int jsonl)
{
	size_t n, outlen = 0;
	struct kv *a = dataset(enc, &n);
	char *in = NULL, *out = NULL, *err = NULL, *prefix = NULL;
	int rc;

	/* A prefix per num_dbs, so each build is a snapshot of its own. */
	cr_assert(asprintf(&prefix, "%s/n%u", pl->prefix, num_dbs) > 0);
	cr_assert(asprintf(&in, "%s/in-%u.txt", pl->dir, num_dbs) > 0);
	const char *fmt = write_input(in, enc, a, n, jsonl);
	rc = cli(pl, &out, &outlen, &err,
		 "build %s --input %s %s --num-dbs %u --key-encoding %s "
		 "--tmp-dir %s",
		 prefix, in, fmt, num_dbs, sf_encoding_name(enc), pl->dir);
	cr_assert_eq(rc, 0, "build (%s, %u dbs, %s): %s", sf_encoding_name(enc),
		     num_dbs, jsonl ? "jsonl" : "tsv", err);
	cr_assert(strstr(out, "/manifests/") != NULL, "prints the manifest: %s",
		  out);
	free(out);
	free(err);

	/* get: every key at once, as hex; each value followed by '\n'. */
	size_t cap = 64, len = 0, wlen = 0;
	char *args = malloc(cap);
	args[0] = 0;
	for (size_t i = 0; i < n; i++) {
		size_t need = strlen(a[i].khex) + 4;
		if (len + need >= cap) {
			cap = (len + need) * 2;
			args = realloc(args, cap);
		}
		/* quoted: the empty key is an empty argument */
		len += (size_t)sprintf(args + len, " '%s'", a[i].khex);
		wlen += a[i].vlen + 1;
	}
	uint8_t *want = malloc(wlen), *w = want;
	for (size_t i = 0; i < n; i++) {
		memcpy(w, a[i].v, a[i].vlen);
		w += a[i].vlen;
		*w++ = '\n';
	}
	rc = cli(pl, &out, &outlen, &err, "get %s --key-hex --strict %s", prefix,
		 args);
	cr_assert_eq(rc, 0, "get: %s", err);
	cr_assert_eq(outlen, wlen, "get: %zu bytes, want %zu", outlen, wlen);
	cr_assert(memcmp(out, want, wlen) == 0, "get: bytes differ");
	free(out);
	free(err);
	free(want);
	free(args);

	/* get of single keys given as text: the exact bytes, no newline. */
	for (size_t i = 0; i < n && i < 12; i++) {
		if (!a[i].user)
			continue;
		char *q = sft_shq(a[i].user);
		rc = cli(pl, &out, &outlen, &err, "get %s -- %s", prefix, q);
		cr_assert_eq(rc, 0, "get %s: %s", a[i].user, err);
		cr_assert_eq(outlen, a[i].vlen, "get %s: length", a[i].user);
		cr_assert(a[i].vlen == 0 || memcmp(out, a[i].v, a[i].vlen) == 0,
			  "get %s: bytes", a[i].user);
		free(q);
		free(out);
		free(err);
	}

	/* multiget: every key from stdin (hex), values as hex, jsonl. */
	char *kf = NULL;
	cr_assert(asprintf(&kf, "%s/keys-%u.txt", pl->dir, num_dbs) > 0);
	FILE *f = fopen(kf, "w");
	for (size_t i = 0; i < n; i++)
		fprintf(f, "%s\n", a[i].khex);
	fclose(f);
	rc = cli(pl, &out, &outlen, &err,
		 "multiget %s --key-hex --output jsonl --value-encoding hex "
		 "--strict < %s",
		 prefix, kf);
	cr_assert_eq(rc, 0, "multiget: %s", err);
	char *line = out;
	for (size_t i = 0; i < n; i++) {
		char *nl = strchr(line, '\n');
		cr_assert_not_null(nl, "multiget: %zu lines, want %zu", i, n);
		*nl = 0;
		json_error_t je;
		json_t *o = json_loads(line, 0, &je);
		cr_assert_not_null(o, "multiget line %zu: %s", i, je.text);
		cr_assert_str_eq(json_string_value(json_object_get(o, "key")),
				 a[i].khex);
		char *vh = hex(a[i].v, a[i].vlen);
		const char *got = json_string_value(json_object_get(o, "value"));
		cr_assert_not_null(got, "multiget: %s not found", a[i].khex);
		cr_assert_str_eq(got, vh, "multiget value of %s", a[i].khex);
		free(vh);
		json_decref(o);
		line = nl + 1;
	}
	cr_assert_eq(*line, 0, "multiget: extra output");
	free(out);
	free(err);
	free(kf);

	/* shards: every db id, the empty ones exactly where no key routes. */
	rc = cli(pl, &out, &outlen, &err, "shards %s --json", prefix);
	cr_assert_eq(rc, 0, "shards: %s", err);
	json_t *arr = json_loads(out, JSON_ALLOW_NUL, NULL);
	cr_assert(json_is_array(arr), "shards --json: %s", out);
	cr_assert_eq(json_array_size(arr), num_dbs);
	uint64_t *cnt = calloc(num_dbs, sizeof(*cnt));
	for (size_t i = 0; i < n; i++)
		cnt[sf_key_hash(&a[i].key) % num_dbs]++;
	for (uint32_t d = 0; d < num_dbs; d++) {
		json_t *s = json_array_get(arr, d);
		cr_assert_eq(json_integer_value(json_object_get(s, "db_id")), d);
		cr_assert_eq(json_is_true(json_object_get(s, "empty")), cnt[d] == 0,
			     "db %u", d);
		cr_assert_eq((uint64_t)json_integer_value(
				     json_object_get(s, "row_count")),
			     cnt[d], "db %u", d);
	}
	free(cnt);
	json_decref(arr);
	free(out);
	free(err);

	/* info: totals. */
	rc = cli(pl, &out, &outlen, &err, "info %s --json", prefix);
	cr_assert_eq(rc, 0, "info: %s", err);
	json_t *info = json_loads(out, 0, NULL);
	cr_assert_not_null(info, "info --json: %s", out);
	cr_assert_eq(json_integer_value(json_object_get(info, "num_dbs")), num_dbs);
	cr_assert_eq(json_integer_value(json_object_get(info, "total_rows")),
		     (json_int_t)n);
	cr_assert_str_eq(json_string_value(json_object_get(info, "key_encoding")),
			 sf_encoding_name(enc));
	json_decref(info);
	free(out);
	free(err);

	/* route agrees with the routing function. */
	rc = cli(pl, &out, &outlen, &err, "route %s --key-hex %s", prefix,
		 a[n - 1].khex);
	cr_assert_eq(rc, 0, "route: %s", err);
	cr_assert_eq(strtoul(out, NULL, 10),
		     sf_key_hash(&a[n - 1].key) % num_dbs);
	free(out);
	free(err);

	/* u64be keys above 2^63-1 cannot be routed: an error, never "not
	 * found", and the builder refuses them too. */
	if (enc == SF_ENC_U64BE) {
		rc = cli(pl, &out, &outlen, &err, "get %s 9223372036854775808",
			 prefix);
		cr_assert_eq(rc, 2, "get 2^63: exit %d", rc);
		cr_assert(strstr(err, "not found") == NULL, "%s", err);
		free(out);
		free(err);
		rc = cli(pl, &out, &outlen, &err,
			 "build %s/big --key-encoding u64be --tmp-dir %s <<'EOF'\n"
			 "18446744073709551615\tv\nEOF", prefix, pl->dir);
		cr_assert_eq(rc, 2, "build 2^64-1: exit %d", rc);
		free(out);
		free(err);
	}

	dataset_free(a, n);
	free(in);
	free(prefix);
}

static void matrix(enum sf_key_encoding enc, int s3)
{
	static const uint32_t dbs[] = {1, 5, 8, 32};
	struct place pl;

	place_init(&pl, s3);
	for (size_t i = 0; i < 4; i++)
		roundtrip(&pl, enc, dbs[i], (int)(i % 2));
	place_fini(&pl);
}

/* ---- build + read-back matrix --------------------------------------- */

Test(cli, builds_and_reads_back_u64be_on_file) { matrix(SF_ENC_U64BE, 0); }
Test(cli, builds_and_reads_back_u32be_on_file) { matrix(SF_ENC_U32BE, 0); }
Test(cli, builds_and_reads_back_utf8_on_file) { matrix(SF_ENC_UTF8, 0); }
Test(cli, builds_and_reads_back_raw_on_file) { matrix(SF_ENC_RAW, 0); }
Test(cli, builds_and_reads_back_u64be_on_s3) { matrix(SF_ENC_U64BE, 1); }
Test(cli, builds_and_reads_back_u32be_on_s3) { matrix(SF_ENC_U32BE, 1); }
Test(cli, builds_and_reads_back_utf8_on_s3) { matrix(SF_ENC_UTF8, 1); }
Test(cli, builds_and_reads_back_raw_on_s3) { matrix(SF_ENC_RAW, 1); }

/* ---- errors and exit codes ------------------------------------------ */

static void build_small(const struct place *pl, const char *enc,
			const char *tsv, const char *extra)
{
	char *in = NULL, *err = NULL;
	cr_assert(asprintf(&in, "%s/small.tsv", pl->dir) > 0);
	cr_assert_eq(sft_write_file(in, tsv, strlen(tsv)), 0);
	int rc = cli(pl, NULL, NULL, &err,
		     "build %s --input %s --key-encoding %s --num-dbs 3 %s",
		     pl->prefix, in, enc, extra ? extra : "");
	cr_assert_eq(rc, 0, "build: %s", err);
	free(err);
	free(in);
}

static void strict_and_bad_keys(int s3)
{
	struct place pl;
	char *out = NULL, *err = NULL;
	int rc;

	place_init(&pl, s3);
	build_small(&pl, "u32be", "1\tone\n2\ttwo\n4294967295\tmax\n", NULL);

	/* Missing key: message on stderr; exit 0, or 1 with --strict. */
	rc = cli(&pl, &out, NULL, &err, "get %s 1 3", pl.prefix);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_eq(out, "one\n");
	cr_assert(strstr(err, "not found: 3") != NULL, "%s", err);
	free(out);
	free(err);
	rc = cli(&pl, &out, NULL, &err, "get --strict %s 3", pl.prefix);
	cr_assert_eq(rc, 1, "%s", err);
	cr_assert_str_eq(out, "");
	cr_assert(strstr(err, "not found: 3") != NULL, "%s", err);
	free(out);
	free(err);
	rc = cli(&pl, &out, NULL, &err, "multiget %s 1 3 --strict -o jsonl",
		 pl.prefix);
	cr_assert_eq(rc, 1, "%s", err);
	cr_assert_str_eq(out, "{\"key\": \"1\", \"value\": \"one\"}\n"
			      "{\"key\": \"3\", \"value\": null}\n");
	free(out);
	free(err);
	rc = cli(&pl, &out, NULL, &err, "multiget %s 1 3 2", pl.prefix);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_eq(out, "{\"1\": \"one\", \"3\": null, \"2\": \"two\"}\n");
	free(out);
	free(err);

	rc = cli(&pl, &out, NULL, &err, "multiget %s 1 2 3 -o text", pl.prefix);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_eq(out, "1\tone\n2\ttwo\n");
	cr_assert(strstr(err, "not found: 3") != NULL, "%s", err);
	free(out);
	free(err);
	char *cmd = NULL;
	cr_assert(asprintf(&cmd, "printf '4294967295\\n1\\n' | %s %s multiget %s "
				 "-o text --value-encoding base64",
			   pl.env, sft_cli(), pl.prefix) > 0);
	rc = sft_run(cmd, &out, NULL, &err);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_eq(out, "4294967295\tbWF4\n1\tb25l\n");
	free(cmd);
	free(out);
	free(err);
	rc = cli(&pl, &out, NULL, &err, "multiget %s 1 -o table", pl.prefix);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strstr(out, "KEY") && strstr(out, "one"), "%s", out);
	free(out);
	free(err);

	/* TSV input with base64 values, from standard input. */
	char *p2 = NULL;
	cr_assert(asprintf(&p2, "%s/b64", pl.prefix) > 0);
	cr_assert(asprintf(&cmd, "printf '7\\tAP8K\\n' | %s %s build %s "
				 "--input - --key-encoding u32be "
				 "--value-format base64",
			   pl.env, sft_cli(), p2) > 0);
	rc = sft_run(cmd, &out, NULL, &err);
	cr_assert_eq(rc, 0, "%s", err);
	free(cmd);
	free(out);
	free(err);
	size_t olen = 0;
	rc = cli(&pl, &out, &olen, &err, "get %s 7", p2);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_eq(olen, 3);
	cr_assert(memcmp(out, "\x00\xff\n", 3) == 0);
	free(out);
	free(err);
	free(p2);

	/* Keys that do not fit the encoding: exit 2, never "not found". */
	static const char *const bad[] = {"abc", "1099511627776", "-1",
					  "4294967296", "1.5", "''"};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		rc = cli(&pl, &out, NULL, &err, "get %s -- %s", pl.prefix, bad[i]);
		cr_assert_eq(rc, 2, "get %s: exit %d", bad[i], rc);
		cr_assert(strstr(err, "not found") == NULL, "%s", err);
		cr_assert(err[0], "a message for %s", bad[i]);
		free(out);
		free(err);
		rc = cli(&pl, &out, NULL, &err, "multiget %s -- 1 %s", pl.prefix,
			 bad[i]);
		cr_assert_eq(rc, 2, "multiget %s: exit %d", bad[i], rc);
		cr_assert(strstr(err, "not found") == NULL, "%s", err);
		free(out);
		free(err);
		rc = cli(&pl, &out, NULL, &err, "route %s -- %s", pl.prefix,
			 bad[i]);
		cr_assert_eq(rc, 2, "route %s: exit %d", bad[i], rc);
		free(out);
		free(err);
	}

	/* Build input errors exit 2 and publish nothing new. */
	char *in = NULL;
	cr_assert(asprintf(&in, "%s/bad.tsv", pl.dir) > 0);
	cr_assert_eq(sft_write_file(in, "1\tok\n99999999999\ttoo big\n", 25), 0);
	rc = cli(&pl, &out, NULL, &err,
		 "build %s/other --input %s --key-encoding u32be", pl.prefix, in);
	cr_assert_eq(rc, 2);
	cr_assert(strstr(err, "line 2") != NULL, "%s", err);
	free(out);
	free(err);
	rc = cli(&pl, &out, NULL, &err, "info %s/other", pl.prefix);
	cr_assert_eq(rc, 2);
	cr_assert(strstr(err, "no snapshot published at") != NULL, "%s", err);
	free(out);
	free(err);
	free(in);
	place_fini(&pl);
}

Test(cli, strict_and_bad_keys_on_file) { strict_and_bad_keys(0); }
Test(cli, strict_and_bad_keys_on_s3) { strict_and_bad_keys(1); }

static void no_snapshot(int s3)
{
	struct place pl;
	static const char *const cmds[][2] = {
		{"get", " 1"}, {"multiget", " 1"}, {"info", ""}, {"shards", ""},
		{"route", " 1"}, {"history", ""}, {"health", ""},
	};

	place_init(&pl, s3);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		char *out = NULL, *err = NULL;
		int rc = cli(&pl, &out, NULL, &err, "%s %s%s", cmds[i][0],
			     pl.prefix, cmds[i][1]);
		cr_assert_eq(rc, 2, "%s: exit %d", cmds[i][0], rc);
		cr_assert(strstr(err, "no snapshot published at") != NULL,
			  "%s: %s", cmds[i][0], err);
		cr_assert(strstr(err, pl.prefix) != NULL, "%s", err);
		free(out);
		free(err);
	}
	place_fini(&pl);
}

Test(cli, says_no_snapshot_published_on_file) { no_snapshot(0); }
Test(cli, says_no_snapshot_published_on_s3) { no_snapshot(1); }

Test(cli, usage_errors_exit_2_and_help_exits_0)
{
	struct place pl;
	char *out = NULL, *err = NULL;

	place_init(&pl, 0);
	cr_assert_eq(cli(&pl, &out, NULL, &err, "--version"), 0);
	cr_assert(strncmp(out, "shardyfs ", 9) == 0, "%s", out);
	free(out);
	free(err);
	cr_assert_eq(cli(&pl, &out, NULL, &err, "--help"), 0);
	cr_assert(strstr(out, "multiget") != NULL);
	free(out);
	free(err);
	cr_assert_eq(cli(&pl, &out, NULL, &err, "get --help"), 0);
	cr_assert(strstr(out, "--strict") != NULL);
	cr_assert(strstr(out, "--endpoint-url") != NULL);
	free(out);
	free(err);
	cr_assert_eq(cli(&pl, &out, NULL, &err, "frobnicate"), 2);
	free(out);
	free(err);
	cr_assert_eq(cli(&pl, &out, NULL, &err, "get"), 2);
	free(out);
	free(err);
	cr_assert_eq(cli(&pl, &out, NULL, &err, "get %s 1 --no-such-option",
			 pl.prefix), 2);
	free(out);
	free(err);
	cr_assert_eq(cli(&pl, &out, NULL, &err, "get %s 1 --access-mode fast",
			 pl.prefix), 2);
	cr_assert(strstr(err, "access-mode") != NULL, "%s", err);
	free(out);
	free(err);
	cr_assert_eq(cli(&pl, &out, NULL, &err, "build %s --num-dbs 0 </dev/null",
			 pl.prefix), 2);
	free(out);
	free(err);
	place_fini(&pl);
}

/* ---- history, pinning, health, corruption --------------------------- */

static void history_and_pinning(int s3)
{
	struct place pl;
	char *out = NULL, *err = NULL;
	int rc;

	place_init(&pl, s3);
	build_small(&pl, "utf8", "k\told\nonly-old\t1\n", "--run-id first");
	build_small(&pl, "utf8", "k\tnew\n", "--run-id second");

	rc = cli(&pl, &out, NULL, &err, "get %s k", pl.prefix);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_eq(out, "new");
	free(out);
	free(err);
	rc = cli(&pl, &out, NULL, &err, "get %s k --offset 1", pl.prefix);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_eq(out, "old");
	free(out);
	free(err);

	rc = cli(&pl, &out, NULL, &err, "history %s", pl.prefix);
	cr_assert_eq(rc, 0, "%s", err);
	char *second = strstr(out, "second"), *first = strstr(out, "first");
	cr_assert(second && first && second < first, "newest first: %s", out);
	cr_assert_eq(out[0], '*', "current marked: %s", out);
	char *nl = strchr(out, '\n');
	cr_assert(nl && nl[1] == ' ', "only one current: %s", out);
	free(out);
	free(err);

	rc = cli(&pl, &out, NULL, &err, "history %s --json", pl.prefix);
	cr_assert_eq(rc, 0, "%s", err);
	json_t *h = json_loads(out, 0, NULL);
	cr_assert_eq(json_array_size(h), 2, "%s", out);
	cr_assert(json_is_true(json_object_get(json_array_get(h, 0), "current")));
	cr_assert_str_eq(json_string_value(json_object_get(json_array_get(h, 1),
							   "run_id")),
			 "first");
	char *old_ref = strdup(json_string_value(
		json_object_get(json_array_get(h, 1), "manifest_ref")));
	json_decref(h);
	free(out);
	free(err);

	rc = cli(&pl, &out, NULL, &err, "get %s only-old --ref %s", pl.prefix,
		 old_ref);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert_str_eq(out, "1");
	free(out);
	free(err);
	rc = cli(&pl, &out, NULL, &err, "get %s only-old --strict", pl.prefix);
	cr_assert_eq(rc, 1, "%s", err);
	free(out);
	free(err);
	rc = cli(&pl, &out, NULL, &err, "info %s --offset 1", pl.prefix);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strstr(out, "first") != NULL, "%s", out);
	free(out);
	free(err);

	/* health: healthy now; degraded with a tiny staleness threshold. */
	rc = cli(&pl, &out, NULL, &err, "health %s", pl.prefix);
	cr_assert_eq(rc, 0, "%s", err);
	cr_assert(strncmp(out, "healthy", 7) == 0, "%s", out);
	free(out);
	free(err);
	rc = cli(&pl, &out, NULL, &err, "health %s --staleness 0.000001",
		 pl.prefix);
	cr_assert_eq(rc, 1, "%s", err);
	cr_assert(strncmp(out, "degraded", 8) == 0, "%s", out);
	free(out);
	free(err);

	free(old_ref);
	place_fini(&pl);
}

Test(cli, history_offset_and_ref_on_file) { history_and_pinning(0); }
Test(cli, history_offset_and_ref_on_s3) { history_and_pinning(1); }

Test(cli, a_corrupt_shard_is_an_error_naming_it)
{
	struct place pl;
	char *out = NULL, *err = NULL, *cmd = NULL, *src = NULL;
	int rc;

	place_init(&pl, 0);
	/* A copy of the sparse fixture with db=00000 overwritten. */
	src = sft_data("shardyfusion/sparse/snapshot");
	cr_assert(asprintf(&cmd,
			   "cp -r '%s' '%s/snap' && for f in '%s'/snap/shards/*/db=00000/attempt=00/shard.db; "
			   "do head -c 8192 /dev/zero | tr '\\0' 'x' > \"$f\"; done",
			   src, pl.dir, pl.dir) > 0);
	cr_assert_eq(sft_run(cmd, NULL, NULL, NULL), 0);
	static const char *const modes[] = {"download", "range"};
	for (int m = 0; m < 2; m++) {
		rc = cli(&pl, &out, NULL, &err,
			 "get %s one --access-mode %s --cache-dir %s/cache%d",
			 pl.prefix, modes[m], pl.dir, m);
		cr_assert_eq(rc, 2, "%s: exit %d (%s)", modes[m], rc, err);
		cr_assert(strstr(err, "not found") == NULL, "%s", err);
		cr_assert(strstr(err, "db=00000") != NULL ||
				  strstr(err, "shard 0") != NULL,
			  "names the shard: %s", err);
		free(out);
		free(err);
		/* Other shards still answer. */
		rc = cli(&pl, &out, NULL, &err,
			 "get %s two --access-mode %s --cache-dir %s/cache%d",
			 pl.prefix, modes[m], pl.dir, m);
		cr_assert_eq(rc, 0, "%s", err);
		free(out);
		free(err);
	}
	free(cmd);
	free(src);
	place_fini(&pl);
}
