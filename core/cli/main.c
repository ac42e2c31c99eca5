/*
 * main.c -- the `shardyfs` command table and dispatcher.
 *
 *   shardyfs [GLOBAL OPTIONS] COMMAND [ARGS...]
 *
 * One command per file (cmd_*.c, after tmux); this file only holds the
 * table, --version/--help, and moves global options written before the
 * command name after it, so every command parses one argv with
 * cli_parse(). `mount` and `refresh` live in fs/ and are linked in only
 * when libfuse3 is present (SF_HAVE_FUSE), so the core library never
 * links FUSE.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli_common.h"

#if defined(SF_HAVE_FUSE) && defined(__has_include)
#if __has_include("sffs.h")
#include "sffs.h"
#define CLI_WITH_MOUNT 1
#endif
#endif

#ifdef CLI_WITH_MOUNT
static const struct sf_cmd cmd_mount = {
	.name = "mount",
	.usage = "PREFIX MOUNTPOINT [-f] [-d] [-o opt[,opt...]]",
	.summary = "mount a snapshot as a read-only filesystem (FUSE)",
	.exec = sffs_main,
};
static const struct sf_cmd cmd_refresh = {
	.name = "refresh",
	.usage = "MOUNTPOINT",
	.summary = "make a mounted snapshot follow _CURRENT now",
	.exec = sffs_refresh_main,
};
#endif

static const struct sf_cmd *const commands[] = {
	&cmd_get,
	&cmd_multiget,
	&cmd_info,
	&cmd_shards,
	&cmd_route,
	&cmd_history,
	&cmd_health,
	&cmd_build,
#ifdef CLI_WITH_MOUNT
	&cmd_mount,
	&cmd_refresh,
#endif
};
#define N_COMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *f)
{
	fprintf(f, "Usage: shardyfs [OPTIONS] COMMAND [ARGS...]\n\n"
		   "Reads shardyfusion sharded SQLite snapshots from s3://, "
		   "http(s):// and file:// prefixes.\n\nCommands:\n");
	for (size_t i = 0; i < N_COMMANDS; i++)
		fprintf(f, "  %-10s %s\n", commands[i]->name,
			commands[i]->summary);
	fprintf(f, "\nRun 'shardyfs COMMAND --help' for a command's options.\n"
		   "  --version   print the version\n"
		   "  --help      show this help\n\n"
		   "Exit status: 0 ok, 1 not found (--strict) or degraded, "
		   "2 error.\n");
}

static const struct sf_cmd *find_command(const char *name)
{
	for (size_t i = 0; i < N_COMMANDS; i++)
		if (!strcmp(commands[i]->name, name))
			return commands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	const struct sf_cmd *cmd;
	char **nargv;
	int i, nargc = 0;

	/* Skip global options written before the command name. */
	for (i = 1; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
		if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
			printf("shardyfs %s\n", SF_VERSION_STRING);
			return CLI_OK;
		}
		if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			usage(stdout);
			return CLI_OK;
		}
		if (!strcmp(argv[i], "--"))
			break;
		if (cli_global_takes_arg(argv[i]))
			i++;
	}
	if (i < argc && !strcmp(argv[i], "--"))
		i++;
	if (i >= argc) {
		usage(stderr);
		return CLI_ERROR;
	}
	cmd = find_command(argv[i]);
	if (!cmd) {
		fprintf(stderr, "shardyfs: unknown command '%s'\n", argv[i]);
		usage(stderr);
		return CLI_ERROR;
	}

	/* argv for the command: its name, the leading globals, the rest. */
	nargv = cli_xmalloc(((size_t)argc + 1) * sizeof(*nargv));
	nargv[nargc++] = argv[i];
	for (int j = 1; j < i; j++)
		if (strcmp(argv[j], "--") != 0)
			nargv[nargc++] = argv[j];
	for (int j = i + 1; j < argc; j++)
		nargv[nargc++] = argv[j];
	nargv[nargc] = NULL;

	int rc = cmd->exec(nargc, nargv);

	free(nargv);
	if (fflush(stdout) != 0 && rc == CLI_OK) {
		fprintf(stderr, "shardyfs: write error on stdout\n");
		rc = CLI_ERROR;
	}
	return rc;
}
