/*
 * workers.c -- the reader's thread pool: a mutex-protected FIFO of jobs and
 * n threads that take, run and free them. Errors travel inside the jobs'
 * own arguments, never through the pool (curl's pool contract).
 */
#include "workers.h"

#include <pthread.h>
#include <stdlib.h>

#include "shardyfs.h"

struct job {
	workers_fn fn;
	void *arg;
	struct job *next;
};

struct workers {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct job *head, *tail; /* protected by mu */
	int stopping;            /* protected by mu */
	int n;
	pthread_t *threads;
};

static void *worker_main(void *p)
{
	struct workers *w = p;

	for (;;) {
		pthread_mutex_lock(&w->mu);
		while (!w->head && !w->stopping)
			pthread_cond_wait(&w->cv, &w->mu);
		struct job *j = w->head;
		if (!j) { /* stopping and drained */
			pthread_mutex_unlock(&w->mu);
			return NULL;
		}
		w->head = j->next;
		if (!w->head)
			w->tail = NULL;
		pthread_mutex_unlock(&w->mu);
		j->fn(j->arg);
		free(j);
	}
}

int workers_new(struct workers **out, int n)
{
	struct workers *w = calloc(1, sizeof(*w));

	*out = NULL;
	if (!w)
		return SF_ENOMEM;
	if (n < 1)
		n = 1;
	w->threads = calloc((size_t)n, sizeof(pthread_t));
	if (!w->threads) {
		free(w);
		return SF_ENOMEM;
	}
	pthread_mutex_init(&w->mu, NULL);
	pthread_cond_init(&w->cv, NULL);
	for (int i = 0; i < n; i++) {
		if (pthread_create(&w->threads[i], NULL, worker_main, w) != 0)
			break;
		w->n++;
	}
	if (w->n == 0) {
		workers_free(w);
		return SF_ENOMEM;
	}
	*out = w;
	return 0;
}

int workers_submit(struct workers *w, workers_fn fn, void *arg)
{
	struct job *j = malloc(sizeof(*j));

	if (!j)
		return SF_ENOMEM;
	j->fn = fn;
	j->arg = arg;
	j->next = NULL;
	pthread_mutex_lock(&w->mu);
	if (w->tail)
		w->tail->next = j;
	else
		w->head = j;
	w->tail = j;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
	return 0;
}

void workers_free(struct workers *w)
{
	if (!w)
		return;
	pthread_mutex_lock(&w->mu);
	w->stopping = 1;
	pthread_cond_broadcast(&w->cv);
	pthread_mutex_unlock(&w->mu);
	for (int i = 0; i < w->n; i++)
		pthread_join(w->threads[i], NULL);
	pthread_mutex_destroy(&w->mu);
	pthread_cond_destroy(&w->cv);
	free(w->threads);
	free(w);
}
