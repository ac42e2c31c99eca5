/*
 * cmd_multiget.c -- `shardyfs multiget PREFIX [KEY...]`: batch lookups.
 *
 * Keys come from the arguments, or from standard input one per line
 * (split on '\n' only; an empty line is the empty key) when none is given
 * or the only one is "-". They are looked up in batches with
 * sf_snapshot_multi_get() against one pinned snapshot and printed as they
 * complete:
 *
 *   json   {"KEY": VALUE-or-null, ...}   (the default)
 *   jsonl  {"key": KEY, "value": VALUE-or-null} per line
 *   text   KEY <TAB> VALUE per found key ("not found: KEY" on stderr)
 *   table  aligned KEY / VALUE columns for people (long values cut)
 *
 * VALUE is encoded per --value-encoding: utf8 (the default; a value that
 * is not UTF-8 is an error that suggests hex), hex or base64. KEY is
 * printed as given. Any lookup error stops with exit 2 before the batch
 * that failed is printed; --strict exits 1 when a key was not found.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"

#define MG_BATCH 1024
#define MG_MAX_KEY_LINE (16u * 1024 * 1024)
#define MG_TABLE_VALUE 64

enum mg_output { OUT_JSON, OUT_JSONL, OUT_TEXT, OUT_TABLE };
enum mg_venc { VENC_UTF8, VENC_HEX, VENC_BASE64 };

struct mg_args {
	enum mg_output output;
	enum mg_venc venc;
	int strict;
	int key_hex;
};

struct mg_state {
	const struct mg_args *a;
	struct sf_snapshot *s;
	enum sf_key_encoding enc;
	char *text[MG_BATCH];  /* keys as given (owned) */
	size_t tlen[MG_BATCH];
	size_t n;
	size_t printed;        /* entries printed so far (json commas) */
	int missing;
};

enum {
	OPT_OUTPUT = 'o',
	OPT_VENC = 'e',
	OPT_STRICT = 's',
	OPT_KEY_HEX = 'x',
};

static const struct option mg_opts[] = {
	{"output", required_argument, NULL, OPT_OUTPUT},
	{"value-encoding", required_argument, NULL, OPT_VENC},
	{"strict", no_argument, NULL, OPT_STRICT},
	{"key-hex", no_argument, NULL, OPT_KEY_HEX},
	{NULL, 0, NULL, 0},
};

static const char mg_help[] =
	"  -o, --output json|jsonl|text|table  (default json)\n"
	"  -e, --value-encoding utf8|hex|base64  (default utf8)\n"
	"  -s, --strict           exit 1 when a key is not found\n"
	"  -x, --key-hex          keys are given as hex\n";

static int mg_opt(void *ctx, int c, const char *arg)
{
	struct mg_args *a = ctx;

	switch (c) {
	case OPT_OUTPUT:
		if (!strcmp(arg, "json"))
			a->output = OUT_JSON;
		else if (!strcmp(arg, "jsonl"))
			a->output = OUT_JSONL;
		else if (!strcmp(arg, "text"))
			a->output = OUT_TEXT;
		else if (!strcmp(arg, "table"))
			a->output = OUT_TABLE;
		else
			break;
		return 0;
	case OPT_VENC:
		if (!strcmp(arg, "utf8") || !strcmp(arg, "text"))
			a->venc = VENC_UTF8;
		else if (!strcmp(arg, "hex"))
			a->venc = VENC_HEX;
		else if (!strcmp(arg, "base64"))
			a->venc = VENC_BASE64;
		else
			break;
		return 0;
	case OPT_STRICT:
		a->strict = 1;
		return 0;
	case OPT_KEY_HEX:
		a->key_hex = 1;
		return 0;
	}
	cli_errorf("multiget: invalid value '%s' (see --help)", arg ? arg : "");
	return CLI_ERROR;
}

/* A value as text per --value-encoding (malloc'd), or NULL with a message
 * when utf8 was asked for and the value is not UTF-8. */
static char *encode_value(const struct mg_args *a, const char *key,
			  const void *v, size_t n)
{
	char *o;

	if (a->venc == VENC_HEX)
		return cli_hex(v, n);
	if (a->venc == VENC_BASE64)
		return cli_base64(v, n);
	if (!cli_utf8_valid(v, n) || memchr(v, 0, n)) {
		cli_errorf("the value of '%s' is not UTF-8 text; use "
			   "--value-encoding hex or base64", key);
		return NULL;
	}
	o = cli_xmalloc(n + 1);
	memcpy(o, v, n);
	o[n] = 0;
	return o;
}

static json_t *json_text(const char *s, size_t n)
{
	json_t *j = json_stringn(s, n);

	if (!j)
		cli_errorf("key '%.*s' is not UTF-8 text; use --output text",
			   (int)(n > 200 ? 200 : n), s);
	return j;
}

/* Prints one found or missing entry. val == NULL means not found. */
static int print_entry(struct mg_state *st, size_t i, const char *val,
		       int width)
{
	const char *key = st->text[i];
	size_t klen = st->tlen[i];
	json_t *jk = NULL, *jv = NULL;
	char *ks = NULL, *vs = NULL;
	int rc = CLI_ERROR;

	switch (st->a->output) {
	case OUT_TEXT:
		if (!val) {
			fflush(stdout);
			fprintf(stderr, "not found: %s\n", key);
			return 0;
		}
		if (cli_write(key, klen) || cli_write("\t", 1) ||
		    cli_write(val, strlen(val)) || cli_write("\n", 1))
			return CLI_ERROR;
		return 0;
	case OUT_TABLE:
		if (!val) {
			printf("%-*s  (not found)\n", width, key);
		} else if (strlen(val) > MG_TABLE_VALUE) {
			printf("%-*s  %.*s... (%zu chars)\n", width, key,
			       MG_TABLE_VALUE, val, strlen(val));
		} else {
			printf("%-*s  %s\n", width, key, val);
		}
		return 0;
	case OUT_JSON:
	case OUT_JSONL:
		break;
	}
	jk = json_text(key, klen);
	if (!jk)
		goto out;
	jv = val ? json_string(val) : json_null();
	if (!jv) {
		cli_errorf("cannot encode the value of '%s' as JSON", key);
		goto out;
	}
	if (st->a->output == OUT_JSONL) {
		json_t *o = json_object();
		json_object_set(o, "key", jk);
		json_object_set(o, "value", jv);
		rc = cli_print_json(o, 0);
		goto out;
	}
	ks = json_dumps(jk, JSON_ENCODE_ANY);
	vs = json_dumps(jv, JSON_ENCODE_ANY);
	if (!ks || !vs) {
		cli_errorf("out of memory");
		goto out;
	}
	printf("%s%s: %s", st->printed ? ", " : "", ks, vs);
	rc = 0;
out:
	st->printed++;
	free(ks);
	free(vs);
	json_decref(jk);
	json_decref(jv);
	return rc;
}

/* Looks up the batch in st and prints it; frees the key texts. */
static int run_batch(struct mg_state *st)
{
	struct sf_key keys[MG_BATCH];
	uint8_t *bufs[MG_BATCH] = {0};
	struct sf_result *res = NULL;
	char **vals = NULL;
	char err[512] = "";
	int rc = CLI_ERROR, width = 0;
	size_t i;

	if (st->n == 0)
		return 0;
	for (i = 0; i < st->n; i++)
		if (cli_key(st->enc, st->text[i], st->tlen[i], st->a->key_hex,
			    &keys[i], &bufs[i]))
			goto out;
	res = calloc(st->n, sizeof(*res));
	vals = calloc(st->n, sizeof(*vals));
	if (!res || !vals) {
		cli_errorf("out of memory");
		goto out;
	}
	if (sf_snapshot_multi_get(st->s, keys, st->n, res, err, sizeof(err)) <
	    0) {
		for (i = 0; i < st->n; i++) {
			if (res[i].status < 0) {
				cli_report(st->text[i], res[i].status, err);
				goto out;
			}
		}
		cli_report("multiget", SF_EIO, err);
		goto out;
	}
	for (i = 0; i < st->n; i++) {
		if (res[i].status == 0) {
			vals[i] = encode_value(st->a, st->text[i],
					       res[i].value, res[i].len);
			if (!vals[i])
				goto out;
		} else if (res[i].status == SF_NOTFOUND) {
			st->missing++;
		} else {
			cli_report(st->text[i], res[i].status, err);
			goto out;
		}
		if (st->tlen[i] > (size_t)width)
			width = st->tlen[i] > 40 ? 40 : (int)st->tlen[i];
	}
	if (st->a->output == OUT_TABLE && st->printed == 0) {
		printf("%-*s  %s\n", width < 3 ? 3 : width, "KEY", "VALUE");
		st->printed++;
	}
	for (i = 0; i < st->n; i++)
		if (print_entry(st, i, vals[i], width < 3 ? 3 : width))
			goto out;
	rc = 0;
out:
	for (i = 0; i < st->n; i++) {
		free(bufs[i]);
		free(st->text[i]);
		st->text[i] = NULL;
		if (res)
			sf_free(res[i].value);
		if (vals)
			free(vals[i]);
	}
	st->n = 0;
	free(res);
	free(vals);
	return rc;
}

static int add_key(struct mg_state *st, const char *k, size_t n)
{
	st->text[st->n] = cli_xmalloc(n + 1);
	memcpy(st->text[st->n], k, n);
	st->text[st->n][n] = 0;
	st->tlen[st->n] = n;
	if (++st->n == MG_BATCH)
		return run_batch(st);
	return 0;
}

static int read_stdin_keys(struct mg_state *st)
{
	char *line = NULL;
	size_t cap = 0, n = 0;
	int rc = 0, r;

	for (;;) {
		r = cli_read_line(stdin, &line, &cap, &n, MG_MAX_KEY_LINE);
		if (r != 1)
			break;
		rc = add_key(st, line, n);
		if (rc)
			break;
	}
	if (r < 0)
		rc = CLI_ERROR;
	free(line);
	return rc;
}

static int multiget_exec(int argc, char **argv)
{
	struct mg_args a = {OUT_JSON, VENC_UTF8, 0, 0};
	struct cli_extra extra = {mg_opts, mg_opt, &a, mg_help};
	struct cli_common c;
	struct sf_reader *r = NULL;
	struct sf_snapshot_info info;
	struct mg_state *st;
	int rc;

	rc = cli_parse(&cmd_multiget, argc, argv, CLI_CONN | CLI_READ, &extra,
		       &c);
	if (rc)
		return rc == CLI_DONE ? CLI_OK : rc;
	st = calloc(1, sizeof(*st));
	if (!st) {
		cli_errorf("out of memory");
		return CLI_ERROR;
	}
	st->a = &a;
	rc = cli_open_snapshot(&c, &r, &st->s);
	if (rc)
		goto out;
	sf_snapshot_info(st->s, &info);
	st->enc = info.key_encoding;

	if (a.output == OUT_JSON)
		cli_write("{", 1);
	if (c.nargs == 0 || (c.nargs == 1 && !strcmp(c.args[0], "-"))) {
		rc = read_stdin_keys(st);
	} else {
		for (int i = 0; i < c.nargs && !rc; i++)
			rc = add_key(st, c.args[i], strlen(c.args[i]));
	}
	if (!rc)
		rc = run_batch(st);
	if (rc)
		goto out;
	if (a.output == OUT_JSON)
		cli_write("}\n", 2);
	rc = st->missing && a.strict ? CLI_NOTFOUND : CLI_OK;
out:
	if (rc == CLI_ERROR && a.output == OUT_JSON && st->s)
		fflush(stdout);
	for (size_t i = 0; i < st->n; i++)
		free(st->text[i]);
	sf_snapshot_release(st->s);
	sf_reader_close(r);
	free(st);
	return rc;
}

const struct sf_cmd cmd_multiget = {
	.name = "multiget",
	.usage = "PREFIX [KEY...|-] [--output json|jsonl|text|table] "
		 "[--value-encoding utf8|hex|base64] [--strict] [--key-hex]",
	.summary = "look up many keys (from arguments or stdin) in one snapshot",
	.exec = multiget_exec,
};
