/*
 * cmd_route.c -- `shardyfs route PREFIX KEY`: the shard a key routes to
 * (FORMAT.md 4), printed as its db_id or, with --json, as the shard's
 * details. Routing does no shard I/O. A key that does not fit the
 * snapshot's encoding exits 2; an unknown categorical token prints
 * "not found: KEY" and exits 1.
 */
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"

struct route_args {
	int json;
	int key_hex;
};

enum { OPT_JSON = 'j', OPT_KEY_HEX = 'x' };

static const struct option route_opts[] = {
	{"json", no_argument, NULL, OPT_JSON},
	{"key-hex", no_argument, NULL, OPT_KEY_HEX},
	{NULL, 0, NULL, 0},
};

static const char route_help[] =
	"  -j, --json             print the shard's details as JSON\n"
	"  -x, --key-hex          the key is given as hex\n";

static int route_opt(void *ctx, int c, const char *arg)
{
	struct route_args *a = ctx;

	(void)arg;
	if (c == OPT_JSON)
		a->json = 1;
	else if (c == OPT_KEY_HEX)
		a->key_hex = 1;
	else
		return CLI_ERROR;
	return 0;
}

static int route_exec(int argc, char **argv)
{
	struct route_args a = {0};
	struct cli_extra extra = {route_opts, route_opt, &a, route_help};
	struct cli_common c;
	struct sf_reader *r = NULL;
	struct sf_snapshot *s = NULL;
	struct sf_snapshot_info in;
	struct sf_shard_info si;
	struct sf_key key;
	uint8_t *kbuf = NULL;
	uint32_t db_id = 0;
	char err[512] = "";
	int rc;

	rc = cli_parse(&cmd_route, argc, argv, CLI_CONN | CLI_READ, &extra,
		       &c);
	if (rc)
		return rc == CLI_DONE ? CLI_OK : rc;
	if (c.nargs != 1) {
		cli_errorf("route: expected exactly one KEY");
		return CLI_ERROR;
	}
	rc = cli_open_snapshot(&c, &r, &s);
	if (rc)
		return rc;
	sf_snapshot_info(s, &in);
	if (cli_key(in.key_encoding, c.args[0], strlen(c.args[0]), a.key_hex,
		    &key, &kbuf)) {
		rc = CLI_ERROR;
		goto out;
	}
	rc = sf_snapshot_route(s, &key, &db_id, err, sizeof(err));
	if (rc == SF_NOTFOUND) {
		fprintf(stderr, "not found: %s\n", c.args[0]);
		rc = CLI_NOTFOUND;
		goto out;
	}
	if (rc) {
		cli_report(c.args[0], rc, err);
		rc = CLI_ERROR;
		goto out;
	}
	if (!a.json) {
		printf("%u\n", db_id);
		rc = CLI_OK;
		goto out;
	}
	rc = sf_snapshot_shard(s, db_id, &si);
	if (rc) {
		cli_report("route", rc, NULL);
		rc = CLI_ERROR;
		goto out;
	}
	rc = cli_print_json(cli_shard_json(&si), JSON_INDENT(2));
out:
	free(kbuf);
	sf_snapshot_release(s);
	sf_reader_close(r);
	return rc;
}

const struct sf_cmd cmd_route = {
	.name = "route",
	.usage = "PREFIX KEY [--json] [--key-hex]",
	.summary = "print the shard a key routes to",
	.exec = route_exec,
};
