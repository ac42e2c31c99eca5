/*
 * test_current.c -- current_parse() (FORMAT.md 2): the real fixtures'
 * `_CURRENT` files, extra fields, every required field missing or of the
 * wrong type, non-JSON, empty and oversized input, format_version.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "manifest.h"
#include "sf_test.h"

TestSuite(current, .timeout = 30);

static int parse(const char *json, struct sf_current *c, char *err,
		 size_t errlen)
{
	return current_parse((const uint8_t *)json, strlen(json), c, err,
			     errlen);
}

#define GOOD "{\"format_version\":1,\"manifest_content_type\":\"application/x-sqlite3\"," \
	"\"manifest_ref\":\"s3://b/p/manifests/2026-11-20T10:30:00.123456Z_run_id=9f2c/manifest\"," \
	"\"run_id\":\"9f2c\",\"updated_at\":\"2026-11-20T10:30:00.234567Z\"}"

Test(current, parses_the_documented_example)
{
	struct sf_current c;
	char err[256] = "";

	cr_assert_eq(parse(GOOD, &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.manifest_ref,
			 "s3://b/p/manifests/2026-11-20T10:30:00.123456Z_run_id=9f2c/manifest");
	cr_assert_str_eq(c.run_id, "9f2c");
	cr_assert_str_eq(c.updated_at, "2026-11-20T10:30:00.234567Z");
	cr_assert_str_eq(c.manifest_content_type, "application/x-sqlite3");
	cr_assert_eq(c.format_version, 1);
	current_clear(&c);
	cr_assert_null(c.manifest_ref);
	current_clear(&c); /* twice is harmless */
}

Test(current, parses_every_fixture)
{
	static const char *const names[] = {"u64", "utf8", "sparse", "raw"};

	for (size_t i = 0; i < 4; i++) {
		char rel[128], err[256] = "", want[256];
		struct sf_current c;
		uint8_t *buf;
		size_t len;
		char *path;

		snprintf(rel, sizeof(rel), "shardyfusion/%s/snapshot/_CURRENT",
			 names[i]);
		path = sft_data(rel);
		buf = sft_read_file(path, &len);
		cr_assert_not_null(buf, "%s", path);
		cr_assert_eq(current_parse(buf, len, &c, err, sizeof(err)), 0,
			     "%s: %s", names[i], err);
		snprintf(want, sizeof(want), "s3://sfcompat/golden/%s/manifests/",
			 names[i]);
		cr_assert_eq(strncmp(c.manifest_ref, want, strlen(want)), 0,
			     "%s", c.manifest_ref);
		cr_assert_not_null(strstr(c.manifest_ref, c.run_id));
		cr_assert_eq(c.format_version, 1);
		current_clear(&c);
		free(buf);
		free(path);
	}
}

Test(current, ignores_unknown_fields)
{
	struct sf_current c;
	char err[256] = "";
	const char *j = "{\"extra\":{\"nested\":[1,2,{}]},\"manifest_ref\":\"file:///x/m\","
			"\"run_id\":\"r\",\"updated_at\":\"u\",\"zzz\":null,"
			"\"manifest_content_type\":\"application/json\"}";

	cr_assert_eq(parse(j, &c, err, sizeof(err)), 0, "%s", err);
	cr_assert_str_eq(c.manifest_ref, "file:///x/m");
	/* Rollback writes application/json for a SQLite manifest: kept as is. */
	cr_assert_str_eq(c.manifest_content_type, "application/json");
	current_clear(&c);
}

Test(current, format_version_defaults_to_1)
{
	struct sf_current c;
	const char *j = "{\"manifest_ref\":\"m\",\"run_id\":\"r\",\"updated_at\":\"u\","
			"\"manifest_content_type\":\"t\"}";

	cr_assert_eq(parse(j, &c, NULL, 0), 0);
	cr_assert_eq(c.format_version, 1);
	current_clear(&c);
}

Test(current, keeps_a_newer_format_version)
{
	struct sf_current c;
	const char *j = "{\"manifest_ref\":\"m\",\"run_id\":\"r\",\"updated_at\":\"u\","
			"\"manifest_content_type\":\"t\",\"format_version\":3}";

	cr_assert_eq(parse(j, &c, NULL, 0), 0);
	cr_assert_eq(c.format_version, 3);
	current_clear(&c);
}

struct bad {
	char json[200];
	char why[48]; /* a word the message must contain */
};

ParameterizedTestParameters(current, rejects_malformed)
{
	static struct bad v[] = {
		/* each required field missing */
		{"{\"run_id\":\"r\",\"updated_at\":\"u\",\"manifest_content_type\":\"t\"}", "manifest_ref"},
		{"{\"manifest_ref\":\"m\",\"updated_at\":\"u\",\"manifest_content_type\":\"t\"}", "run_id"},
		{"{\"manifest_ref\":\"m\",\"run_id\":\"r\",\"manifest_content_type\":\"t\"}", "updated_at"},
		{"{\"manifest_ref\":\"m\",\"run_id\":\"r\",\"updated_at\":\"u\"}", "manifest_content_type"},
		/* wrong types */
		{"{\"manifest_ref\":7,\"run_id\":\"r\",\"updated_at\":\"u\",\"manifest_content_type\":\"t\"}", "manifest_ref"},
		{"{\"manifest_ref\":null,\"run_id\":\"r\",\"updated_at\":\"u\",\"manifest_content_type\":\"t\"}", "manifest_ref"},
		{"{\"manifest_ref\":\"m\",\"run_id\":[],\"updated_at\":\"u\",\"manifest_content_type\":\"t\"}", "run_id"},
		{"{\"manifest_ref\":\"m\",\"run_id\":\"r\",\"updated_at\":1,\"manifest_content_type\":\"t\"}", "updated_at"},
		{"{\"manifest_ref\":\"m\",\"run_id\":\"r\",\"updated_at\":\"u\",\"manifest_content_type\":{}}", "manifest_content_type"},
		{"{\"manifest_ref\":\"m\",\"run_id\":\"r\",\"updated_at\":\"u\",\"manifest_content_type\":\"t\",\"format_version\":\"1\"}", "format_version"},
		{"{\"manifest_ref\":\"m\",\"run_id\":\"r\",\"updated_at\":\"u\",\"manifest_content_type\":\"t\",\"format_version\":1.5}", "format_version"},
		{"{\"manifest_ref\":\"m\",\"run_id\":\"r\",\"updated_at\":\"u\",\"manifest_content_type\":\"t\",\"format_version\":0}", "format_version"},
		{"{\"manifest_ref\":\"m\",\"run_id\":\"r\",\"updated_at\":\"u\",\"manifest_content_type\":\"t\",\"format_version\":99999999999}", "format_version"},
		{"{\"manifest_ref\":\"\",\"run_id\":\"r\",\"updated_at\":\"u\",\"manifest_content_type\":\"t\"}", "empty"},
		/* NUL inside a string */
		{"{\"manifest_ref\":\"m\\u0000x\",\"run_id\":\"r\",\"updated_at\":\"u\",\"manifest_content_type\":\"t\"}", "JSON"},
		/* not an object, not JSON */
		{"[\"manifest_ref\"]", "object"},
		{"\"s3://b/p/manifest\"", "JSON"},
		{"s3://b/p/manifest", "JSON"},
		{"{\"manifest_ref\":\"m\"", "JSON"},
		{"{\"manifest_ref\":\"m\",\"run_id\":\"r\",\"updated_at\":\"u\",\"manifest_content_type\":\"t\"} x", "JSON"},
		{"   ", "JSON"},
		{"null", "JSON"},
	};
	return cr_make_param_array(struct bad, v, sizeof(v) / sizeof(v[0]));
}

ParameterizedTest(struct bad *v, current, rejects_malformed)
{
	struct sf_current c;
	char err[256] = "";

	cr_assert_eq(parse(v->json, &c, err, sizeof(err)), SF_ECURRENT,
		     "accepted: %s", v->json);
	cr_assert_not_null(strstr(err, v->why), "message \"%s\" lacks %s", err,
			   v->why);
	cr_assert_null(c.manifest_ref);
	cr_assert_null(c.run_id);
}

Test(current, rejects_empty_input)
{
	struct sf_current c;
	char err[256] = "";

	cr_assert_eq(current_parse((const uint8_t *)"", 0, &c, err,
				   sizeof(err)), SF_ECURRENT);
	cr_assert_not_null(strstr(err, "empty"), "%s", err);
	cr_assert_eq(current_parse(NULL, 0, &c, NULL, 0), SF_ECURRENT);
}

Test(current, rejects_huge_input)
{
	size_t n = SF_CURRENT_MAX_BYTES + 1;
	char *big = malloc(n + 1);
	struct sf_current c;
	char err[256] = "";
	const char *head = "{\"manifest_ref\":\"m\",\"run_id\":\"r\",\"updated_at\":\"u\","
			   "\"manifest_content_type\":\"t\",\"pad\":\"";

	cr_assert_not_null(big);
	memset(big, 'a', n);
	memcpy(big, head, strlen(head));
	memcpy(big + n - 2, "\"}", 2);
	big[n] = '\0';
	cr_assert_eq(current_parse((uint8_t *)big, n, &c, err, sizeof(err)),
		     SF_ECURRENT);
	cr_assert_not_null(strstr(err, "bytes"), "%s", err);
	/* One byte less fits the cap and parses. */
	memcpy(big + n - 3, "\"}", 2);
	cr_assert_eq(current_parse((uint8_t *)big, n - 1, &c, err, sizeof(err)),
		     0, "%s", err);
	current_clear(&c);
	free(big);
}

Test(current, rejects_deep_nesting_without_crashing)
{
	size_t depth = 50000;
	char *s = malloc(2 * depth + 1);
	struct sf_current c;

	cr_assert_not_null(s);
	memset(s, '[', depth);
	memset(s + depth, ']', depth);
	s[2 * depth] = '\0';
	/* Bigger than the cap anyway; a smaller nest is checked too. */
	cr_assert_eq(current_parse((uint8_t *)s, 2 * depth, &c, NULL, 0),
		     SF_ECURRENT);
	cr_assert_eq(current_parse((uint8_t *)s + depth - 10000, 20000, &c,
				   NULL, 0), SF_ECURRENT);
	free(s);
}

Test(current, null_output_is_an_argument_error)
{
	cr_assert_eq(current_parse((const uint8_t *)GOOD, strlen(GOOD), NULL,
				   NULL, 0), SF_EINVAL);
}
