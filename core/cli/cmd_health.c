/*
 * cmd_health.c -- `shardyfs health PREFIX [--staleness SECONDS]`: the
 * reader's health (FORMAT.md 8): healthy, degraded (snapshot older than
 * the staleness threshold, or the last refresh failed) or unhealthy (no
 * usable snapshot). Prints the status word first; exits 0, 1 or 2
 * accordingly. A prefix that cannot be opened at all is unhealthy.
 */
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"

struct health_args {
	int json;
	double staleness;
};

enum { OPT_JSON = 'j', OPT_STALENESS = CLI_OPT_BASE };

static const struct option health_opts[] = {
	{"json", no_argument, NULL, OPT_JSON},
	{"staleness", required_argument, NULL, OPT_STALENESS},
	{NULL, 0, NULL, 0},
};

static const char health_help[] =
	"  -j, --json             print JSON\n"
	"      --staleness SECONDS  degraded when the snapshot is older\n";

static int health_opt(void *ctx, int c, const char *arg)
{
	struct health_args *a = ctx;
	char *end = NULL;

	if (c == OPT_JSON) {
		a->json = 1;
		return 0;
	}
	if (c == OPT_STALENESS) {
		a->staleness = strtod(arg, &end);
		if (end == arg || *end || !(a->staleness > 0) ||
		    a->staleness > 1e12) {
			cli_errorf("health: bad --staleness '%s'", arg);
			return CLI_ERROR;
		}
		return 0;
	}
	return CLI_ERROR;
}

static const char *status_name(enum sf_health_status s)
{
	switch (s) {
	case SF_HEALTHY: return "healthy";
	case SF_DEGRADED: return "degraded";
	default: return "unhealthy";
	}
}

static int health_exec(int argc, char **argv)
{
	struct health_args a = {0, 0};
	struct cli_extra extra = {health_opts, health_opt, &a, health_help};
	struct cli_common c;
	struct sf_reader *r = NULL;
	struct sf_health h;
	int rc;

	rc = cli_parse(&cmd_health, argc, argv, CLI_CONN | CLI_READ, &extra,
		       &c);
	if (rc)
		return rc == CLI_DONE ? CLI_OK : rc;
	if (c.nargs) {
		cli_errorf("health: unexpected argument '%s'", c.args[0]);
		return CLI_ERROR;
	}
	c.opt.staleness_s = a.staleness;
	memset(&h, 0, sizeof(h));
	if (cli_open_reader(&c, &r)) {
		h.status = SF_UNHEALTHY;
		snprintf(h.message, sizeof(h.message), "cannot open %s",
			 c.prefix);
	} else if (sf_health(r, a.staleness, &h) != 0) {
		h.status = SF_UNHEALTHY;
		if (!h.message[0])
			snprintf(h.message, sizeof(h.message),
				 "health check failed");
	}
	if (a.json) {
		json_t *o = json_object();
		json_object_set_new(o, "status",
				    json_string(status_name(h.status)));
		json_object_set_new(o, "age_s", json_real(h.age_s));
		json_object_set_new(o, "since_refresh_s",
				    json_real(h.since_refresh_s));
		json_object_set_new(o, "last_refresh_error",
				    json_integer(h.last_refresh_error));
		json_object_set_new(o, "message", json_string(h.message));
		if (cli_print_json(o, JSON_INDENT(2)))
			h.status = SF_UNHEALTHY;
	} else {
		printf("%s", status_name(h.status));
		if (h.message[0])
			printf(": %s", h.message);
		printf("\n");
		if (r)
			printf("age: %.1fs\n", h.age_s);
	}
	sf_reader_close(r);
	switch (h.status) {
	case SF_HEALTHY: return CLI_OK;
	case SF_DEGRADED: return CLI_DEGRADED;
	default: return CLI_ERROR;
	}
}

const struct sf_cmd cmd_health = {
	.name = "health",
	.usage = "PREFIX [--staleness SECONDS] [--json]",
	.summary = "check snapshot health (exit 0 healthy, 1 degraded, 2 unhealthy)",
	.exec = health_exec,
};
