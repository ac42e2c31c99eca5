/*
 * cmd_build.c -- `shardyfs build PREFIX`: publishes a snapshot in the
 * shardyfusion layout from TSV or JSON-lines input, through the public
 * builder (sf_builder_*).
 *
 * Input formats:
 *   tsv    one row per line: KEY <TAB> VALUE (the value runs to the end of
 *          the line and may hold more tabs). --key-format and
 *          --value-format say whether a field is text, hex or base64
 *          (keys: text or hex). Empty lines are skipped.
 *   jsonl  one object per line: {"key": K, "value": V}. K is an integer
 *          (integer encodings), a string (decimal text for integer
 *          encodings), or {"hex": "..."}; V is a string (its UTF-8
 *          bytes, or hex/base64 text under --value-format), or
 *          {"hex": "..."} / {"base64": "..."}.
 * Text keys are read as sf_key_from_text() reads them: decimal for
 * u64be/u32be, text for utf8, bytes for raw. Lines are capped at
 * CLI_BUILD_MAX_LINE bytes.
 *
 * On success the manifest URL is printed on stdout.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cli_common.h"

#define CLI_BUILD_MAX_LINE (768u * 1024 * 1024)

enum field_fmt { FMT_TEXT, FMT_HEX, FMT_BASE64 };

struct build_args {
	const char *input;
	int jsonl;
	struct sf_build_options bo;
	enum field_fmt key_fmt, value_fmt;
};

enum {
	OPT_INPUT = 'i',
	OPT_FORMAT = 'f',
	OPT_NUM_DBS = 'n',
	OPT_KEY_ENC = 'e',
	OPT_NO_SIDECAR = CLI_OPT_BASE,
	OPT_RUN_ID,
	OPT_KEY_FORMAT,
	OPT_VALUE_FORMAT,
	OPT_TMP_DIR,
	OPT_KEY_COL,
};

static const struct option build_opts[] = {
	{"input", required_argument, NULL, OPT_INPUT},
	{"format", required_argument, NULL, OPT_FORMAT},
	{"num-dbs", required_argument, NULL, OPT_NUM_DBS},
	{"key-encoding", required_argument, NULL, OPT_KEY_ENC},
	{"no-sidecar", no_argument, NULL, OPT_NO_SIDECAR},
	{"run-id", required_argument, NULL, OPT_RUN_ID},
	{"key-format", required_argument, NULL, OPT_KEY_FORMAT},
	{"value-format", required_argument, NULL, OPT_VALUE_FORMAT},
	{"tmp-dir", required_argument, NULL, OPT_TMP_DIR},
	{"key-col", required_argument, NULL, OPT_KEY_COL},
	{NULL, 0, NULL, 0},
};

static const char build_help[] =
	"  -i, --input FILE|-     rows to publish (default: standard input)\n"
	"  -f, --format tsv|jsonl input format (default tsv)\n"
	"  -n, --num-dbs N        number of shards (default 1)\n"
	"  -e, --key-encoding u64be|u32be|utf8|raw  (default u64be)\n"
	"      --key-format text|hex       how keys are written (default text)\n"
	"      --value-format text|hex|base64  how values are written\n"
	"      --no-sidecar       do not write shard.sidecar files\n"
	"      --run-id ID        run id (default: a random uuid)\n"
	"      --tmp-dir DIR      where temporary shard files go\n"
	"      --key-col NAME     key column name recorded in the manifest\n";

static int parse_fmt(const char *arg, int allow_b64, enum field_fmt *out)
{
	if (!strcmp(arg, "text") || !strcmp(arg, "utf8"))
		*out = FMT_TEXT;
	else if (!strcmp(arg, "hex"))
		*out = FMT_HEX;
	else if (allow_b64 && !strcmp(arg, "base64"))
		*out = FMT_BASE64;
	else
		return -1;
	return 0;
}

static int build_opt(void *ctx, int c, const char *arg)
{
	struct build_args *a = ctx;
	uint64_t v;

	switch (c) {
	case OPT_INPUT:
		a->input = arg;
		return 0;
	case OPT_FORMAT:
		if (!strcmp(arg, "tsv")) {
			a->jsonl = 0;
			return 0;
		}
		if (!strcmp(arg, "jsonl") || !strcmp(arg, "json")) {
			a->jsonl = 1;
			return 0;
		}
		cli_errorf("build: --format must be tsv or jsonl");
		return CLI_ERROR;
	case OPT_NUM_DBS:
		if (cli_parse_u64(arg, &v) || v == 0 || v > UINT32_MAX) {
			cli_errorf("build: bad --num-dbs '%s'", arg);
			return CLI_ERROR;
		}
		a->bo.num_dbs = (uint32_t)v;
		return 0;
	case OPT_KEY_ENC:
		if (sf_encoding_parse(arg, &a->bo.key_encoding)) {
			cli_errorf("build: --key-encoding must be u64be, u32be, "
				   "utf8 or raw");
			return CLI_ERROR;
		}
		return 0;
	case OPT_NO_SIDECAR:
		a->bo.emit_sidecar = 0;
		return 0;
	case OPT_RUN_ID:
		a->bo.run_id = arg;
		return 0;
	case OPT_KEY_FORMAT:
		if (parse_fmt(arg, 0, &a->key_fmt)) {
			cli_errorf("build: --key-format must be text or hex");
			return CLI_ERROR;
		}
		return 0;
	case OPT_VALUE_FORMAT:
		if (parse_fmt(arg, 1, &a->value_fmt)) {
			cli_errorf("build: --value-format must be text, hex or "
				   "base64");
			return CLI_ERROR;
		}
		return 0;
	case OPT_TMP_DIR:
		a->bo.tmp_dir = arg;
		return 0;
	case OPT_KEY_COL:
		a->bo.key_col = arg;
		return 0;
	}
	return CLI_ERROR;
}

/* Decodes a value field; *out is malloc'd when it had to be decoded, else
 * it points into the input. */
static int decode_value(enum field_fmt fmt, const char *s, size_t n,
			const void **val, size_t *vlen, uint8_t **owned)
{
	*owned = NULL;
	if (fmt == FMT_TEXT) {
		*val = s;
		*vlen = n;
		return 0;
	}
	if (fmt == FMT_HEX ? cli_unhex(s, n, owned, vlen) :
			     cli_unbase64(s, n, owned, vlen))
		return -1;
	*val = *owned;
	return 0;
}

static int add_row(struct sf_builder *b, unsigned long lineno,
		   const struct sf_key *key, const void *val, size_t vlen)
{
	char err[512] = "";
	int rc = sf_builder_add(b, key, val, vlen, err, sizeof(err));

	if (rc) {
		cli_errorf("build: line %lu: %s", lineno,
			   err[0] ? err : sf_strerror(rc));
		return CLI_ERROR;
	}
	return 0;
}

static int tsv_row(struct sf_builder *b, const struct build_args *a,
		   unsigned long lineno, char *line, size_t len)
{
	char *tab = memchr(line, '\t', len);
	struct sf_key key;
	uint8_t *kbuf = NULL, *vbuf = NULL;
	const void *val;
	size_t vlen, klen;
	int rc;

	if (!tab) {
		cli_errorf("build: line %lu: no TAB between key and value",
			   lineno);
		return CLI_ERROR;
	}
	klen = (size_t)(tab - line);
	*tab = 0;
	if (cli_key(a->bo.key_encoding, line, klen, a->key_fmt == FMT_HEX,
		    &key, &kbuf)) {
		cli_errorf("build: line %lu: bad key", lineno);
		return CLI_ERROR;
	}
	if (decode_value(a->value_fmt, tab + 1, len - klen - 1, &val, &vlen,
			 &vbuf)) {
		cli_errorf("build: line %lu: bad %s value", lineno,
			   a->value_fmt == FMT_HEX ? "hex" : "base64");
		free(kbuf);
		return CLI_ERROR;
	}
	rc = add_row(b, lineno, &key, val, vlen);
	free(kbuf);
	free(vbuf);
	return rc;
}

static int json_key(const struct build_args *a, unsigned long lineno,
		    json_t *k, struct sf_key *key, uint8_t **kbuf)
{
	enum sf_key_encoding enc = a->bo.key_encoding;
	json_t *h;

	*kbuf = NULL;
	if (json_is_integer(k)) {
		json_int_t v = json_integer_value(k);
		if (enc != SF_ENC_U64BE && enc != SF_ENC_U32BE) {
			cli_errorf("build: line %lu: integer key for a %s "
				   "snapshot", lineno, sf_encoding_name(enc));
			return CLI_ERROR;
		}
		*key = sf_key_int((int64_t)v);
		return 0;
	}
	if (json_is_string(k))
		return cli_key(enc, json_string_value(k), json_string_length(k),
			       a->key_fmt == FMT_HEX, key, kbuf) ?
			       CLI_ERROR : 0;
	h = json_is_object(k) ? json_object_get(k, "hex") : NULL;
	if (h && json_is_string(h))
		return cli_key(enc, json_string_value(h), json_string_length(h),
			       1, key, kbuf) ? CLI_ERROR : 0;
	cli_errorf("build: line %lu: \"key\" must be an integer, a string or "
		   "{\"hex\": ...}", lineno);
	return CLI_ERROR;
}

static int jsonl_row(struct sf_builder *b, const struct build_args *a,
		     unsigned long lineno, const char *line, size_t len)
{
	json_error_t jerr;
	json_t *o, *k, *v, *hx, *bx;
	struct sf_key key;
	uint8_t *kbuf = NULL, *vbuf = NULL;
	const void *val = NULL;
	size_t vlen = 0;
	int rc = CLI_ERROR;

	o = json_loadb(line, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES,
		       &jerr);
	if (!o || !json_is_object(o)) {
		cli_errorf("build: line %lu: %s", lineno,
			   o ? "not a JSON object" : jerr.text);
		goto out;
	}
	k = json_object_get(o, "key");
	v = json_object_get(o, "value");
	if (!k || !v) {
		cli_errorf("build: line %lu: needs \"key\" and \"value\"",
			   lineno);
		goto out;
	}
	if (json_key(a, lineno, k, &key, &kbuf))
		goto out;
	hx = json_is_object(v) ? json_object_get(v, "hex") : NULL;
	bx = json_is_object(v) ? json_object_get(v, "base64") : NULL;
	if (json_is_string(v)) {
		if (decode_value(a->value_fmt, json_string_value(v),
				 json_string_length(v), &val, &vlen, &vbuf)) {
			cli_errorf("build: line %lu: bad value", lineno);
			goto out;
		}
	} else if (json_is_string(hx)) {
		if (decode_value(FMT_HEX, json_string_value(hx),
				 json_string_length(hx), &val, &vlen, &vbuf)) {
			cli_errorf("build: line %lu: bad hex value", lineno);
			goto out;
		}
	} else if (json_is_string(bx)) {
		if (decode_value(FMT_BASE64, json_string_value(bx),
				 json_string_length(bx), &val, &vlen, &vbuf)) {
			cli_errorf("build: line %lu: bad base64 value", lineno);
			goto out;
		}
	} else {
		cli_errorf("build: line %lu: \"value\" must be a string, "
			   "{\"hex\": ...} or {\"base64\": ...}", lineno);
		goto out;
	}
	rc = add_row(b, lineno, &key, val, vlen);
out:
	free(kbuf);
	free(vbuf);
	json_decref(o);
	return rc;
}

static int build_exec(int argc, char **argv)
{
	struct build_args a = {0};
	struct cli_extra extra = {build_opts, build_opt, &a, build_help};
	struct cli_common c;
	struct sf_builder *b = NULL;
	FILE *in = stdin;
	char err[1024] = "", *line = NULL, *ref = NULL;
	size_t cap = 0, len = 0;
	unsigned long lineno = 0, rows = 0;
	int rc, r;

	sf_build_options_init(&a.bo);
	rc = cli_parse(&cmd_build, argc, argv, CLI_CONN, &extra, &c);
	if (rc)
		return rc == CLI_DONE ? CLI_OK : rc;
	if (c.nargs != 1) {
		cli_errorf("build: expected one PREFIX argument");
		fprintf(stderr, "Usage: shardyfs build %s\n", cmd_build.usage);
		return CLI_ERROR;
	}
	c.prefix = c.args[0];
	if (a.input && strcmp(a.input, "-") != 0) {
		in = fopen(a.input, "rb");
		if (!in) {
			cli_errorf("build: cannot open %s: %s", a.input,
				   strerror(errno));
			return CLI_ERROR;
		}
	}
	rc = sf_builder_open(&b, c.prefix, &c.opt, &a.bo, err, sizeof(err));
	if (rc) {
		cli_report(c.prefix, rc, err);
		rc = CLI_ERROR;
		goto out;
	}
	for (;;) {
		r = cli_read_line(in, &line, &cap, &len, CLI_BUILD_MAX_LINE);
		if (r != 1)
			break;
		lineno++;
		if (len == 0)
			continue;
		rc = a.jsonl ? jsonl_row(b, &a, lineno, line, len) :
			       tsv_row(b, &a, lineno, line, len);
		if (rc)
			goto out;
		rows++;
	}
	if (r < 0) {
		rc = CLI_ERROR;
		goto out;
	}
	rc = sf_builder_publish(b, &ref, err, sizeof(err));
	if (rc) {
		cli_report(c.prefix, rc, err);
		rc = CLI_ERROR;
		goto out;
	}
	printf("%s\n", ref);
	if (c.opt.log_level >= SF_LOG_INFO)
		fprintf(stderr, "shardyfs: published %lu rows in %u shards\n",
			rows, a.bo.num_dbs);
	rc = CLI_OK;
out:
	sf_free(ref);
	sf_builder_free(b);
	free(line);
	if (in && in != stdin)
		fclose(in);
	return rc;
}

const struct sf_cmd cmd_build = {
	.name = "build",
	.usage = "PREFIX [--input FILE|-] [--format tsv|jsonl] [--num-dbs N] "
		 "[--key-encoding ENC] [--no-sidecar] [--run-id ID]",
	.summary = "publish a snapshot from TSV or JSON-lines rows",
	.exec = build_exec,
};
