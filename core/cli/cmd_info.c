/*
 * cmd_info.c -- `shardyfs info PREFIX`: snapshot-level facts (run id,
 * creation time, manifest, routing, encoding, shard and row counts), as
 * "name: value" lines or, with --json, one JSON object.
 */
#include <string.h>

#include "cli_common.h"

enum { OPT_JSON = 'j' };

static const struct option info_opts[] = {
	{"json", no_argument, NULL, OPT_JSON},
	{NULL, 0, NULL, 0},
};

static const char info_help[] = "  -j, --json             print JSON\n";

static int info_opt(void *ctx, int c, const char *arg)
{
	(void)arg;
	if (c != OPT_JSON)
		return CLI_ERROR;
	*(int *)ctx = 1;
	return 0;
}

static const char *mode_name(enum sf_access_mode m)
{
	switch (m) {
	case SF_ACCESS_DOWNLOAD: return "download";
	case SF_ACCESS_RANGE: return "range";
	default: return "auto";
	}
}

static const char *or_dash(const char *s)
{
	return s && *s ? s : "-";
}

static int info_exec(int argc, char **argv)
{
	int json = 0;
	struct cli_extra extra = {info_opts, info_opt, &json, info_help};
	struct cli_common c;
	struct sf_reader *r = NULL;
	struct sf_snapshot *s = NULL;
	struct sf_snapshot_info in;
	int rc;

	rc = cli_parse(&cmd_info, argc, argv, CLI_CONN | CLI_READ, &extra, &c);
	if (rc)
		return rc == CLI_DONE ? CLI_OK : rc;
	if (c.nargs) {
		cli_errorf("info: unexpected argument '%s'", c.args[0]);
		return CLI_ERROR;
	}
	rc = cli_open_snapshot(&c, &r, &s);
	if (rc)
		return rc;
	sf_snapshot_info(s, &in);
	if (json) {
		json_t *o = json_object();
		if (o) {
			json_object_set_new(o, "prefix", json_string(c.prefix));
			json_object_set_new(o, "run_id", json_string(or_dash(in.run_id)));
			json_object_set_new(o, "created_at",
					    json_string(or_dash(in.created_at)));
			json_object_set_new(o, "created_at_epoch",
					    json_real(in.created_at_epoch));
			json_object_set_new(o, "manifest_ref",
					    json_string(or_dash(in.manifest_ref)));
			json_object_set_new(o, "manifest_url",
					    json_string(or_dash(in.manifest_url)));
			json_object_set_new(o, "s3_prefix",
					    json_string(or_dash(in.s3_prefix)));
			json_object_set_new(o, "strategy",
					    json_string(or_dash(in.strategy)));
			json_object_set_new(o, "hash_algorithm",
					    json_string(or_dash(in.hash_algorithm)));
			json_object_set_new(o, "key_col",
					    json_string(or_dash(in.key_col)));
			json_object_set_new(o, "key_encoding",
					    json_string(sf_encoding_name(in.key_encoding)));
			json_object_set_new(o, "num_dbs", json_integer(in.num_dbs));
			json_object_set_new(o, "num_nonempty",
					    json_integer(in.num_nonempty));
			json_object_set_new(o, "total_rows",
					    json_integer((json_int_t)in.total_rows));
			json_object_set_new(o, "total_bytes",
					    json_integer((json_int_t)in.total_bytes));
			json_object_set_new(o, "format_version",
					    json_integer(in.format_version));
			json_object_set_new(o, "has_sidecars",
					    json_boolean(in.has_sidecars));
			json_object_set_new(o, "access_mode",
					    json_string(mode_name(in.access_mode)));
			json_object_set_new(o, "generation",
					    json_integer((json_int_t)in.generation));
		}
		rc = cli_print_json(o, JSON_INDENT(2));
	} else {
		printf("prefix:          %s\n", c.prefix);
		printf("run_id:          %s\n", or_dash(in.run_id));
		printf("created_at:      %s\n", or_dash(in.created_at));
		printf("manifest_ref:    %s\n", or_dash(in.manifest_ref));
		printf("manifest_url:    %s\n", or_dash(in.manifest_url));
		printf("s3_prefix:       %s\n", or_dash(in.s3_prefix));
		printf("strategy:        %s\n", or_dash(in.strategy));
		printf("hash_algorithm:  %s\n", or_dash(in.hash_algorithm));
		printf("key_col:         %s\n", or_dash(in.key_col));
		printf("key_encoding:    %s\n", sf_encoding_name(in.key_encoding));
		printf("num_dbs:         %u\n", in.num_dbs);
		printf("num_nonempty:    %u\n", in.num_nonempty);
		printf("total_rows:      %llu\n", (unsigned long long)in.total_rows);
		printf("total_bytes:     %llu\n", (unsigned long long)in.total_bytes);
		printf("format_version:  %d\n", in.format_version);
		printf("sidecars:        %s\n", in.has_sidecars ? "yes" : "no");
		printf("access_mode:     %s\n", mode_name(in.access_mode));
		rc = CLI_OK;
	}
	sf_snapshot_release(s);
	sf_reader_close(r);
	return rc;
}

const struct sf_cmd cmd_info = {
	.name = "info",
	.usage = "PREFIX [--json]",
	.summary = "show facts about the current (or a pinned) snapshot",
	.exec = info_exec,
};
