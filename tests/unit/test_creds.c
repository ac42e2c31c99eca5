/*
 * test_creds.c -- the credential chain, region and endpoint resolution of
 * core/store/creds.c: explicit options, environment (AWS_* before S3_*),
 * profiles from temp ~/.aws/credentials and ~/.aws/config files (and the
 * AWS_SHARED_CREDENTIALS_FILE / AWS_CONFIG_FILE overrides), and IMDSv2
 * against a tiny metadata server on 127.0.0.1 run by the test itself.
 * Each test runs in its own process (Criterion forks), so environment
 * changes stay local; every test starts from a scrubbed environment.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "creds.h"
#include "sf_test.h"

static char *home;

static const char *const scrub[] = {
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_SESSION_TOKEN",
	"AWS_PROFILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_CONFIG_FILE",
	"AWS_REGION", "S3_REGION", "AWS_DEFAULT_REGION",
	"AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL", "SLATEDB_S3_ENDPOINT_URL",
	"AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_DISABLED",
};

static void setup(void)
{
	char *aws = NULL;
	size_t i;

	for (i = 0; i < sizeof(scrub) / sizeof(scrub[0]); i++)
		unsetenv(scrub[i]);
	home = sft_tmpdir();
	setenv("HOME", home, 1);
	cr_assert(asprintf(&aws, "%s/.aws", home) > 0);
	cr_assert_eq(mkdir(aws, 0700), 0);
	free(aws);
	/* never reach a real metadata service from a unit test */
	setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
}

static void teardown(void)
{
	sft_rmrf(home);
	free(home);
}

TestSuite(creds, .init = setup, .fini = teardown, .timeout = 60);

static void write_home(const char *rel, const char *text)
{
	char *p = NULL;

	cr_assert(asprintf(&p, "%s/%s", home, rel) > 0);
	cr_assert_eq(sft_write_file(p, text, strlen(text)), 0);
	free(p);
}

static const char CREDS_FILE[] =
	"# comment\n"
	"[default]\n"
	"aws_access_key_id = DEFAULTID\n"
	"aws_secret_access_key = defaultsecret\n"
	"\n"
	"[work]\n"
	"aws_access_key_id=WORKID\n"
	"aws_secret_access_key=worksecret\n"
	"aws_session_token = worktoken\n";

static const char CONFIG_FILE[] =
	"[default]\n"
	"region = eu-north-1\n"
	"[profile work]\n"
	"region = ap-south-2\n"
	"aws_access_key_id = CONFIGWORKID\n"
	"s3 =\n"
	"  endpoint_url = http://s3.work.example:9000\n"
	"endpoint_url = http://generic.work.example\n"
	"[profile cfgonly]\n"
	"aws_access_key_id = CFGID\n"
	"aws_secret_access_key = cfgsecret\n"
	"endpoint_url = http://cfgonly.example\n";

Test(creds, explicit_options_win)
{
	struct store_conf c = {0};
	struct creds cr;
	char err[256];

	setenv("AWS_ACCESS_KEY_ID", "ENVID", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	c.access_key_id = "OPTID";
	c.secret_access_key = "optsecret";
	c.session_token = "opttoken";
	cr_assert_eq(creds_resolve(&c, &cr, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(cr.access_key_id, "OPTID");
	cr_expect_str_eq(cr.secret_access_key, "optsecret");
	cr_expect_str_eq(cr.session_token, "opttoken");
	cr_expect_str_eq(cr.source, "options");
}

Test(creds, half_explicit_options_are_an_error)
{
	struct store_conf c = {0};
	struct creds cr;
	char err[256];

	c.access_key_id = "OPTID";
	cr_expect_eq(creds_resolve(&c, &cr, err, sizeof(err)), SF_EAUTH);
}

Test(creds, aws_env_beats_s3_env_and_profile)
{
	struct store_conf c = {0};
	struct creds cr;
	char err[256];

	write_home(".aws/credentials", CREDS_FILE);
	setenv("S3_ACCESS_KEY_ID", "S3ID", 1);
	setenv("S3_SECRET_ACCESS_KEY", "s3secret", 1);
	setenv("AWS_ACCESS_KEY_ID", "ENVID", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	setenv("AWS_SESSION_TOKEN", "envtoken", 1);
	cr_assert_eq(creds_resolve(&c, &cr, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(cr.access_key_id, "ENVID");
	cr_expect_str_eq(cr.session_token, "envtoken");
	cr_expect_str_eq(cr.source, "environment");

	unsetenv("AWS_ACCESS_KEY_ID");
	cr_assert_eq(creds_resolve(&c, &cr, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(cr.access_key_id, "S3ID");
	cr_expect_str_eq(cr.secret_access_key, "s3secret");
	cr_expect_str_eq(cr.session_token, "");
}

Test(creds, default_and_named_profiles)
{
	struct store_conf c = {0};
	struct creds cr;
	char err[256];

	write_home(".aws/credentials", CREDS_FILE);
	write_home(".aws/config", CONFIG_FILE);
	cr_assert_eq(creds_resolve(&c, &cr, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(cr.access_key_id, "DEFAULTID");
	cr_expect_str_eq(cr.secret_access_key, "defaultsecret");
	cr_expect_str_eq(cr.source, "profile default");

	/* credentials file beats config for keys */
	setenv("AWS_PROFILE", "work", 1);
	cr_assert_eq(creds_resolve(&c, &cr, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(cr.access_key_id, "WORKID");
	cr_expect_str_eq(cr.session_token, "worktoken");

	/* keys only in config ("[profile x]") */
	setenv("AWS_PROFILE", "cfgonly", 1);
	cr_assert_eq(creds_resolve(&c, &cr, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(cr.access_key_id, "CFGID");
	cr_expect_str_eq(cr.secret_access_key, "cfgsecret");

	/* an unknown profile has nothing, and IMDS is disabled */
	setenv("AWS_PROFILE", "nope", 1);
	cr_expect_eq(creds_resolve(&c, &cr, err, sizeof(err)), SF_EAUTH);
	cr_expect(strstr(err, "nope") != NULL, "%s", err);
}

Test(creds, explicit_profile_option_beats_environment)
{
	struct store_conf c = {0};
	struct creds cr;
	char err[256];

	write_home(".aws/credentials", CREDS_FILE);
	setenv("AWS_ACCESS_KEY_ID", "ENVID", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "envsecret", 1);
	c.profile = "work";
	cr_assert_eq(creds_resolve(&c, &cr, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(cr.access_key_id, "WORKID");
	/* but AWS_PROFILE (not an option) comes after the environment */
	c.profile = NULL;
	setenv("AWS_PROFILE", "work", 1);
	cr_assert_eq(creds_resolve(&c, &cr, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(cr.access_key_id, "ENVID");
}

Test(creds, shared_file_locations_can_be_overridden)
{
	struct store_conf c = {0};
	struct creds cr;
	char err[256], *cp = NULL, *fp = NULL, region[64];

	cr_assert(asprintf(&cp, "%s/elsewhere-creds", home) > 0);
	cr_assert(asprintf(&fp, "%s/elsewhere-config", home) > 0);
	cr_assert_eq(sft_write_file(cp, "[default]\naws_access_key_id=OTHER\n"
				    "aws_secret_access_key=othersecret\n", 66),
		     0);
	cr_assert_eq(sft_write_file(fp, "[default]\nregion=sa-east-1\n", 27), 0);
	write_home(".aws/credentials", CREDS_FILE);
	setenv("AWS_SHARED_CREDENTIALS_FILE", cp, 1);
	setenv("AWS_CONFIG_FILE", fp, 1);
	cr_assert_eq(creds_resolve(&c, &cr, err, sizeof(err)), 0, "%s", err);
	cr_expect_str_eq(cr.access_key_id, "OTHER");
	creds_region(&c, region, sizeof(region));
	cr_expect_str_eq(region, "sa-east-1");
	free(cp);
	free(fp);
}

Test(creds, region_precedence)
{
	struct store_conf c = {0};
	char r[64];

	creds_region(&c, r, sizeof(r));
	cr_expect_str_eq(r, "us-east-1");
	write_home(".aws/config", CONFIG_FILE);
	creds_region(&c, r, sizeof(r));
	cr_expect_str_eq(r, "eu-north-1");
	setenv("AWS_PROFILE", "work", 1);
	creds_region(&c, r, sizeof(r));
	cr_expect_str_eq(r, "ap-south-2");
	setenv("AWS_DEFAULT_REGION", "r-default", 1);
	creds_region(&c, r, sizeof(r));
	cr_expect_str_eq(r, "r-default");
	setenv("S3_REGION", "r-s3", 1);
	creds_region(&c, r, sizeof(r));
	cr_expect_str_eq(r, "r-s3");
	setenv("AWS_REGION", "r-aws", 1);
	creds_region(&c, r, sizeof(r));
	cr_expect_str_eq(r, "r-aws");
	c.region = "r-opt";
	creds_region(&c, r, sizeof(r));
	cr_expect_str_eq(r, "r-opt");
}

Test(creds, endpoint_precedence)
{
	struct store_conf c = {0};
	char e[256];

	creds_endpoint(&c, e, sizeof(e));
	cr_expect_str_eq(e, "");
	write_home(".aws/config", CONFIG_FILE);
	setenv("AWS_PROFILE", "cfgonly", 1);
	creds_endpoint(&c, e, sizeof(e));
	cr_expect_str_eq(e, "http://cfgonly.example");
	setenv("AWS_PROFILE", "work", 1); /* the s3 sub-section wins */
	creds_endpoint(&c, e, sizeof(e));
	cr_expect_str_eq(e, "http://s3.work.example:9000");
	setenv("SLATEDB_S3_ENDPOINT_URL", "http://slatedb", 1);
	creds_endpoint(&c, e, sizeof(e));
	cr_expect_str_eq(e, "http://slatedb");
	setenv("AWS_ENDPOINT_URL", "http://generic", 1);
	creds_endpoint(&c, e, sizeof(e));
	cr_expect_str_eq(e, "http://generic");
	setenv("AWS_ENDPOINT_URL_S3", "http://s3specific", 1);
	creds_endpoint(&c, e, sizeof(e));
	cr_expect_str_eq(e, "http://s3specific");
	c.endpoint_url = "http://option";
	creds_endpoint(&c, e, sizeof(e));
	cr_expect_str_eq(e, "http://option");
}

/* ---- a tiny IMDSv2 server ------------------------------------------- */

struct imds {
	int lfd;
	int port;
	pthread_t t;
	int requests;
	int tokenless; /* requests that came without the session token */
	int expect_n;  /* connections to serve before leaving */
};

static void reply(int fd, int status, const char *body)
{
	char buf[2048];
	int n = snprintf(buf, sizeof(buf),
			 "HTTP/1.1 %d X\r\nContent-Length: %zu\r\n"
			 "Connection: close\r\n\r\n%s", status, strlen(body),
			 body);
	if (send(fd, buf, (size_t)n, MSG_NOSIGNAL) < 0) {
		/* the client went away; nothing to do */
	}
}

static void *imds_main(void *arg)
{
	struct imds *m = arg;
	int i;

	for (i = 0; i < m->expect_n; i++) {
		char req[4096];
		size_t have = 0;
		int fd = accept(m->lfd, NULL, NULL);

		if (fd < 0)
			break;
		while (have < sizeof(req) - 1) {
			ssize_t r = recv(fd, req + have, sizeof(req) - 1 - have, 0);
			if (r <= 0)
				break;
			have += (size_t)r;
			req[have] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		req[have] = '\0';
		m->requests++;
		if (strncmp(req, "PUT /latest/api/token ", 22) == 0) {
			if (strcasestr(req, "x-aws-ec2-metadata-token-ttl-seconds:"))
				reply(fd, 200, "TOKEN-123");
			else
				reply(fd, 400, "");
		} else if (!strcasestr(req, "x-aws-ec2-metadata-token: TOKEN-123")) {
			m->tokenless++;
			reply(fd, 401, "");
		} else if (strncmp(req, "GET /latest/meta-data/iam/security-credentials/ ", 48) == 0) {
			reply(fd, 200, "my-role\n");
		} else if (strncmp(req, "GET /latest/meta-data/iam/security-credentials/my-role ", 55) == 0) {
			reply(fd, 200,
			      "{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\","
			      "\"AccessKeyId\":\"IMDSID\",\"SecretAccessKey\":"
			      "\"imdssecret\",\"Token\":\"imdstoken\","
			      "\"Expiration\":\"2099-01-02T03:04:05Z\"}");
		} else {
			reply(fd, 404, "");
		}
		close(fd);
	}
	return NULL;
}

static void imds_start(struct imds *m, int n)
{
	struct sockaddr_in sa = {0};
	socklen_t sl = sizeof(sa);
	char url[64];

	memset(m, 0, sizeof(*m));
	m->expect_n = n;
	m->lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert_geq(m->lfd, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(m->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(m->lfd, 8), 0);
	cr_assert_eq(getsockname(m->lfd, (struct sockaddr *)&sa, &sl), 0);
	m->port = ntohs(sa.sin_port);
	snprintf(url, sizeof(url), "http://127.0.0.1:%d/", m->port);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", url, 1);
	cr_assert_eq(pthread_create(&m->t, NULL, imds_main, m), 0);
}

static void imds_stop(struct imds *m)
{
	shutdown(m->lfd, SHUT_RDWR);
	pthread_join(m->t, NULL);
	close(m->lfd);
}

Test(creds, imdsv2_is_the_last_resort)
{
	struct store_conf c = {0};
	struct creds cr;
	struct imds m;
	char err[256] = "";

	unsetenv("AWS_EC2_METADATA_DISABLED");
	imds_start(&m, 3);
	cr_assert_eq(creds_resolve(&c, &cr, err, sizeof(err)), 0, "%s", err);
	imds_stop(&m);
	cr_expect_str_eq(cr.access_key_id, "IMDSID");
	cr_expect_str_eq(cr.secret_access_key, "imdssecret");
	cr_expect_str_eq(cr.session_token, "imdstoken");
	cr_expect_str_eq(cr.source, "imds");
	cr_expect_eq((long long)cr.expires, 4071006245LL);
	cr_expect_eq(m.requests, 3);
	cr_expect_eq(m.tokenless, 0);
}

Test(creds, imds_is_skipped_when_disabled_or_unreachable)
{
	struct store_conf c = {0};
	struct creds cr;
	char err[256] = "";

	/* disabled (set by setup) */
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1/", 1);
	cr_expect_eq(creds_resolve(&c, &cr, err, sizeof(err)), SF_EAUTH);
	cr_expect(strstr(err, "disabled") != NULL, "%s", err);
	/* enabled but nobody listens */
	unsetenv("AWS_EC2_METADATA_DISABLED");
	cr_expect_eq(creds_resolve(&c, &cr, err, sizeof(err)), SF_EAUTH);
	cr_expect(strstr(err, "instance metadata") != NULL, "%s", err);
}

Test(creds, errors_never_contain_secrets)
{
	struct store_conf c = {0};
	struct creds cr;
	char err[256] = "";

	write_home(".aws/credentials",
		   "[p]\naws_access_key_id = ONLYID-NO-SECRET\n");
	setenv("AWS_PROFILE", "p", 1);
	setenv("S3_SECRET_ACCESS_KEY", "lonely-secret", 1);
	cr_expect_eq(creds_resolve(&c, &cr, err, sizeof(err)), SF_EAUTH);
	cr_expect(strstr(err, "lonely") == NULL, "%s", err);
	cr_expect(strstr(err, "ONLYID") == NULL, "%s", err);
}
