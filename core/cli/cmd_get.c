/*
 * cmd_get.c -- `shardyfs get PREFIX KEY...`: prints values.
 *
 * With one key the value's bytes are written exactly (no newline), so
 * `shardyfs get P K > file` reproduces the value. With several keys each
 * value is followed by '\n'. All keys are looked up in one pinned
 * snapshot. A missing key prints "not found: KEY" on stderr (exit 1 with
 * --strict, else 0); a key that does not fit the snapshot's encoding, or
 * any I/O or integrity error, prints a message and exits 2 -- never "not
 * found".
 */
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"

struct get_args {
	int strict;
	int key_hex;
};

enum { OPT_STRICT = 's', OPT_KEY_HEX = 'x' };

static const struct option get_opts[] = {
	{"strict", no_argument, NULL, OPT_STRICT},
	{"key-hex", no_argument, NULL, OPT_KEY_HEX},
	{NULL, 0, NULL, 0},
};

static const char get_help[] =
	"  -s, --strict           exit 1 when a key is not found\n"
	"  -x, --key-hex          keys are given as hex (stored bytes for\n"
	"                         utf8/raw; 8 or 4 big-endian bytes for\n"
	"                         u64be/u32be)\n";

static int get_opt(void *ctx, int c, const char *arg)
{
	struct get_args *a = ctx;

	(void)arg;
	if (c == OPT_STRICT)
		a->strict = 1;
	else if (c == OPT_KEY_HEX)
		a->key_hex = 1;
	else
		return CLI_ERROR;
	return 0;
}

static int get_exec(int argc, char **argv)
{
	struct get_args a = {0};
	struct cli_extra extra = {get_opts, get_opt, &a, get_help};
	struct cli_common c;
	struct sf_reader *r = NULL;
	struct sf_snapshot *s = NULL;
	struct sf_snapshot_info info;
	struct sf_key *keys = NULL;
	uint8_t **bufs = NULL;
	int rc, missing = 0, n;

	rc = cli_parse(&cmd_get, argc, argv, CLI_CONN | CLI_READ, &extra, &c);
	if (rc)
		return rc == CLI_DONE ? CLI_OK : rc;
	n = c.nargs;
	if (n < 1) {
		cli_errorf("get: no KEY given");
		fprintf(stderr, "Usage: shardyfs get %s\n", cmd_get.usage);
		return CLI_ERROR;
	}
	rc = cli_open_snapshot(&c, &r, &s);
	if (rc)
		return rc;
	sf_snapshot_info(s, &info);

	keys = cli_xmalloc((size_t)n * sizeof(*keys));
	bufs = calloc((size_t)n, sizeof(*bufs));
	if (!bufs) {
		cli_errorf("out of memory");
		rc = CLI_ERROR;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		if (cli_key(info.key_encoding, c.args[i], strlen(c.args[i]),
			    a.key_hex, &keys[i], &bufs[i])) {
			rc = CLI_ERROR;
			goto out;
		}
	}
	for (int i = 0; i < n; i++) {
		char err[512] = "";
		void *val = NULL;
		size_t len = 0;
		int g = sf_snapshot_get(s, &keys[i], &val, &len, err,
					sizeof(err));

		if (g == SF_NOTFOUND) {
			fflush(stdout);
			fprintf(stderr, "not found: %s\n", c.args[i]);
			missing++;
			continue;
		}
		if (g != 0) {
			cli_report(c.args[i], g, err);
			rc = CLI_ERROR;
			goto out;
		}
		if (cli_write(val, len) || (n > 1 && cli_write("\n", 1))) {
			sf_free(val);
			rc = CLI_ERROR;
			goto out;
		}
		sf_free(val);
	}
	rc = missing && a.strict ? CLI_NOTFOUND : CLI_OK;
out:
	if (bufs)
		for (int i = 0; i < n; i++)
			free(bufs[i]);
	free(bufs);
	free(keys);
	sf_snapshot_release(s);
	sf_reader_close(r);
	return rc;
}

const struct sf_cmd cmd_get = {
	.name = "get",
	.usage = "PREFIX KEY... [--strict] [--key-hex]",
	.summary = "print the value of each KEY",
	.exec = get_exec,
};
