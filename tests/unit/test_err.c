/*
 * test_err.c -- error codes and messages: every SF_E* code has its own
 * name, details are formatted into the caller's buffer, and credentials
 * embedded in URLs never reach a message or a log line.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "err.h"
#include "shardyfs.h"

TestSuite(err, .timeout = 60);

Test(err, every_code_has_a_distinct_name)
{
	const int codes[] = {0, SF_NOTFOUND, SF_ENOMEM, SF_EINVAL, SF_EIO,
			     SF_ETIMEDOUT, SF_EHTTP_403, SF_EHTTP_404,
			     SF_EHTTP_412, SF_EHTTP_416, SF_EHTTP, SF_ENET,
			     SF_ENOSNAPSHOT, SF_ECURRENT, SF_EMANIFEST,
			     SF_EUNSUPPORTED, SF_EKEY, SF_ECORRUPT, SF_ECLOSED,
			     SF_EAUTH, SF_ETOOBIG, SF_EURL};
	size_t n = sizeof(codes) / sizeof(codes[0]);

	for (size_t i = 0; i < n; i++) {
		cr_assert_str_neq(sf_strerror(codes[i]), "unknown error");
		for (size_t j = 0; j < i; j++)
			cr_assert_str_neq(sf_strerror(codes[i]), sf_strerror(codes[j]));
	}
	cr_assert_str_eq(sf_strerror(-99999), "unknown error");
}

Test(err, errf_returns_the_code_and_tolerates_no_buffer)
{
	char buf[16];
	cr_assert_eq(sf_errf(NULL, 0, SF_EIO, "x %d", 1), SF_EIO);
	cr_assert_eq(sf_errf(buf, sizeof(buf), SF_EKEY, "a long message %s", "truncated"), SF_EKEY);
	cr_assert_eq(strlen(buf), sizeof(buf) - 1);
}

Test(err, userinfo_in_urls_is_scrubbed)
{
	char buf[256];

	sf_errf(buf, sizeof(buf), SF_EIO, "GET https://alice:hunter2-secret@example.com/a?b=c failed");
	cr_assert(strstr(buf, "hunter2") == NULL, "%s", buf);
	cr_assert(strstr(buf, "alice") == NULL, "%s", buf);
	cr_assert(strstr(buf, "https://") != NULL && strstr(buf, "@example.com/a") != NULL, "%s", buf);

	sf_errf(buf, sizeof(buf), SF_EIO, "s3://bucket/key and http://u:p@h/ and file:///x@y");
	cr_assert(strstr(buf, "u:p") == NULL, "%s", buf);
	cr_assert(strstr(buf, "s3://bucket/key") != NULL, "%s", buf);
	cr_assert(strstr(buf, "file:///x@y") != NULL, "path '@' is not userinfo: %s", buf);

	strcpy(buf, "inner https://k:s@h/x");
	sf_err_prefix(buf, sizeof(buf), "outer http://a:b@c");
	cr_assert(strstr(buf, "k:s") == NULL && strstr(buf, "a:b") == NULL, "%s", buf);
}

Test(err, a_reader_never_echoes_url_credentials)
{
	struct sf_options opt;
	struct sf_reader *r = NULL;
	char err[1024] = "";

	sf_options_init(&opt);
	opt.max_attempts = 1;
	opt.connect_timeout_ms = 300;
	opt.log_level = SF_LOG_ERROR;
	int rc = sf_reader_open(&r, "http://alice:hunter2-secret@127.0.0.1:9/snap",
				&opt, err, sizeof(err));
	cr_assert(rc < 0);
	cr_assert(strstr(err, "hunter2") == NULL, "%s", err);
}
