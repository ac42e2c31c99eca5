/*
 * cmd_history.c -- `shardyfs history PREFIX`: published manifests, newest
 * first, the one `_CURRENT` names marked with '*'. Any of them can be read
 * with --ref URL or --offset N on the other commands.
 */
#include <string.h>

#include "cli_common.h"

enum { OPT_JSON = 'j' };

static const struct option history_opts[] = {
	{"json", no_argument, NULL, OPT_JSON},
	{NULL, 0, NULL, 0},
};

static const char history_help[] = "  -j, --json             print JSON\n";

static int history_opt(void *ctx, int c, const char *arg)
{
	(void)arg;
	if (c != OPT_JSON)
		return CLI_ERROR;
	*(int *)ctx = 1;
	return 0;
}

static int history_exec(int argc, char **argv)
{
	int json = 0;
	struct cli_extra extra = {history_opts, history_opt, &json,
				  history_help};
	struct cli_common c;
	struct sf_reader *r = NULL;
	struct sf_history_entry *h = NULL;
	size_t n = 0;
	char err[512] = "";
	int rc;

	rc = cli_parse(&cmd_history, argc, argv, CLI_CONN | CLI_READ, &extra,
		       &c);
	if (rc)
		return rc == CLI_DONE ? CLI_OK : rc;
	if (c.nargs) {
		cli_errorf("history: unexpected argument '%s'", c.args[0]);
		return CLI_ERROR;
	}
	rc = cli_open_reader(&c, &r);
	if (rc)
		return rc;
	rc = sf_history(r, &h, &n, err, sizeof(err));
	if (rc) {
		cli_report(c.prefix, rc, err);
		rc = CLI_ERROR;
		goto out;
	}
	if (json) {
		json_t *arr = json_array();
		for (size_t i = 0; arr && i < n; i++) {
			json_t *o = json_object();
			json_object_set_new(o, "offset", json_integer((json_int_t)i));
			json_object_set_new(o, "timestamp",
					    json_string(h[i].timestamp ? h[i].timestamp : ""));
			json_object_set_new(o, "run_id",
					    json_string(h[i].run_id ? h[i].run_id : ""));
			json_object_set_new(o, "manifest_ref",
					    json_string(h[i].manifest_ref ? h[i].manifest_ref : ""));
			json_object_set_new(o, "current",
					    json_boolean(h[i].is_current));
			json_array_append_new(arr, o);
		}
		rc = cli_print_json(arr, JSON_INDENT(2));
	} else {
		for (size_t i = 0; i < n; i++)
			printf("%c %-27s  %-32s  %s\n",
			       h[i].is_current ? '*' : ' ',
			       h[i].timestamp ? h[i].timestamp : "-",
			       h[i].run_id ? h[i].run_id : "-",
			       h[i].manifest_ref ? h[i].manifest_ref : "-");
		rc = CLI_OK;
	}
out:
	sf_history_free(h, n);
	sf_reader_close(r);
	return rc;
}

const struct sf_cmd cmd_history = {
	.name = "history",
	.usage = "PREFIX [--json]",
	.summary = "list published manifests, newest first ('*' = current)",
	.exec = history_exec,
};
