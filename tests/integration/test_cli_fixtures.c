/*
 * test_cli_fixtures.c -- the `shardyfs` binary on the four real snapshots
 * written by shardyfusion (tests/data/shardyfusion): read in place through
 * file:// (both access modes, exercising URL rebasing since the manifests
 * still name s3://sfcompat/...) and after uploading them object by object
 * to moto S3. Every key of answers.tsv is read with `multiget` (values as
 * hex, checked by length and SHA-256), a few with `get` into a file, the
 * absent keys read as not found, and info/shards/route/history/health
 * agree with info.json.
 */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sf_test.h"
#include "shardyfs.h"

TestSuite(cli_fixtures, .timeout = 600);

struct fx {
	const char *name;
	char *env;
	char *prefix;
	char *dir;
	char *bucket;
	json_t *info;
	int hex_keys; /* raw: keys are given as hex */
};

static void fx_init(struct fx *f, const char *name, int s3)
{
	char *rel = NULL, *path;
	json_error_t je;

	memset(f, 0, sizeof(*f));
	f->name = name;
	f->dir = sft_tmpdir();
	f->hex_keys = !strcmp(name, "raw");
	cr_assert(asprintf(&rel, "shardyfusion/%s/info.json", name) > 0);
	path = sft_data(rel);
	f->info = json_load_file(path, 0, &je);
	cr_assert_not_null(f->info, "%s: %s", path, je.text);
	free(path);
	free(rel);
	if (s3) {
		struct sft_s3 conn;
		char *local = NULL;

		sft_s3_env(&conn);
		f->bucket = sft_unique_bucket();
		sft_s3_mkbucket(&conn, f->bucket);
		cr_assert(asprintf(&f->prefix, "s3://%s/golden/%s", f->bucket,
				   name) > 0);
		cr_assert(asprintf(&rel, "shardyfusion/%s/snapshot", name) > 0);
		local = sft_data(rel);
		cr_assert_eq(sft_upload_dir(&conn, local, f->prefix), 0);
		free(local);
		free(rel);
		f->env = sft_s3_cli_env(&conn);
	} else {
		f->prefix = sft_fixture_url(name);
		f->env = strdup("");
	}
}

static void fx_fini(struct fx *f)
{
	json_decref(f->info);
	sft_rmrf(f->dir);
	free(f->dir);
	free(f->env);
	free(f->prefix);
	free(f->bucket);
}

static int cli(const struct fx *f, char **out, size_t *outlen, char **err,
	       const char *fmt, ...) __attribute__((format(printf, 5, 6)));
static int cli(const struct fx *f, char **out, size_t *outlen, char **err,
	       const char *fmt, ...)
{
	va_list ap;
	char *args = NULL, *cmd = NULL;
	int rc;

	va_start(ap, fmt);
	cr_assert(vasprintf(&args, fmt, ap) >= 0);
	va_end(ap);
	cr_assert(asprintf(&cmd, "%s %s %s", f->env, sft_cli(), args) > 0);
	rc = sft_run(cmd, out, outlen, err);
	free(args);
	free(cmd);
	return rc;
}

static uint8_t *unhex(const char *s, size_t *n)
{
	size_t l = strlen(s);
	uint8_t *o = malloc(l / 2 + 1);
	for (size_t i = 0; i < l / 2; i++) {
		unsigned v;
		cr_assert_eq(sscanf(s + 2 * i, "%2x", &v), 1);
		o[i] = (uint8_t)v;
	}
	*n = l / 2;
	return o;
}

/* Every answer through multiget; the absent keys are null. */
static void read_all(const struct fx *f, const char *mode)
{
	size_t n = 0, outlen = 0;
	struct sft_answer *a = sft_answers(f->name, &n);
	json_t *absent = json_object_get(f->info, "absent_keys");
	char *kf = NULL, *out = NULL, *err = NULL;
	FILE *fp;
	int rc;

	cr_assert_gt(n, 0);
	cr_assert(asprintf(&kf, "%s/keys-%s.txt", f->dir, mode) > 0);
	fp = fopen(kf, "w");
	for (size_t i = 0; i < n; i++)
		fprintf(fp, "%s\n", a[i].user_key);
	for (size_t i = 0; i < json_array_size(absent); i++)
		fprintf(fp, "%s\n", json_string_value(json_array_get(absent, i)));
	fclose(fp);

	rc = cli(f, &out, &outlen, &err,
		 "multiget %s %s --output jsonl --value-encoding hex "
		 "--access-mode %s --cache-dir %s/cache-%s < %s",
		 f->prefix, f->hex_keys ? "--key-hex" : "", mode, f->dir, mode,
		 kf);
	cr_assert_eq(rc, 0, "%s %s: multiget exit %d: %s", f->name, mode, rc,
		     err);
	char *line = out;
	for (size_t i = 0; i < n + json_array_size(absent); i++) {
		char *nl = strchr(line, '\n');
		cr_assert_not_null(nl, "%s: only %zu lines", f->name, i);
		*nl = 0;
		json_t *o = json_loads(line, 0, NULL);
		cr_assert_not_null(o, "%s: bad line %s", f->name, line);
		json_t *v = json_object_get(o, "value");
		if (i >= n) {
			cr_assert(json_is_null(v), "%s: absent key %s found",
				  f->name, line);
		} else {
			cr_assert(json_is_string(v), "%s: key %s not found",
				  f->name, a[i].user_key);
			size_t vlen;
			uint8_t *val = unhex(json_string_value(v), &vlen);
			char sha[65];
			sft_sha256_hex(val, vlen, sha);
			cr_assert_eq(vlen, a[i].vlen, "%s: length of %s",
				     f->name, a[i].user_key);
			cr_assert_str_eq(sha, a[i].sha256, "%s: sha256 of %s",
					 f->name, a[i].user_key);
			free(val);
		}
		json_decref(o);
		line = nl + 1;
	}
	free(out);
	free(err);
	free(kf);

	/* get into a file, for the first, the last and the longest value. */
	size_t pick[3] = {0, n - 1, 0};
	for (size_t i = 0; i < n; i++)
		if (a[i].vlen > a[pick[2]].vlen)
			pick[2] = i;
	for (int p = 0; p < 3; p++) {
		const struct sft_answer *x = &a[pick[p]];
		char *q = sft_shq(x->user_key), *vf = NULL;
		cr_assert(asprintf(&vf, "%s/value", f->dir) > 0);
		rc = cli(f, NULL, NULL, &err,
			 "get %s %s --access-mode %s --cache-dir %s/cache-%s "
			 "-- %s > %s",
			 f->prefix, f->hex_keys ? "--key-hex" : "", mode, f->dir,
			 mode, q, vf);
		cr_assert_eq(rc, 0, "%s: get %s: %s", f->name, x->user_key, err);
		size_t vlen = 0;
		uint8_t *val = sft_read_file(vf, &vlen);
		char sha[65];
		sft_sha256_hex(val, vlen, sha);
		cr_assert_eq(vlen, x->vlen, "%s: get %s length", f->name,
			     x->user_key);
		cr_assert_str_eq(sha, x->sha256);
		free(val);
		free(vf);
		free(q);
		free(err);
	}

	/* An absent key with --strict: exit 1 and "not found". */
	char *q = sft_shq(json_string_value(json_array_get(absent, 0)));
	rc = cli(f, &out, NULL, &err, "get --strict %s %s --access-mode %s -- %s",
		 f->prefix, f->hex_keys ? "--key-hex" : "", mode, q);
	cr_assert_eq(rc, 1, "%s: absent key: exit %d: %s", f->name, rc, err);
	cr_assert(strstr(err, "not found") != NULL, "%s", err);
	free(out);
	free(err);
	free(q);
	sft_answers_free(a, n);
}

/* info, shards, route, history, health against info.json. */
static void introspect(const struct fx *f)
{
	char *out = NULL, *err = NULL;
	int rc;
	json_int_t num_dbs = json_integer_value(json_object_get(f->info, "num_dbs"));
	const char *run_id = json_string_value(json_object_get(f->info, "run_id"));
	const char *enc = json_string_value(json_object_get(f->info, "key_encoding"));

	rc = cli(f, &out, NULL, &err, "info %s --json", f->prefix);
	cr_assert_eq(rc, 0, "%s: info: %s", f->name, err);
	json_t *in = json_loads(out, 0, NULL);
	cr_assert_not_null(in, "%s", out);
	cr_assert_eq(json_integer_value(json_object_get(in, "num_dbs")), num_dbs);
	cr_assert_str_eq(json_string_value(json_object_get(in, "run_id")), run_id);
	cr_assert_str_eq(json_string_value(json_object_get(in, "key_encoding")), enc);
	cr_assert_eq(json_integer_value(json_object_get(in, "total_rows")),
		     json_integer_value(json_object_get(f->info, "num_keys")));
	cr_assert_eq(json_integer_value(json_object_get(in, "format_version")), 4);
	cr_assert(json_is_true(json_object_get(in, "has_sidecars")));
	json_decref(in);
	free(out);
	free(err);

	rc = cli(f, &out, NULL, &err, "info %s", f->prefix);
	cr_assert_eq(rc, 0);
	cr_assert(strstr(out, run_id) != NULL, "%s", out);
	free(out);
	free(err);

	rc = cli(f, &out, NULL, &err, "shards %s --json", f->prefix);
	cr_assert_eq(rc, 0, "%s: shards: %s", f->name, err);
	json_t *arr = json_loads(out, JSON_ALLOW_NUL, NULL);
	cr_assert_eq((json_int_t)json_array_size(arr), num_dbs, "%s", out);
	json_t *empties = json_object_get(f->info, "empty_db_ids");
	size_t nempty = 0;
	for (size_t i = 0; i < json_array_size(arr); i++) {
		json_t *s = json_array_get(arr, i);
		int empty = json_is_true(json_object_get(s, "empty"));
		int want = 0;
		for (size_t j = 0; j < json_array_size(empties); j++)
			want |= json_integer_value(json_array_get(empties, j)) ==
				(json_int_t)i;
		cr_assert_eq(empty, want, "%s: db %zu", f->name, i);
		nempty += empty;
		if (!empty) {
			const char *u = json_string_value(json_object_get(s, "db_url"));
			cr_assert(u && strncmp(u, f->prefix, strlen(f->prefix)) == 0,
				  "%s: db_url rebased onto %s: %s", f->name,
				  f->prefix, u);
		}
	}
	cr_assert_eq(nempty, json_array_size(empties));
	json_decref(arr);
	free(out);
	free(err);

	rc = cli(f, &out, NULL, &err, "shards %s", f->prefix);
	cr_assert_eq(rc, 0);
	free(out);
	free(err);

	/* route: the answer's key lands on a non-empty shard. */
	size_t n;
	struct sft_answer *a = sft_answers(f->name, &n);
	char *q = sft_shq(a[n / 2].user_key);
	rc = cli(f, &out, NULL, &err, "route %s %s --json -- %s", f->prefix,
		 f->hex_keys ? "--key-hex" : "", q);
	cr_assert_eq(rc, 0, "%s: route: %s", f->name, err);
	json_t *r = json_loads(out, JSON_ALLOW_NUL, NULL);
	cr_assert_not_null(r, "%s", out);
	cr_assert(json_is_false(json_object_get(r, "empty")), "%s", out);
	json_decref(r);
	free(out);
	free(err);
	free(q);
	sft_answers_free(a, n);

	rc = cli(f, &out, NULL, &err, "history %s", f->prefix);
	cr_assert_eq(rc, 0, "%s: history: %s", f->name, err);
	cr_assert_eq(out[0], '*', "%s", out);
	cr_assert(strstr(out, run_id) != NULL, "%s", out);
	cr_assert(strchr(out, '\n') == out + strlen(out) - 1, "one manifest: %s",
		  out);
	free(out);
	free(err);

	rc = cli(f, &out, NULL, &err, "health %s", f->prefix);
	cr_assert_eq(rc, 0, "%s: health: %s %s", f->name, out, err);
	cr_assert(strncmp(out, "healthy", 7) == 0, "%s", out);
	free(out);
	free(err);
}

static void on_file(const char *name)
{
	struct fx f;

	fx_init(&f, name, 0);
	read_all(&f, "download");
	read_all(&f, "range");
	introspect(&f);
	fx_fini(&f);
}

static void on_s3(const char *name)
{
	struct fx f;

	fx_init(&f, name, 1);
	read_all(&f, "range");
	read_all(&f, "download");
	introspect(&f);
	fx_fini(&f);
}

Test(cli_fixtures, reads_utf8_on_file) { on_file("utf8"); }
Test(cli_fixtures, reads_u64_on_file) { on_file("u64"); }
Test(cli_fixtures, reads_sparse_on_file) { on_file("sparse"); }
Test(cli_fixtures, reads_raw_on_file) { on_file("raw"); }
Test(cli_fixtures, reads_utf8_on_s3) { on_s3("utf8"); }
Test(cli_fixtures, reads_u64_on_s3) { on_s3("u64"); }
Test(cli_fixtures, reads_sparse_on_s3) { on_s3("sparse"); }
Test(cli_fixtures, reads_raw_on_s3) { on_s3("raw"); }
