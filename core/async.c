/*
 * async.c -- asynchronous lookups: the C counterpart of shardyfusion's
 * async reader. A submission copies its keys, pins the current snapshot at
 * once (so it reads the snapshot that was current when it was submitted),
 * and runs as one job on the reader's workers. The result arrives either
 * through a callback (run on a worker thread) or in a completion queue
 * whose eventfd becomes readable, for poll/epoll-driven event loops.
 *
 * The submitting thread never blocks on I/O: submission only allocates
 * and queues.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "err.h"
#include "reader.h"
#include "workers.h"

struct cq_node {
	struct sf_completion c;
	struct cq_node *next;
};

struct sf_cq {
	int efd;              /* EFD_SEMAPHORE: one count per waiting node */
	pthread_mutex_t mu;
	struct cq_node *head, *tail; /* protected by mu */
};

struct job {
	struct sf_snapshot *s;
	struct cq_node *node; /* completion-queue submissions: preallocated,
				 so a completion can never be lost */
	struct sf_key *keys;  /* n keys; data points into `arena` */
	uint8_t *arena;
	size_t n;
	sf_multi_get_cb cb;
	struct sf_cq *cq;
	void *ud;
};

static void job_free(struct job *j)
{
	free(j->node);
	free(j->keys);
	free(j->arena);
	free(j);
}

/* Deep-copies keys so the caller may reuse its buffers at once. The
 * snapshot is pinned later, by submit(). */
static int job_new(const struct sf_key *keys, size_t n, int with_node,
		   struct job **out)
{
	struct job *j = calloc(1, sizeof(*j));
	size_t total = 0, off = 0;

	*out = NULL;
	if (!j)
		return SF_ENOMEM;
	for (size_t i = 0; i < n; i++)
		if (keys[i].type != SF_KEY_INT)
			total += keys[i].len;
	j->keys = malloc((n ? n : 1) * sizeof(*j->keys));
	j->arena = malloc(total ? total : 1);
	if (with_node)
		j->node = calloc(1, sizeof(*j->node));
	if (!j->keys || !j->arena || (with_node && !j->node)) {
		job_free(j);
		return SF_ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		j->keys[i] = keys[i];
		if (keys[i].type != SF_KEY_INT && keys[i].len) {
			memcpy(j->arena + off, keys[i].data, keys[i].len);
			j->keys[i].data = j->arena + off;
			off += keys[i].len;
		}
	}
	j->n = n;
	*out = j;
	return 0;
}

static void cq_push(struct sf_cq *cq, struct cq_node *node)
{
	uint64_t one = 1;

	pthread_mutex_lock(&cq->mu);
	if (cq->tail)
		cq->tail->next = node;
	else
		cq->head = node;
	cq->tail = node;
	pthread_mutex_unlock(&cq->mu);
	if (write(cq->efd, &one, sizeof(one)) != sizeof(one))
		sf_log(SF_LOG_ERROR, "completion queue eventfd write: %s",
		       strerror(errno));
}

static void job_run(void *arg)
{
	struct job *j = arg;
	struct sf_reader *r = j->s->r;
	struct sf_result *res = calloc(j->n ? j->n : 1, sizeof(*res));
	int status;

	if (!res)
		status = SF_ENOMEM;
	else
		status = sf_snapshot_multi_get(j->s, j->keys, j->n, res, NULL, 0);
	if (j->cq) {
		struct cq_node *node = j->node;
		j->node = NULL;
		node->c.ud = j->ud;
		node->c.status = status;
		node->c.results = res;
		node->c.n = res ? j->n : 0;
		cq_push(j->cq, node);
		res = NULL;
	} else {
		j->cb(j->ud, status, res, res ? j->n : 0);
	}
	free(res);
	sf_snapshot_release(j->s);
	job_free(j);
	reader_async_end(r);
}

static int submit(struct sf_reader *r, const struct sf_key *keys, size_t n,
		  sf_multi_get_cb cb, struct sf_cq *cq, void *ud)
{
	struct job *j = NULL;
	int ret;

	if (!r || (!cb && !cq) || (n && !keys))
		return SF_EINVAL;
	ret = job_new(keys, n, cq != NULL, &j);
	if (ret)
		return ret;
	j->cb = cb;
	j->cq = cq;
	j->ud = ud;
	/* Checking `closed`, pinning the snapshot and counting the job happen
	 * under one lock, so sf_reader_close() either refuses this submission
	 * or waits for it. */
	pthread_mutex_lock(&r->mu);
	if (r->closed) {
		pthread_mutex_unlock(&r->mu);
		job_free(j);
		return SF_ECLOSED;
	}
	j->s = sf_snapshot_retain(r->cur);
	r->async_pending++;
	pthread_mutex_unlock(&r->mu);
	ret = workers_submit(r->workers, job_run, j);
	if (ret) {
		sf_snapshot_release(j->s);
		job_free(j);
		reader_async_end(r);
	}
	return ret;
}

int sf_multi_get_async(struct sf_reader *r, const struct sf_key *keys,
		       size_t n, sf_multi_get_cb cb, void *ud)
{
	return submit(r, keys, n, cb, NULL, ud);
}

int sf_get_async(struct sf_reader *r, const struct sf_key *key,
		 sf_multi_get_cb cb, void *ud)
{
	return submit(r, key, 1, cb, NULL, ud);
}

int sf_cq_new(struct sf_cq **out)
{
	struct sf_cq *cq = calloc(1, sizeof(*cq));

	*out = NULL;
	if (!cq)
		return SF_ENOMEM;
	cq->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK | EFD_SEMAPHORE);
	if (cq->efd < 0) {
		free(cq);
		return SF_EIO;
	}
	pthread_mutex_init(&cq->mu, NULL);
	*out = cq;
	return 0;
}

void sf_cq_free(struct sf_cq *cq)
{
	struct sf_completion c;

	if (!cq)
		return;
	while (sf_cq_next(cq, &c) == 1)
		sf_completion_free(&c);
	close(cq->efd);
	pthread_mutex_destroy(&cq->mu);
	free(cq);
}

int sf_cq_fd(const struct sf_cq *cq)
{
	return cq->efd;
}

int sf_cq_submit(struct sf_reader *r, struct sf_cq *cq,
		 const struct sf_key *keys, size_t n, void *ud)
{
	if (!cq)
		return SF_EINVAL;
	return submit(r, keys, n, NULL, cq, ud);
}

int sf_cq_next(struct sf_cq *cq, struct sf_completion *c)
{
	struct cq_node *node;
	uint64_t v;

	memset(c, 0, sizeof(*c));
	/* Take a count first: each is written after its node was pushed, so
	 * a count always has a node waiting (semaphore mode: one per read). */
	if (read(cq->efd, &v, sizeof(v)) != sizeof(v))
		return 0;
	pthread_mutex_lock(&cq->mu);
	node = cq->head;
	cq->head = node->next;
	if (!cq->head)
		cq->tail = NULL;
	pthread_mutex_unlock(&cq->mu);
	*c = node->c;
	free(node);
	return 1;
}

int sf_cq_wait(struct sf_cq *cq, struct sf_completion *c, int timeout_ms)
{
	double deadline = sf_now_mono() + timeout_ms / 1000.0;

	for (;;) {
		if (sf_cq_next(cq, c))
			return 1;
		int left = -1;
		if (timeout_ms >= 0) {
			double rem = deadline - sf_now_mono();
			if (rem <= 0)
				return 0;
			left = (int)(rem * 1000.0) + 1;
		}
		struct pollfd p = {cq->efd, POLLIN, 0};
		if (poll(&p, 1, left) < 0 && errno != EINTR)
			return 0;
	}
}

void sf_completion_free(struct sf_completion *c)
{
	if (!c || !c->results)
		return;
	for (size_t i = 0; i < c->n; i++)
		free(c->results[i].value);
	free(c->results);
	c->results = NULL;
	c->n = 0;
}
