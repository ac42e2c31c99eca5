/*
 * prefetch.c -- the prefetch worker pool (see prefetch.h).
 *
 * A FIFO of items under one mutex and two condition variables (work
 * arrived, pool stopping). Workers pop, run the item with no lock held and
 * call its done(). The queue is bounded: a prefetch that does not fit is
 * simply not done (the submitter counts it as shed), because a prefetch is
 * only ever an optimisation.
 */
#include "prefetch.h"

#include <pthread.h>
#include <stdlib.h>

#include "err.h"

struct prefetch {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct prefetch_item *head, *tail; /* protected by mu */
	size_t queued, max_queue;          /* protected by mu */
	int stopping;                      /* protected by mu */
	int nthreads;
	pthread_t *th;
};

static void *worker(void *arg)
{
	struct prefetch *pf = arg;
	struct prefetch_item *it;

	for (;;) {
		pthread_mutex_lock(&pf->mu);
		while (!pf->head && !pf->stopping)
			pthread_cond_wait(&pf->cv, &pf->mu);
		it = pf->head;
		if (!it) {
			pthread_mutex_unlock(&pf->mu);
			return NULL;
		}
		pf->head = it->next;
		if (!pf->head)
			pf->tail = NULL;
		pf->queued--;
		pthread_mutex_unlock(&pf->mu);
		it->next = NULL;
		it->rc = 0;
		it->err[0] = '\0';
		it->run(it);
		it->done(it);
	}
}

int prefetch_new(struct prefetch **out, int nthreads, size_t max_queue)
{
	struct prefetch *pf;
	int i;

	if (nthreads <= 0 || nthreads > 64)
		return SF_EINVAL;
	pf = calloc(1, sizeof(*pf));
	if (!pf)
		return SF_ENOMEM;
	pf->th = calloc((size_t)nthreads, sizeof(*pf->th));
	if (!pf->th) {
		free(pf);
		return SF_ENOMEM;
	}
	pthread_mutex_init(&pf->mu, NULL);
	pthread_cond_init(&pf->cv, NULL);
	pf->max_queue = max_queue ? max_queue : 64;
	for (i = 0; i < nthreads; i++) {
		if (pthread_create(&pf->th[i], NULL, worker, pf) != 0)
			break;
		pf->nthreads++;
	}
	if (pf->nthreads == 0) {
		prefetch_free(pf);
		return SF_ENOMEM;
	}
	*out = pf;
	return 0;
}

void prefetch_free(struct prefetch *pf)
{
	int i;

	if (!pf)
		return;
	pthread_mutex_lock(&pf->mu);
	pf->stopping = 1;
	pthread_mutex_unlock(&pf->mu);
	prefetch_cancel(pf, NULL);
	pthread_cond_broadcast(&pf->cv);
	for (i = 0; i < pf->nthreads; i++)
		pthread_join(pf->th[i], NULL);
	pthread_mutex_destroy(&pf->mu);
	pthread_cond_destroy(&pf->cv);
	free(pf->th);
	free(pf);
}

int prefetch_submit(struct prefetch *pf, struct prefetch_item *it)
{
	int rc = -1;

	pthread_mutex_lock(&pf->mu);
	if (!pf->stopping && pf->queued < pf->max_queue) {
		it->next = NULL;
		if (pf->tail)
			pf->tail->next = it;
		else
			pf->head = it;
		pf->tail = it;
		pf->queued++;
		rc = 0;
		pthread_cond_signal(&pf->cv);
	}
	pthread_mutex_unlock(&pf->mu);
	return rc;
}

/* owner NULL cancels everything. */
void prefetch_cancel(struct prefetch *pf, void *owner)
{
	struct prefetch_item *cancelled = NULL, **pp, *it;

	pthread_mutex_lock(&pf->mu);
	pp = &pf->head;
	pf->tail = NULL;
	for (it = *pp; it; it = *pp) {
		if (!owner || it->owner == owner) {
			*pp = it->next;
			pf->queued--;
			it->next = cancelled;
			cancelled = it;
		} else {
			pf->tail = it;
			pp = &it->next;
		}
	}
	pthread_mutex_unlock(&pf->mu);
	while (cancelled) {
		it = cancelled;
		cancelled = it->next;
		it->next = NULL;
		it->rc = SF_ECLOSED;
		it->done(it);
	}
}
