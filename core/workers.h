/*
 * workers.h -- a fixed pool of threads running queued jobs, shared by a
 * reader's batch lookups (shards read in parallel) and its asynchronous
 * submissions. Jobs never wait for other jobs of the queue (batch lookups
 * let the submitting thread claim work itself), so the pool cannot
 * deadlock however many batches are in flight.
 *
 * Thread safety: workers_submit() may be called from any thread, including
 * a worker.
 */
#ifndef SF_WORKERS_H
#define SF_WORKERS_H

struct workers;
typedef void (*workers_fn)(void *arg);

/* Starts n threads (n >= 1). *out is owned by the caller (workers_free). */
int workers_new(struct workers **out, int n);
/* Queues fn(arg). Returns 0 or SF_ENOMEM. */
int workers_submit(struct workers *w, workers_fn fn, void *arg);
/* Runs every queued job, then joins the threads and frees the pool. */
void workers_free(struct workers *w);

#endif
