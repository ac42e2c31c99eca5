/*
 * prefetch.h -- a small worker pool for background page fetches (overflow
 * chains, sequential readahead) of the range VFS.
 *
 * Contract (after curl's pool): the submitter fills an item with its work
 * function and completion callback and hands it over; a worker takes it,
 * runs it and hands it back through `done`, exactly once, with the outcome
 * inside the item (rc, err). Cancelled items get done() with rc =
 * SF_ECLOSED without running. The pool never knows what an item does.
 *
 * Thread safety: every function is thread-safe. The queue mutex is never
 * held while an item runs.
 */
#ifndef SF_PREFETCH_H
#define SF_PREFETCH_H

#include <stddef.h>

struct prefetch;

struct prefetch_item {
	struct prefetch_item *next;           /* queue link (pool's) */
	void *owner;                          /* for prefetch_cancel() */
	void (*run)(struct prefetch_item *);  /* sets rc and err */
	void (*done)(struct prefetch_item *); /* releases the item */
	int rc;
	char err[160];
};

/* Starts nthreads workers with a queue of at most max_queue items. *out is
 * owned by the caller (prefetch_free()). */
int prefetch_new(struct prefetch **out, int nthreads, size_t max_queue);
/* Cancels queued items, waits for running ones and joins the workers. */
void prefetch_free(struct prefetch *pf);
/* Queues it. Returns 0, or -1 when the queue is full or stopping (the item
 * stays the caller's: the prefetch is shed). */
int prefetch_submit(struct prefetch *pf, struct prefetch_item *it);
/* Removes the queued items of owner (done() with SF_ECLOSED). Items of
 * owner already running are not waited for: the owner counts them. */
void prefetch_cancel(struct prefetch *pf, void *owner);

#endif
