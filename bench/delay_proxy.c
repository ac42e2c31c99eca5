/*
 * delay_proxy.c -- a loopback TCP proxy that adds a fixed delay to every
 * HTTP request, so that the benchmarks see round trips as time, the way a
 * reader in a real S3 region does (~15 ms for a small GET).
 *
 *   delay_proxy --upstream [HOST:]PORT [--delay-ms N] [--listen PORT]
 *
 * It listens on 127.0.0.1 (an ephemeral port unless --listen says which),
 * prints the port it listens on as one line on stdout, then forwards every
 * accepted connection to the upstream, byte for byte.
 *
 * Delay rule. HTTP/1.1 clients (curl) send one request at a time on a
 * keep-alive connection and wait for the whole response before the next.
 * So the first client-to-server chunk seen after the server last spoke
 * (or on a fresh connection) starts a new request: that chunk is held for
 * N ms before it is forwarded; the rest of the request (a large PUT body
 * arriving in many chunks) passes at once. Each request round trip thus
 * costs N ms more, whatever its size. Connection set-up is not delayed
 * (curl reuses connections; a real TLS handshake would add 2-3 RTTs once
 * per connection, which this proxy does not model).
 *
 * Design: one thread per direction per connection (the benchmarks use a
 * handful of connections), a shared flag "server spoke since the last
 * request" per connection, and half-closes forwarded with shutdown().
 * The proxy runs until killed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct conn {
	int client;
	int upstream;
	atomic_int new_request;  /* next client chunk starts a request */
	atomic_int refs;         /* two pump threads */
};

static long delay_ms;
static struct sockaddr_in upstream_addr;

static void conn_release(struct conn *c)
{
	if (atomic_fetch_sub(&c->refs, 1) != 1)
		return;
	close(c->client);
	close(c->upstream);
	free(c);
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static int write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* client -> upstream: hold the first chunk of each request. */
static void *pump_up(void *arg)
{
	struct conn *c = arg;
	char buf[65536];

	for (;;) {
		ssize_t n = recv(c->client, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		if (atomic_exchange(&c->new_request, 0) && delay_ms > 0)
			sleep_ms(delay_ms);
		if (write_all(c->upstream, buf, (size_t)n) < 0)
			break;
	}
	shutdown(c->upstream, SHUT_WR);
	conn_release(c);
	return NULL;
}

/* upstream -> client: any response byte ends the current request. */
static void *pump_down(void *arg)
{
	struct conn *c = arg;
	char buf[65536];

	for (;;) {
		ssize_t n = recv(c->upstream, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		atomic_store(&c->new_request, 1);
		if (write_all(c->client, buf, (size_t)n) < 0)
			break;
	}
	shutdown(c->client, SHUT_WR);
	conn_release(c);
	return NULL;
}

static int parse_upstream(const char *s)
{
	char host[64] = "127.0.0.1";
	const char *colon = strrchr(s, ':');
	const char *port = s;
	long p;
	char *end;

	if (colon) {
		size_t n = (size_t)(colon - s);

		if (n == 0 || n >= sizeof(host))
			return -1;
		memcpy(host, s, n);
		host[n] = 0;
		port = colon + 1;
	}
	p = strtol(port, &end, 10);
	if (*port == 0 || *end != 0 || p <= 0 || p > 65535)
		return -1;
	memset(&upstream_addr, 0, sizeof(upstream_addr));
	upstream_addr.sin_family = AF_INET;
	upstream_addr.sin_port = htons((uint16_t)p);
	if (inet_pton(AF_INET, host, &upstream_addr.sin_addr) != 1)
		return -1;
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: delay_proxy --upstream [HOST:]PORT "
			"[--delay-ms N] [--listen PORT]\n");
	exit(2);
}

static void start_conn(int client)
{
	struct conn *c;
	pthread_t t;
	pthread_attr_t attr;
	int one = 1;
	int up = socket(AF_INET, SOCK_STREAM, 0);

	if (up < 0 || connect(up, (struct sockaddr *)&upstream_addr,
			      sizeof(upstream_addr)) < 0) {
		perror("delay_proxy: connect upstream");
		if (up >= 0)
			close(up);
		close(client);
		return;
	}
	setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(up);
		close(client);
		return;
	}
	c->client = client;
	c->upstream = up;
	atomic_init(&c->new_request, 1);
	atomic_init(&c->refs, 2);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	if (pthread_create(&t, &attr, pump_up, c) != 0) {
		close(up);
		close(client);
		free(c);
		pthread_attr_destroy(&attr);
		return;
	}
	if (pthread_create(&t, &attr, pump_down, c) != 0) {
		/* pump_up still holds a reference: end it by closing both. */
		shutdown(client, SHUT_RDWR);
		shutdown(up, SHUT_RDWR);
		conn_release(c);
	}
	pthread_attr_destroy(&attr);
}

int main(int argc, char **argv)
{
	struct sockaddr_in la;
	socklen_t alen = sizeof(la);
	long listen_port = 0;
	int have_up = 0;
	int one = 1;
	int ls;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--upstream") && i + 1 < argc) {
			if (parse_upstream(argv[++i]) < 0)
				usage();
			have_up = 1;
		} else if (!strcmp(argv[i], "--delay-ms") && i + 1 < argc) {
			delay_ms = atol(argv[++i]);
		} else if (!strcmp(argv[i], "--listen") && i + 1 < argc) {
			listen_port = atol(argv[++i]);
		} else {
			usage();
		}
	}
	if (!have_up || delay_ms < 0 || listen_port < 0 || listen_port > 65535)
		usage();
	signal(SIGPIPE, SIG_IGN);

	ls = socket(AF_INET, SOCK_STREAM, 0);
	if (ls < 0) {
		perror("delay_proxy: socket");
		return 1;
	}
	setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	memset(&la, 0, sizeof(la));
	la.sin_family = AF_INET;
	la.sin_port = htons((uint16_t)listen_port);
	la.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(ls, (struct sockaddr *)&la, sizeof(la)) < 0 ||
	    listen(ls, 128) < 0 ||
	    getsockname(ls, (struct sockaddr *)&la, &alen) < 0) {
		perror("delay_proxy: listen");
		return 1;
	}
	printf("%u\n", (unsigned)ntohs(la.sin_port));
	fflush(stdout);

	for (;;) {
		int c = accept(ls, NULL, NULL);

		if (c < 0) {
			if (errno == EMFILE || errno == ENFILE)
				sleep_ms(10);
			if (errno == EINTR || errno == ECONNABORTED ||
			    errno == EMFILE || errno == ENFILE)
				continue;
			perror("delay_proxy: accept");
			return 1;
		}
		start_conn(c);
	}
}
