/*
 * sf_test.h -- helpers shared by the Criterion tests: private temp dirs,
 * paths to the fixture snapshots, the moto S3 server started by the `moto`
 * ctest fixture (tests/helpers/moto.sh), unique bucket names, running the
 * CLI, and uploading a local snapshot directory to a store.
 *
 * Criterion forks tests and runs them in parallel: nothing here depends on
 * a global name, port or bucket; every bucket/dir name is unique.
 */
#ifndef SF_TEST_H
#define SF_TEST_H

#include <stddef.h>
#include <stdint.h>

#include "shardyfs.h"

/* A fresh private directory under $TMPDIR (malloc'd path). */
char *sft_tmpdir(void);
/* rm -rf path. */
void sft_rmrf(const char *path);
/* Absolute path of tests/data/<rel> (malloc'd). */
char *sft_data(const char *rel);
/* file:// URL of a fixture snapshot, e.g. sft_fixture_url("utf8"). */
char *sft_fixture_url(const char *name);

/* Connection facts of the moto server (from moto.env). */
struct sft_s3 {
	char endpoint[256];
	char key[128];
	char secret[128];
	char region[32];
};
/* Reads moto.env. Fails the test (cr_fail) when the server is not running,
 * unless SF_TEST_ALLOW_SKIP is set, in which case the test is skipped. */
void sft_s3_env(struct sft_s3 *out);
/* Fills options with the endpoint, keys and region (strings borrowed from s3). */
void sft_s3_options(const struct sft_s3 *s3, struct sf_options *opt);
/* A unique, valid bucket name (malloc'd). */
char *sft_unique_bucket(void);
/* Creates a bucket on moto (fails the test on error). */
void sft_s3_mkbucket(const struct sft_s3 *s3, const char *bucket);
/* Uploads every file under local_dir to url_prefix/<relative path>. */
int sft_upload_dir(const struct sft_s3 *s3, const char *local_dir,
		   const char *url_prefix);
/* Environment assignments for the CLI: "AWS_ENDPOINT_URL=... AWS_ACCESS_KEY_ID=..." (malloc'd) */
char *sft_s3_cli_env(const struct sft_s3 *s3);

/* s as one single-quoted shell word (malloc'd). */
char *sft_shq(const char *s);

/* Path of the shardyfs CLI binary. */
const char *sft_cli(void);
/* Runs `sh -c cmd`; captures stdout into *out (malloc'd, NUL-terminated,
 * may be NULL) and returns the exit status (or -1). stderr goes to *errout
 * when non-NULL. */
int sft_run(const char *cmd, char **out, size_t *outlen, char **errout);

/* Reads a whole local file (malloc'd, NUL-terminated). */
uint8_t *sft_read_file(const char *path, size_t *len);
int sft_write_file(const char *path, const void *data, size_t len);

/* One line of a fixture's answers.tsv. */
struct sft_answer {
	uint8_t *key;      /* stored bytes (from key_hex) */
	size_t klen;
	char *user_key;    /* as given to the CLI */
	uint64_t vlen;
	char sha256[65];
};
/* Parses tests/data/shardyfusion/<name>/answers.tsv. */
struct sft_answer *sft_answers(const char *name, size_t *n);
void sft_answers_free(struct sft_answer *a, size_t n);
/* Hex SHA-256 of a buffer into out[65]. */
void sft_sha256_hex(const void *data, size_t len, char out[65]);

#endif
