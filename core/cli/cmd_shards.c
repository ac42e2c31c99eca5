/*
 * cmd_shards.c -- `shardyfs shards PREFIX`: one line per shard id in
 * [0, num_dbs), empty shards included (no manifest row: no URL, no rows),
 * as an aligned table or, with --json, a JSON array of shard objects.
 */
#include <string.h>

#include "cli_common.h"

enum { OPT_JSON = 'j' };

static const struct option shards_opts[] = {
	{"json", no_argument, NULL, OPT_JSON},
	{NULL, 0, NULL, 0},
};

static const char shards_help[] = "  -j, --json             print JSON\n";

static int shards_opt(void *ctx, int c, const char *arg)
{
	(void)arg;
	if (c != OPT_JSON)
		return CLI_ERROR;
	*(int *)ctx = 1;
	return 0;
}

static int shards_exec(int argc, char **argv)
{
	int json = 0;
	struct cli_extra extra = {shards_opts, shards_opt, &json, shards_help};
	struct cli_common c;
	struct sf_reader *r = NULL;
	struct sf_snapshot *s = NULL;
	struct sf_snapshot_info in;
	json_t *arr = NULL;
	int rc;

	rc = cli_parse(&cmd_shards, argc, argv, CLI_CONN | CLI_READ, &extra,
		       &c);
	if (rc)
		return rc == CLI_DONE ? CLI_OK : rc;
	if (c.nargs) {
		cli_errorf("shards: unexpected argument '%s'", c.args[0]);
		return CLI_ERROR;
	}
	rc = cli_open_snapshot(&c, &r, &s);
	if (rc)
		return rc;
	sf_snapshot_info(s, &in);
	if (json)
		arr = json_array();
	else
		printf("%5s  %-5s  %10s  %12s  %-20s  %-20s  %s\n", "DB_ID",
		       "EMPTY", "ROWS", "BYTES", "MIN_KEY", "MAX_KEY", "DB_URL");
	for (uint32_t i = 0; i < in.num_dbs; i++) {
		struct sf_shard_info si;
		char err[256] = "";

		rc = sf_snapshot_shard(s, i, &si);
		if (rc) {
			cli_report("shards", rc, err);
			rc = CLI_ERROR;
			goto out;
		}
		if (arr) {
			json_array_append_new(arr, cli_shard_json(&si));
			continue;
		}
		printf("%5u  %-5s  %10llu  %12llu  %-20s  %-20s  %s\n", si.db_id,
		       si.empty ? "yes" : "no",
		       (unsigned long long)si.row_count,
		       (unsigned long long)si.db_bytes,
		       si.min_key_json ? si.min_key_json : "-",
		       si.max_key_json ? si.max_key_json : "-",
		       si.db_url ? si.db_url : "-");
	}
	rc = arr ? cli_print_json(arr, JSON_INDENT(2)) : CLI_OK;
	arr = NULL;
out:
	json_decref(arr);
	sf_snapshot_release(s);
	sf_reader_close(r);
	return rc;
}

const struct sf_cmd cmd_shards = {
	.name = "shards",
	.usage = "PREFIX [--json]",
	.summary = "list every shard (empty ones too) with rows, bytes, keys, URL",
	.exec = shards_exec,
};
