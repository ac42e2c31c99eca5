/*
 * cli_common.h -- what every `shardyfs` command shares: the command record
 * held in main.c's table, the global options (connection, cache, pinning,
 * logging) parsed in one place with getopt_long, opening a reader, turning
 * user text into keys, and the exit-code and message conventions.
 *
 * The CLI sees only the public API (shardyfs.h), the way curl's src/ uses
 * lib/. Unlike the library, the CLI may exit on allocation failure
 * (cli_xmalloc and friends).
 *
 * Exit codes: 0 ok; 1 not found (with --strict) or degraded; 2 any error.
 * Messages go to stderr as "shardyfs: <message>".
 */
#ifndef SF_CLI_COMMON_H
#define SF_CLI_COMMON_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <jansson.h>

#include "shardyfs.h"

#define CLI_OK 0
#define CLI_NOTFOUND 1
#define CLI_DEGRADED 1
#define CLI_ERROR 2
/* Returned by cli_parse() when the command is done (after --help): the
 * caller exits with CLI_OK. */
#define CLI_DONE (-1)

/* One command: main.c holds the table of these. exec() gets argv with
 * argv[0] = the command name and returns the process exit code. */
struct sf_cmd {
	const char *name;
	const char *usage;   /* arguments after the name, one line */
	const char *summary; /* one line for `shardyfs --help` */
	int (*exec)(int argc, char **argv);
};

extern const struct sf_cmd cmd_get;
extern const struct sf_cmd cmd_multiget;
extern const struct sf_cmd cmd_info;
extern const struct sf_cmd cmd_shards;
extern const struct sf_cmd cmd_route;
extern const struct sf_cmd cmd_history;
extern const struct sf_cmd cmd_health;
extern const struct sf_cmd cmd_build;

/* Which global options a command accepts. */
#define CLI_CONN 0x1 /* --endpoint-url --region --profile --no-sign-request
			--addressing-style --log-level */
#define CLI_READ 0x2 /* --access-mode --cache-dir --cache-size --ref
			--offset, and a PREFIX as first argument */

/* A command's own options: long options (terminated by a zero entry) with
 * `val` below 256 or in [CLI_OPT_BASE, 1000), and the handler called for
 * each. The handler returns 0, or CLI_ERROR after printing a message. */
#define CLI_OPT_BASE 512
struct cli_extra {
	const struct option *longopts;
	int (*handle)(void *ctx, int c, const char *arg);
	void *ctx;
	const char *help; /* lines describing the command's options */
};

/* Result of parsing: options ready for sf_reader_open()/sf_builder_open(),
 * the PREFIX (for CLI_READ commands) and the remaining arguments.
 * Strings point into argv. */
struct cli_common {
	struct sf_options opt;
	const char *prefix;
	char **args;
	int nargs;
};

/*
 * Parses argv (argv[0] is the command name) for `cmd`. Returns 0 to go
 * on, CLI_DONE after --help (usage printed: exit with CLI_OK), or
 * CLI_ERROR after a usage error (message printed).
 */
int cli_parse(const struct sf_cmd *cmd, int argc, char **argv, unsigned flags,
	      const struct cli_extra *extra, struct cli_common *out);

/* Whether argument `a` (as found before the command name) is a global
 * option that takes its value in the next argument. */
int cli_global_takes_arg(const char *a);

/* Prints "Usage: shardyfs NAME USAGE" and the option help to f. */
void cli_usage(FILE *f, const struct sf_cmd *cmd, unsigned flags,
	       const struct cli_extra *extra);

/* Opens a reader on c->prefix. On failure prints the error ("no snapshot
 * published at PREFIX" for a missing _CURRENT) and returns CLI_ERROR. */
int cli_open_reader(const struct cli_common *c, struct sf_reader **out);

/* Opens a reader and borrows its snapshot: on 0 the caller owns both
 * (sf_snapshot_release, then sf_reader_close). Else CLI_ERROR, printed. */
int cli_open_snapshot(const struct cli_common *c, struct sf_reader **r,
		      struct sf_snapshot **s);

/* One shard as a JSON object (db_id, empty, row_count, db_bytes, min_key,
 * max_key, db_url, checkpoint_id, attempt). New reference. */
json_t *cli_shard_json(const struct sf_shard_info *si);

/* Prints a JSON value and a newline to stdout (flags as json_dumpf).
 * Takes the reference. Returns 0 or CLI_ERROR (printed). */
int cli_print_json(json_t *j, size_t flags);

/* Prints "shardyfs: <fmt...>" and a newline to stderr. */
void cli_errorf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints "shardyfs: <what>: <err or sf_strerror(code)>". */
void cli_report(const char *what, int code, const char *err);

/*
 * Turns user text into a key of a snapshot of encoding enc. With hex,
 * `text` is hex: the stored bytes for utf8/raw, or exactly 4/8 big-endian
 * bytes for u32be/u64be. *buf (malloc'd, caller frees, may stay NULL)
 * holds bytes the key points at. Returns 0, or CLI_ERROR with a message
 * naming the key.
 */
int cli_key(enum sf_key_encoding enc, const char *text, size_t len, int hex,
	    struct sf_key *key, uint8_t **buf);

/* Hex and base64 codecs (malloc'd, NUL-terminated). cli_unhex returns -1
 * on bad input. */
char *cli_hex(const void *p, size_t n);
int cli_unhex(const char *s, size_t n, uint8_t **out, size_t *outlen);
char *cli_base64(const void *p, size_t n);
int cli_unbase64(const char *s, size_t n, uint8_t **out, size_t *outlen);

/* Whether p[0..n) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int cli_utf8_valid(const void *p, size_t n);

/*
 * Reads one '\n'-terminated line (binary-safe, without the '\n') into *buf
 * (grown with cli_xrealloc, caller frees; *cap is its size), refusing
 * lines longer than max bytes. Returns 1 with *len, 0 at the end of input,
 * or -1 on a read error or an over-long line (message printed).
 */
int cli_read_line(FILE *f, char **buf, size_t *cap, size_t *len, size_t max);

/* Writes all bytes to stdout; returns 0 or -1 (message printed). */
int cli_write(const void *p, size_t n);

/* Allocation that exits the process on failure (CLI only). */
void *cli_xmalloc(size_t n);
void *cli_xrealloc(void *p, size_t n);
char *cli_xstrdup(const char *s);

/* Parses a non-negative integer / size with optional K, M, G, T suffix
 * (powers of 1024). Returns 0 or -1. */
int cli_parse_u64(const char *s, uint64_t *out);
int cli_parse_size(const char *s, uint64_t *out);

#endif
