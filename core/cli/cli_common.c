/*
 * cli_common.c -- option parsing and helpers shared by every command.
 *
 * Every reading command accepts the same global options (connection,
 * cache, pinning, logging); each command adds its own through a
 * `struct cli_extra`. Both sets are merged into one getopt_long table, so
 * options may appear anywhere among the arguments (GNU permutation; `--`
 * ends them, for keys that start with '-').
 *
 * The rest are small utilities the commands need and the public API does
 * not offer: user text to keys (decimal, text or hex), hex/base64 codecs,
 * UTF-8 validation, full writes to stdout, exiting allocators.
 */
#include "cli_common.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum {
	OPT_ENDPOINT = 1000,
	OPT_REGION,
	OPT_PROFILE,
	OPT_NO_SIGN,
	OPT_ADDRESSING,
	OPT_LOG_LEVEL,
	OPT_ACCESS_MODE,
	OPT_CACHE_DIR,
	OPT_CACHE_SIZE,
	OPT_REF,
	OPT_OFFSET,
	OPT_ROUTING_TOKEN,
};

/* The --routing-token of this invocation (a CLI is one command per
 * process, so one global is the simplest carrier into cli_key()). */
static const char *routing_token;

struct global_opt {
	struct option o;
	unsigned flag;
	const char *help;
};

static const struct global_opt globals[] = {
	{{"endpoint-url", required_argument, NULL, OPT_ENDPOINT}, CLI_CONN,
	 "      --endpoint-url URL     S3 endpoint (default: from the environment)"},
	{{"region", required_argument, NULL, OPT_REGION}, CLI_CONN,
	 "      --region NAME          S3 region"},
	{{"profile", required_argument, NULL, OPT_PROFILE}, CLI_CONN,
	 "      --profile NAME         AWS profile for credentials"},
	{{"no-sign-request", no_argument, NULL, OPT_NO_SIGN}, CLI_CONN,
	 "      --no-sign-request      anonymous S3 requests"},
	{{"addressing-style", required_argument, NULL, OPT_ADDRESSING}, CLI_CONN,
	 "      --addressing-style path|virtual"},
	{{"log-level", required_argument, NULL, OPT_LOG_LEVEL}, CLI_CONN,
	 "      --log-level error|warn|info|debug"},
	{{"access-mode", required_argument, NULL, OPT_ACCESS_MODE}, CLI_READ,
	 "      --access-mode auto|range|download"},
	{{"cache-dir", required_argument, NULL, OPT_CACHE_DIR}, CLI_READ,
	 "      --cache-dir DIR        download cache directory"},
	{{"cache-size", required_argument, NULL, OPT_CACHE_SIZE}, CLI_READ,
	 "      --cache-size BYTES     page-cache budget (K, M, G suffixes)"},
	{{"ref", required_argument, NULL, OPT_REF}, CLI_READ,
	 "      --ref MANIFEST_URL     read this manifest instead of _CURRENT's"},
	{{"offset", required_argument, NULL, OPT_OFFSET}, CLI_READ,
	 "      --offset N             read the N-th older manifest"},
	{{"routing-token", required_argument, NULL, OPT_ROUTING_TOKEN}, CLI_READ,
	 "      --routing-token TOKEN  shard selector for snapshots routed by categorical CEL"},
};
#define N_GLOBALS (sizeof(globals) / sizeof(globals[0]))

/* ------------------------------------------------------------------ */
/* Messages and allocation                                             */
/* ------------------------------------------------------------------ */

void cli_errorf(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("shardyfs: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void cli_report(const char *what, int code, const char *err)
{
	const char *detail = err && *err ? err : sf_strerror(code);

	if (what && *what)
		cli_errorf("%s: %s", what, detail);
	else
		cli_errorf("%s", detail);
}

void *cli_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);

	if (!p) {
		cli_errorf("out of memory");
		exit(CLI_ERROR);
	}
	return p;
}

void *cli_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q) {
		cli_errorf("out of memory");
		exit(CLI_ERROR);
	}
	return q;
}

char *cli_xstrdup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = cli_xmalloc(n);

	memcpy(p, s, n);
	return p;
}

int cli_write(const void *p, size_t n)
{
	if (n && fwrite(p, 1, n, stdout) != n) {
		cli_errorf("write error: %s", strerror(errno));
		return -1;
	}
	return 0;
}

int cli_read_line(FILE *f, char **buf, size_t *cap, size_t *len, size_t max)
{
	size_t n = 0;
	int c;

	for (c = getc_unlocked(f); c != EOF && c != '\n'; c = getc_unlocked(f)) {
		if (n + 1 >= *cap) {
			if (n >= max) {
				cli_errorf("input line longer than %zu bytes",
					   max);
				return -1;
			}
			*cap = *cap ? *cap * 2 : 4096;
			*buf = cli_xrealloc(*buf, *cap);
		}
		(*buf)[n++] = (char)c;
	}
	if (ferror(f)) {
		cli_errorf("read error: %s", strerror(errno));
		return -1;
	}
	if (c == EOF && n == 0)
		return 0;
	if (!*buf) {
		*cap = 4096;
		*buf = cli_xrealloc(NULL, *cap);
	}
	(*buf)[n] = 0;
	*len = n;
	return 1;
}

/* ------------------------------------------------------------------ */
/* Numbers                                                             */
/* ------------------------------------------------------------------ */

int cli_parse_u64(const char *s, uint64_t *out)
{
	char *end = NULL;
	unsigned long long v;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || *end)
		return -1;
	*out = v;
	return 0;
}

int cli_parse_size(const char *s, uint64_t *out)
{
	char *end = NULL;
	unsigned long long v;
	unsigned shift = 0;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (toupper((unsigned char)*end)) {
	case 0: break;
	case 'K': shift = 10; break;
	case 'M': shift = 20; break;
	case 'G': shift = 30; break;
	case 'T': shift = 40; break;
	default: return -1;
	}
	if (*end) {
		end++;
		if (toupper((unsigned char)*end) == 'I')
			end++;
		if (toupper((unsigned char)*end) == 'B')
			end++;
		if (*end)
			return -1;
	}
	if (shift && v > (UINT64_MAX >> shift))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Option parsing                                                      */
/* ------------------------------------------------------------------ */

int cli_global_takes_arg(const char *a)
{
	if (strncmp(a, "--", 2) != 0 || strchr(a, '='))
		return 0;
	for (size_t i = 0; i < N_GLOBALS; i++)
		if (!strcmp(a + 2, globals[i].o.name))
			return globals[i].o.has_arg == required_argument;
	return 0;
}

void cli_usage(FILE *f, const struct sf_cmd *cmd, unsigned flags,
	       const struct cli_extra *extra)
{
	fprintf(f, "Usage: shardyfs %s %s\n", cmd->name, cmd->usage);
	if (cmd->summary)
		fprintf(f, "%s\n", cmd->summary);
	fprintf(f, "\nOptions:\n");
	if (extra && extra->help)
		fprintf(f, "%s", extra->help);
	for (size_t i = 0; i < N_GLOBALS; i++)
		if (globals[i].flag & flags)
			fprintf(f, "%s\n", globals[i].help);
	fprintf(f, "  -h, --help             show this help\n");
	if (flags & CLI_READ)
		fprintf(f, "\nPREFIX is s3://bucket/path, http(s)://host/path, "
			   "file:///dir or a directory.\n");
}

static int parse_global(struct cli_common *c, int code, const char *arg)
{
	uint64_t v;

	switch (code) {
	case OPT_ENDPOINT:
		c->opt.endpoint_url = arg;
		return 0;
	case OPT_REGION:
		c->opt.region = arg;
		return 0;
	case OPT_PROFILE:
		c->opt.profile = arg;
		return 0;
	case OPT_NO_SIGN:
		c->opt.no_sign_request = 1;
		return 0;
	case OPT_ADDRESSING:
		if (!strcmp(arg, "path"))
			c->opt.addressing = SF_ADDR_PATH;
		else if (!strcmp(arg, "virtual"))
			c->opt.addressing = SF_ADDR_VIRTUAL;
		else if (!strcmp(arg, "auto"))
			c->opt.addressing = SF_ADDR_AUTO;
		else
			break;
		return 0;
	case OPT_LOG_LEVEL:
		if (!strcmp(arg, "error"))
			c->opt.log_level = SF_LOG_ERROR;
		else if (!strcmp(arg, "warn") || !strcmp(arg, "warning"))
			c->opt.log_level = SF_LOG_WARN;
		else if (!strcmp(arg, "info"))
			c->opt.log_level = SF_LOG_INFO;
		else if (!strcmp(arg, "debug"))
			c->opt.log_level = SF_LOG_DEBUG;
		else
			break;
		return 0;
	case OPT_ACCESS_MODE:
		if (!strcmp(arg, "auto"))
			c->opt.access_mode = SF_ACCESS_AUTO;
		else if (!strcmp(arg, "range"))
			c->opt.access_mode = SF_ACCESS_RANGE;
		else if (!strcmp(arg, "download"))
			c->opt.access_mode = SF_ACCESS_DOWNLOAD;
		else
			break;
		return 0;
	case OPT_CACHE_DIR:
		c->opt.cache_dir = arg;
		return 0;
	case OPT_CACHE_SIZE:
		if (cli_parse_size(arg, &v) || v == 0)
			break;
		c->opt.cache_bytes = v;
		return 0;
	case OPT_REF:
		c->opt.manifest_ref = arg;
		return 0;
	case OPT_OFFSET:
		if (cli_parse_u64(arg, &v) || v > 1000000)
			break;
		c->opt.history_offset = (int)v;
		return 0;
	case OPT_ROUTING_TOKEN:
		routing_token = arg;
		return 0;
	}
	for (size_t i = 0; i < N_GLOBALS; i++)
		if (globals[i].o.val == code)
			cli_errorf("invalid value for --%s: '%s'",
				   globals[i].o.name, arg);
	return CLI_ERROR;
}

int cli_parse(const struct sf_cmd *cmd, int argc, char **argv, unsigned flags,
	      const struct cli_extra *extra, struct cli_common *out)
{
	struct option lo[64];
	char so[64];
	size_t nl = 0, ns = 0;
	int c, rc = 0;

	memset(out, 0, sizeof(*out));
	sf_options_init(&out->opt);
	/* SHARDYFS_ACCESS_MODE sets the default access mode, as AWS_* set
	 * connection defaults; --access-mode overrides it. */
	const char *env_mode = getenv("SHARDYFS_ACCESS_MODE");
	if ((flags & CLI_READ) && env_mode && *env_mode &&
	    parse_global(out, OPT_ACCESS_MODE, env_mode) != 0)
		return CLI_ERROR;

	for (size_t i = 0; i < N_GLOBALS; i++)
		if (globals[i].flag & flags)
			lo[nl++] = globals[i].o;
	so[ns++] = ':'; /* report a missing argument as ':' */
	so[ns++] = 'h';
	for (const struct option *o = extra ? extra->longopts : NULL;
	     o && o->name && nl < 62; o++) {
		lo[nl++] = *o;
		if (o->val > 0 && o->val < 128 && isalpha(o->val) &&
		    ns + 3 < sizeof(so)) {
			so[ns++] = (char)o->val;
			if (o->has_arg == required_argument)
				so[ns++] = ':';
		}
	}
	lo[nl++] = (struct option){"help", no_argument, NULL, 'h'};
	memset(&lo[nl], 0, sizeof(lo[nl]));
	so[ns] = 0;

	optind = 0; /* full re-initialisation (glibc) */
	opterr = 0;
	for (c = getopt_long(argc, argv, so, lo, NULL); c != -1;
	     c = getopt_long(argc, argv, so, lo, NULL)) {
		if (c == 'h') {
			cli_usage(stdout, cmd, flags, extra);
			return CLI_DONE;
		}
		if (c == '?' || c == ':') {
			const char *bad = argv[optind - 1];
			if (c == ':')
				cli_errorf("%s: option '%s' needs a value",
					   cmd->name, bad);
			else if (optopt > 0 && optopt < 128 &&
				 strncmp(bad, "--", 2) != 0)
				cli_errorf("%s: unknown option '-%c'",
					   cmd->name, optopt);
			else
				cli_errorf("%s: unknown option '%s'", cmd->name,
					   bad);
			fprintf(stderr, "Try 'shardyfs %s --help'.\n",
				cmd->name);
			return CLI_ERROR;
		}
		if (c >= OPT_ENDPOINT)
			rc = parse_global(out, c, optarg);
		else if (extra && extra->handle)
			rc = extra->handle(extra->ctx, c, optarg);
		if (rc)
			return rc;
	}
	out->args = argv + optind;
	out->nargs = argc - optind;
	if (flags & CLI_READ) {
		if (out->nargs < 1) {
			cli_errorf("%s: missing PREFIX", cmd->name);
			fprintf(stderr, "Usage: shardyfs %s %s\n", cmd->name,
				cmd->usage);
			return CLI_ERROR;
		}
		out->prefix = out->args[0];
		out->args++;
		out->nargs--;
	}
	return 0;
}

int cli_open_reader(const struct cli_common *c, struct sf_reader **out)
{
	char err[512] = "";
	int rc = sf_reader_open(out, c->prefix, &c->opt, err, sizeof(err));

	if (rc == 0)
		return 0;
	*out = NULL;
	if (rc == SF_ENOSNAPSHOT)
		cli_errorf("no snapshot published at %s", c->prefix);
	else
		cli_report(c->prefix, rc, err);
	return CLI_ERROR;
}

int cli_open_snapshot(const struct cli_common *c, struct sf_reader **r,
		      struct sf_snapshot **s)
{
	int rc = cli_open_reader(c, r);

	if (rc)
		return rc;
	*s = sf_reader_acquire(*r);
	if (!*s) {
		cli_errorf("%s: no snapshot", c->prefix);
		sf_reader_close(*r);
		*r = NULL;
		return CLI_ERROR;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* JSON                                                                */
/* ------------------------------------------------------------------ */

/* A min/max key as stored in the manifest (JSON text) as a JSON value;
 * text that does not parse is kept as a string. */
static json_t *key_value(const char *text)
{
	json_t *j;

	if (!text)
		return json_null();
	j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
	return j ? j : json_string(text);
}

static json_t *str_or_null(const char *s)
{
	json_t *j = s ? json_string(s) : NULL;

	return j ? j : json_null();
}

json_t *cli_shard_json(const struct sf_shard_info *si)
{
	json_t *o = json_object();

	if (!o) {
		cli_errorf("out of memory");
		exit(CLI_ERROR);
	}
	json_object_set_new(o, "db_id", json_integer(si->db_id));
	json_object_set_new(o, "empty", json_boolean(si->empty));
	json_object_set_new(o, "row_count",
			    json_integer((json_int_t)si->row_count));
	json_object_set_new(o, "db_bytes",
			    json_integer((json_int_t)si->db_bytes));
	json_object_set_new(o, "min_key", key_value(si->min_key_json));
	json_object_set_new(o, "max_key", key_value(si->max_key_json));
	json_object_set_new(o, "db_url", str_or_null(si->db_url));
	json_object_set_new(o, "checkpoint_id", str_or_null(si->checkpoint_id));
	json_object_set_new(o, "attempt", json_integer(si->attempt));
	return o;
}

int cli_print_json(json_t *j, size_t flags)
{
	int rc = 0;

	if (!j) {
		cli_errorf("out of memory");
		return CLI_ERROR;
	}
	if (json_dumpf(j, stdout, flags | JSON_ENCODE_ANY) != 0 ||
	    fputc('\n', stdout) == EOF) {
		cli_errorf("cannot write JSON output");
		rc = CLI_ERROR;
	}
	json_decref(j);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Keys                                                                */
/* ------------------------------------------------------------------ */

static int cli_key_parse(enum sf_key_encoding enc, const char *text,
			 size_t len, int hex, struct sf_key *key, uint8_t **buf);

int cli_key(enum sf_key_encoding enc, const char *text, size_t len, int hex,
	    struct sf_key *key, uint8_t **buf)
{
	int rc;

	*buf = NULL;
	rc = cli_key_parse(enc, text, len, hex, key, buf);
	if (rc == 0)
		key->token = routing_token;
	return rc;
}

static int cli_key_parse(enum sf_key_encoding enc, const char *text,
			 size_t len, int hex, struct sf_key *key, uint8_t **buf)
{
	char err[256] = "";
	uint8_t *b = NULL;
	size_t n = 0;
	int rc;

	if (!hex) {
		rc = sf_key_from_text(enc, text, len, key, err, sizeof(err));
		if (rc) {
			cli_errorf("bad key '%.*s': %s", (int)(len > 200 ? 200 : len),
				   text, err[0] ? err : sf_strerror(rc));
			return CLI_ERROR;
		}
		return 0;
	}
	if (cli_unhex(text, len, &b, &n)) {
		cli_errorf("bad key '%.*s': not hex", (int)(len > 200 ? 200 : len),
			   text);
		return CLI_ERROR;
	}
	switch (enc) {
	case SF_ENC_U64BE:
	case SF_ENC_U32BE: {
		size_t want = enc == SF_ENC_U64BE ? 8 : 4;
		uint64_t v = 0;

		if (n != want) {
			cli_errorf("bad key '%.*s': a %s key in hex is %zu bytes",
				   (int)(len > 200 ? 200 : len), text,
				   sf_encoding_name(enc), want);
			free(b);
			return CLI_ERROR;
		}
		for (size_t i = 0; i < n; i++)
			v = (v << 8) | b[i];
		free(b);
		*key = sf_key_uint(v);
		return 0;
	}
	case SF_ENC_UTF8:
		*key = sf_key_text((const char *)b, n);
		break;
	default:
		*key = sf_key_bytes(b, n);
		break;
	}
	*buf = b;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Codecs                                                              */
/* ------------------------------------------------------------------ */

char *cli_hex(const void *p, size_t n)
{
	static const char digits[] = "0123456789abcdef";
	const uint8_t *s = p;
	char *o = cli_xmalloc(2 * n + 1);

	for (size_t i = 0; i < n; i++) {
		o[2 * i] = digits[s[i] >> 4];
		o[2 * i + 1] = digits[s[i] & 15];
	}
	o[2 * n] = 0;
	return o;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int cli_unhex(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
	uint8_t *o;

	if (n % 2)
		return -1;
	o = cli_xmalloc(n / 2 + 1);
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval((unsigned char)s[2 * i]);
		int lo = hexval((unsigned char)s[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			free(o);
			return -1;
		}
		o[i] = (uint8_t)(hi * 16 + lo);
	}
	*out = o;
	*outlen = n / 2;
	return 0;
}

static const char b64[] =
	"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *cli_base64(const void *p, size_t n)
{
	const uint8_t *s = p;
	char *o = cli_xmalloc((n + 2) / 3 * 4 + 1), *w = o;
	size_t i = 0;

	for (; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 |
			     s[i + 2];
		*w++ = b64[v >> 18];
		*w++ = b64[(v >> 12) & 63];
		*w++ = b64[(v >> 6) & 63];
		*w++ = b64[v & 63];
	}
	if (i < n) {
		uint32_t v = (uint32_t)s[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)s[i + 1] << 8;
		*w++ = b64[v >> 18];
		*w++ = b64[(v >> 12) & 63];
		*w++ = i + 1 < n ? b64[(v >> 6) & 63] : '=';
		*w++ = '=';
	}
	*w = 0;
	return o;
}

int cli_unbase64(const char *s, size_t n, uint8_t **out, size_t *outlen)
{
	uint8_t *o = cli_xmalloc(n / 4 * 3 + 3);
	size_t w = 0, pad = 0;
	uint32_t acc = 0;
	int bits = 0;

	for (size_t i = 0; i < n; i++) {
		const char *p;
		if (s[i] == '=') {
			pad++;
			continue;
		}
		if (pad)
			goto bad; /* data after padding */
		p = s[i] ? strchr(b64, s[i]) : NULL;
		if (!p)
			goto bad;
		acc = (acc << 6) | (uint32_t)(p - b64);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[w++] = (uint8_t)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (pad > 2 || bits >= 6 || (n - pad) % 4 == 1)
		goto bad;
	*out = o;
	*outlen = w;
	return 0;
bad:
	free(o);
	return -1;
}

int cli_utf8_valid(const void *p, size_t n)
{
	const uint8_t *s = p;
	size_t i = 0;

	while (i < n) {
		uint8_t c = s[i];
		size_t len;
		uint32_t v, min;

		if (c < 0x80) {
			i++;
			continue;
		} else if (c >= 0xc2 && c <= 0xdf) {
			len = 2, v = c & 0x1f, min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3, v = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4, v = c & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (n - i < len)
			return 0;
		for (size_t j = 1; j < len; j++) {
			if ((s[i + j] & 0xc0) != 0x80)
				return 0;
			v = (v << 6) | (s[i + j] & 0x3f);
		}
		if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
			return 0;
		i += len;
	}
	return 1;
}
