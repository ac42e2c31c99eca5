/*
 * test_store_s3_hostile.c -- the s3:// backend against a misbehaving
 * server, run by the test itself on 127.0.0.1 (a thread answering each
 * connection once, "Connection: close"):
 *   - a LIST whose pages are all truncated with ever-new continuation
 *     tokens stops at the page cap with SF_ETOOBIG;
 *   - a LIST whose continuation tokens cycle (a, b, c, a, ...) stops with
 *     SF_EHTTP long before the cap;
 *   - when no credentials resolve, the failure is cached: a burst of
 *     requests asks the instance metadata service once, not once each.
 * The server turns honest after SRV_HONEST_AFTER requests (a last,
 * untruncated page), so without the guards the LIST tests fail instead
 * of hanging. Nothing asserts on elapsed time.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sf_test.h"
#include "store.h"

#define SRV_HONEST_AFTER 3000

enum srv_mode {
	SRV_LIST_FRESH,  /* truncated pages, token "t<n>" for request n */
	SRV_LIST_CYCLE,  /* truncated pages, tokens a, b, c, a, b, ... */
	SRV_NOT_FOUND,   /* 404 to everything (an IMDS with no role) */
};

struct srv {
	int lfd;
	int port;
	pthread_t t;
	enum srv_mode mode;
	atomic_int requests;
	char url[64];
};

static void srv_reply(int fd, int status, const char *body)
{
	char *buf = NULL;
	int n = asprintf(&buf, "HTTP/1.1 %d X\r\nContent-Type: application/xml"
			 "\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n"
			 "%s", status, strlen(body), body);

	if (n > 0 && send(fd, buf, (size_t)n, MSG_NOSIGNAL) < 0) {
		/* the client went away; nothing to do */
	}
	free(buf);
}

static void srv_list_page(int fd, enum srv_mode mode, int n)
{
	char body[1024], tok[32];
	int more = n < SRV_HONEST_AFTER;

	if (mode == SRV_LIST_CYCLE)
		snprintf(tok, sizeof(tok), "%c", "abc"[n % 3]);
	else
		snprintf(tok, sizeof(tok), "t%d", n);
	snprintf(body, sizeof(body),
		 "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
		 "<ListBucketResult><Name>bkt</Name><Prefix>p/</Prefix>"
		 "<KeyCount>1</KeyCount><EncodingType>url</EncodingType>"
		 "<IsTruncated>%s</IsTruncated>"
		 "<Contents><Key>p/k%d</Key><Size>1</Size></Contents>"
		 "%s%s%s</ListBucketResult>",
		 more ? "true" : "false", n,
		 more ? "<NextContinuationToken>" : "", more ? tok : "",
		 more ? "</NextContinuationToken>" : "");
	srv_reply(fd, 200, body);
}

static void *srv_main(void *arg)
{
	struct srv *s = arg;

	for (;;) {
		char req[8192];
		size_t have = 0;
		int fd = accept(s->lfd, NULL, NULL), n;

		if (fd < 0)
			break;
		while (have < sizeof(req) - 1) {
			ssize_t r = recv(fd, req + have,
					 sizeof(req) - 1 - have, 0);
			if (r <= 0)
				break;
			have += (size_t)r;
			req[have] = '\0';
			if (strstr(req, "\r\n\r\n"))
				break;
		}
		n = atomic_fetch_add(&s->requests, 1) + 1;
		if (s->mode == SRV_NOT_FOUND)
			srv_reply(fd, 404, "");
		else
			srv_list_page(fd, s->mode, n);
		close(fd);
	}
	return NULL;
}

static void srv_start(struct srv *s, enum srv_mode mode)
{
	struct sockaddr_in sa = {0};
	socklen_t sl = sizeof(sa);

	memset(s, 0, sizeof(*s));
	s->mode = mode;
	s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert_geq(s->lfd, 0);
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	cr_assert_eq(bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	cr_assert_eq(listen(s->lfd, 64), 0);
	cr_assert_eq(getsockname(s->lfd, (struct sockaddr *)&sa, &sl), 0);
	s->port = ntohs(sa.sin_port);
	snprintf(s->url, sizeof(s->url), "http://127.0.0.1:%d", s->port);
	cr_assert_eq(pthread_create(&s->t, NULL, srv_main, s), 0);
}

static void srv_stop(struct srv *s)
{
	shutdown(s->lfd, SHUT_RDWR);
	pthread_join(s->t, NULL);
	close(s->lfd);
}

static struct store *open_s3(const struct srv *s, int anonymous)
{
	struct sf_options opt;
	struct store *st = NULL;
	char err[256] = "";

	sf_options_init(&opt);
	opt.endpoint_url = s->url;
	opt.region = "us-east-1";
	opt.addressing = SF_ADDR_PATH;
	opt.no_sign_request = anonymous;
	opt.max_attempts = 1;
	cr_assert_eq(store_open(&st, "s3://bkt/p", &opt, err, sizeof(err)),
		     0, "%s", err);
	return st;
}

static int count_cb(void *ctx, const char *name, int is_prefix)
{
	(void)name;
	(void)is_prefix;
	(*(int *)ctx)++;
	return 0;
}

TestSuite(store_s3_hostile, .timeout = 120);

Test(store_s3_hostile, endless_truncated_list_hits_the_page_cap)
{
	struct srv s;
	struct store *st;
	char err[512] = "";
	int seen = 0, rc;

	srv_start(&s, SRV_LIST_FRESH);
	st = open_s3(&s, 1);
	store_set_list_max_pages(st, 25);
	rc = store_list(st, "s3://bkt/p/", NULL, count_cb, &seen, err,
			sizeof(err));
	store_close(st);
	srv_stop(&s);
	cr_expect_eq(rc, SF_ETOOBIG, "rc %d: %s", rc, err);
	cr_expect(strstr(err, "s3://bkt/p/") != NULL, "%s", err);
	cr_expect_eq(atomic_load(&s.requests), 25);
	cr_expect_eq(seen, 25);
}

Test(store_s3_hostile, cycling_continuation_tokens_are_caught)
{
	struct srv s;
	struct store *st;
	char err[512] = "";
	int seen = 0, rc;

	srv_start(&s, SRV_LIST_CYCLE);
	st = open_s3(&s, 1); /* the default cap: far above the cycle */
	rc = store_list(st, "s3://bkt/p/", "/", count_cb, &seen, err,
			sizeof(err));
	store_close(st);
	srv_stop(&s);
	cr_expect_eq(rc, SF_EHTTP, "rc %d: %s", rc, err);
	cr_expect(strstr(err, "continuation token") != NULL, "%s", err);
	cr_expect_lt(atomic_load(&s.requests), 20);
}

static const char *const scrub[] = {
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"S3_ACCESS_KEY_ID", "S3_SECRET_ACCESS_KEY", "S3_SESSION_TOKEN",
	"AWS_PROFILE", "AWS_EC2_METADATA_DISABLED",
};

Test(store_s3_hostile, failed_credentials_are_not_resolved_per_request)
{
	struct srv imds, s3srv;
	struct store *st;
	char err[512] = "", *home, *p = NULL;
	uint8_t *data = NULL;
	size_t i, len = 0;
	int seen = 0;

	for (i = 0; i < sizeof(scrub) / sizeof(scrub[0]); i++)
		unsetenv(scrub[i]);
	home = sft_tmpdir();
	setenv("HOME", home, 1);
	cr_assert(asprintf(&p, "%s/none", home) > 0);
	setenv("AWS_SHARED_CREDENTIALS_FILE", p, 1);
	setenv("AWS_CONFIG_FILE", p, 1);
	free(p);
	srv_start(&imds, SRV_NOT_FOUND);
	srv_start(&s3srv, SRV_NOT_FOUND);
	setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.url, 1);
	st = open_s3(&s3srv, 0);

	cr_expect_eq(store_head(st, "s3://bkt/p/a", NULL, err, sizeof(err)),
		     SF_EAUTH, "%s", err);
	cr_expect(strstr(err, "instance metadata") != NULL, "%s", err);
	cr_expect_eq(atomic_load(&imds.requests), 1); /* the token PUT */
	err[0] = '\0';
	cr_expect_eq(store_head(st, "s3://bkt/p/a", NULL, err, sizeof(err)),
		     SF_EAUTH, "%s", err);
	cr_expect(strstr(err, "instance metadata") != NULL, "%s", err);
	cr_expect_eq(store_get(st, "s3://bkt/p/a", 1024, &data, &len, NULL,
			       err, sizeof(err)), SF_EAUTH, "%s", err);
	cr_expect_eq(store_list(st, "s3://bkt/p/", NULL, count_cb, &seen,
				err, sizeof(err)), SF_EAUTH, "%s", err);
	store_close(st);
	srv_stop(&imds);
	srv_stop(&s3srv);
	cr_expect_eq(atomic_load(&imds.requests), 1);
	cr_expect_eq(atomic_load(&s3srv.requests), 0);
	cr_expect_eq(seen, 0);
	free(data);
	sft_rmrf(home);
	free(home);
}
