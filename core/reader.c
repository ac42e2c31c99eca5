/*
 * reader.c -- the snapshot model and the synchronous reader API.
 *
 * A reader follows `_CURRENT` under a prefix. Each manifest it loads
 * becomes a refcounted snapshot (FORMAT.md 8 "snapshot pinning"): a lookup
 * borrows the current snapshot, routes and reads entirely within it, and
 * releases it. A refresh that finds a new manifest ref validates the new
 * manifest completely before swapping it in under the reader's lock;
 * readers that borrowed the old snapshot keep it until their release, and
 * the last release closes its shards. A refresh that fails leaves the old
 * snapshot serving and records the failure for sf_health().
 *
 * Start-up differs from refresh in one way: when the manifest `_CURRENT`
 * names is malformed, the reader walks back through manifests/ (newest
 * first, at most 3 older ones) and uses the first valid one, loudly.
 *
 * Copied snapshots: `_CURRENT` and the manifest keep the writer's URLs.
 * manifest refs are rebased by their `/manifests/` suffix onto the prefix
 * the reader was given, and shard URLs by the manifest's s3_prefix.
 *
 * Divisions: options and lifetime; loading (_CURRENT, manifest, history,
 * fallback); shards; lookups (single and batch); introspection.
 * The asynchronous forms live in async.c.
 */
#include "reader.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "err.h"
#include "manifest.h"
#include "sfvfs.h"
#include "shard.h"
#include "store.h"
#include "workers.h"

#define KEYBUF_STACK 256
/* manifests/ entries a history listing keeps (a hostile or runaway prefix
 * must not exhaust memory). */
#define SF_HISTORY_MAX (1u << 20)

/* ---- lifetime --------------------------------------------------------- */

void reader_retain(struct sf_reader *r)
{
	atomic_fetch_add(&r->refs, 1);
}

void reader_release(struct sf_reader *r)
{
	if (!r || atomic_fetch_sub(&r->refs, 1) != 1)
		return;
	/* Last reference: no snapshot and no job can use these any more. */
	workers_free(r->workers);
	sfv_cache_free(r->cache);
	store_close(r->store);
	for (size_t i = 0; i < sizeof(r->str_copies) / sizeof(r->str_copies[0]); i++)
		free(r->str_copies[i]);
	pthread_mutex_destroy(&r->mu);
	pthread_mutex_destroy(&r->refresh_mu);
	pthread_mutex_destroy(&r->cache_mu);
	pthread_cond_destroy(&r->async_cv);
	free(r->cache_dir);
	free(r->prefix);
	free(r);
}

static void snapshot_free(struct sf_snapshot *s)
{
	if (s->slots) {
		for (size_t i = 0; i < s->m->n_shards; i++) {
			struct shard_slot *sl = &s->slots[i];
			shard_close(atomic_load(&sl->sh));
			for (size_t j = 0; j < sl->n_retired; j++)
				shard_close(sl->retired[j]);
			free(sl->retired);
			pthread_mutex_destroy(&sl->mu);
		}
		free(s->slots);
	}
	manifest_free(s->m);
	free(s->manifest_ref);
	free(s->manifest_url);
	reader_release(s->r);
	free(s);
}

struct sf_snapshot *sf_snapshot_retain(struct sf_snapshot *s)
{
	atomic_fetch_add(&s->refs, 1);
	return s;
}

void sf_snapshot_release(struct sf_snapshot *s)
{
	if (s && atomic_fetch_sub(&s->refs, 1) == 1)
		snapshot_free(s);
}

uint64_t sf_snapshot_generation(const struct sf_snapshot *s)
{
	return s->generation;
}

struct sf_snapshot *sf_reader_acquire(struct sf_reader *r)
{
	struct sf_snapshot *s;

	pthread_mutex_lock(&r->mu);
	s = sf_snapshot_retain(r->cur);
	pthread_mutex_unlock(&r->mu);
	return s;
}

/* ---- loading ---------------------------------------------------------- */

static int starts_with_dir(const char *s, const char *prefix)
{
	size_t n = strlen(prefix);
	return strncmp(s, prefix, n) == 0 && (s[n] == '/' || s[n] == 0);
}

/* Whether url is on the same store as the reader's prefix: same scheme and
 * authority (bucket or host). A manifest or _CURRENT fetched from one
 * place must not send the reader (and its credentials) anywhere else. */
static int same_origin(const char *prefix, const char *url)
{
	const char *a = strstr(prefix, "://"), *b = strstr(url, "://");
	size_t la, lb;

	if (!a || !b || a - prefix != b - url ||
	    strncasecmp(prefix, url, (size_t)(a - prefix)) != 0)
		return 0;
	a += 3;
	b += 3;
	la = strcspn(a, "/");
	lb = strcspn(b, "/");
	return la == lb && strncasecmp(a, b, la) == 0;
}

/* Where to read a manifest named by `ref` (FORMAT.md 8 rebasing). */
static char *manifest_location(struct sf_reader *r, const char *ref)
{
	const char *p;

	if (starts_with_dir(ref, r->prefix))
		return strdup(ref);
	if (!store_url_scheme(ref) && ref[0] != '/')
		return store_url_join(r->prefix, ref);
	p = strstr(ref, "/manifests/");
	if (p) {
		const char *q;
		while ((q = strstr(p + 1, "/manifests/")))
			p = q;
		return store_url_join(r->prefix, p + 1);
	}
	return strdup(ref);
}

static int read_current(struct sf_reader *r, struct sf_current *cur,
			char *err, size_t errlen)
{
	char *url = store_url_join(r->prefix, "_CURRENT");
	uint8_t *buf = NULL;
	size_t len = 0;
	int ret;

	memset(cur, 0, sizeof(*cur));
	if (!url)
		return SF_ENOMEM;
	ret = store_get(r->store, url, SF_CURRENT_MAX_BYTES, &buf, &len, NULL,
			err, errlen);
	if (ret == SF_EHTTP_404) {
		ret = sf_errf(err, errlen, SF_ENOSNAPSHOT,
			      "no snapshot published at %s", r->prefix);
		goto out;
	}
	if (ret)
		goto out;
	ret = current_parse(buf, len, cur, err, errlen);
	if (ret)
		sf_err_prefix(err, errlen, "%s", url);
out:
	free(buf);
	free(url);
	return ret;
}

static enum sf_access_mode resolve_mode(const struct sf_reader *r,
					const struct manifest *m)
{
	uint64_t total = 0;

	if (r->opt.access_mode != SF_ACCESS_AUTO)
		return r->opt.access_mode;
	for (size_t i = 0; i < m->n_shards; i++) {
		if (m->shards[i].db_bytes >= r->opt.auto_range_shard_bytes)
			return SF_ACCESS_RANGE;
		total += m->shards[i].db_bytes;
	}
	return total >= r->opt.auto_range_total_bytes ? SF_ACCESS_RANGE
						       : SF_ACCESS_DOWNLOAD;
}

/* Loads and validates the manifest named by ref into a new snapshot that
 * holds a reference on r. The caller owns one reference on *out. */
static int load_snapshot(struct sf_reader *r, const char *ref,
			 struct sf_snapshot **out, char *err, size_t errlen)
{
	struct sf_snapshot *s = calloc(1, sizeof(*s));
	uint8_t *buf = NULL;
	size_t len = 0;
	int ret;

	*out = NULL;
	if (!s)
		return SF_ENOMEM;
	atomic_init(&s->refs, 1);
	s->manifest_ref = strdup(ref);
	s->manifest_url = manifest_location(r, ref);
	if (!s->manifest_ref || !s->manifest_url) {
		ret = SF_ENOMEM;
		goto out;
	}
	if (!same_origin(r->prefix, s->manifest_url)) {
		ret = sf_errf(err, errlen, SF_ECURRENT,
			      "manifest %s is not on the snapshot's store (%s)",
			      s->manifest_url, r->prefix);
		goto out;
	}
	ret = store_get(r->store, s->manifest_url, SF_MANIFEST_MAX_BYTES, &buf,
			&len, NULL, err, errlen);
	if (ret) {
		sf_err_prefix(err, errlen, "manifest");
		goto out;
	}
	ret = manifest_parse(buf, len, &s->m, err, errlen);
	if (ret) {
		sf_err_prefix(err, errlen, "manifest %s", s->manifest_url);
		goto out;
	}
	ret = manifest_rebase(s->m, r->prefix);
	if (ret)
		goto out;
	for (size_t i = 0; i < s->m->n_shards; i++) {
		if (!same_origin(r->prefix, s->m->shards[i].db_url)) {
			ret = sf_errf(err, errlen, SF_EMANIFEST,
				      "manifest %s: shard db=%05u URL %s is not on the "
				      "snapshot's store (%s)",
				      s->manifest_url, s->m->shards[i].db_id,
				      s->m->shards[i].db_url, r->prefix);
			goto out;
		}
	}
	s->slots = calloc(s->m->n_shards ? s->m->n_shards : 1,
			  sizeof(*s->slots));
	if (!s->slots) {
		ret = SF_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < s->m->n_shards; i++)
		pthread_mutex_init(&s->slots[i].mu, NULL);
	s->mode = resolve_mode(r, s->m);
	s->generation = atomic_fetch_add(&r->next_gen, 1) + 1;
	reader_retain(r);
	s->r = r;
out:
	free(buf);
	if (ret) {
		if (s->slots) {
			for (size_t i = 0; i < s->m->n_shards; i++)
				pthread_mutex_destroy(&s->slots[i].mu);
			free(s->slots);
		}
		manifest_free(s->m);
		free(s->manifest_ref);
		free(s->manifest_url);
		free(s);
		return ret;
	}
	*out = s;
	return 0;
}

/* ---- history ---------------------------------------------------------- */

struct hist_list {
	struct sf_history_entry *e;
	size_t n, cap;
	const char *base; /* "<prefix>/manifests/" */
	int err;
};

static int hist_cb(void *ctx, const char *name, int is_prefix)
{
	struct hist_list *h = ctx;
	size_t bl = strlen(h->base);
	const char *dir, *run;
	char *d = NULL;

	if (!is_prefix || strncmp(name, h->base, bl) != 0)
		return 0;
	dir = name + bl;
	d = strndup(dir, strcspn(dir, "/"));
	if (!d) {
		h->err = SF_ENOMEM;
		return 1;
	}
	run = strstr(d, "_run_id=");
	if (!run || run == d) { /* not a manifest directory: ignore */
		free(d);
		return 0;
	}
	if (h->n == h->cap) {
		size_t nc = h->cap ? h->cap * 2 : 16;
		void *ne;
		if (nc > SF_HISTORY_MAX) {
			free(d);
			h->err = SF_ETOOBIG;
			return 1;
		}
		ne = realloc(h->e, nc * sizeof(*h->e));
		if (!ne) {
			free(d);
			h->err = SF_ENOMEM;
			return 1;
		}
		h->e = ne;
		h->cap = nc;
	}
	struct sf_history_entry *e = &h->e[h->n];
	memset(e, 0, sizeof(*e));
	e->timestamp = strndup(d, (size_t)(run - d));
	e->run_id = strdup(run + strlen("_run_id="));
	if (asprintf(&e->manifest_ref, "%s%s/manifest", h->base, d) < 0)
		e->manifest_ref = NULL;
	free(d);
	h->n++;
	if (!e->timestamp || !e->run_id || !e->manifest_ref) {
		h->err = SF_ENOMEM;
		return 1;
	}
	return 0;
}

static int hist_cmp(const void *a, const void *b)
{
	const struct sf_history_entry *x = a, *y = b;
	/* Newest first: timestamps sort chronologically as text. */
	int c = strcmp(y->timestamp, x->timestamp);
	return c ? c : strcmp(y->run_id, x->run_id);
}

static int list_history(struct sf_reader *r, struct sf_history_entry **out,
			size_t *n, char *err, size_t errlen)
{
	struct hist_list h;
	char *base = store_url_join(r->prefix, "manifests/");
	int ret;

	memset(&h, 0, sizeof(h));
	*out = NULL;
	*n = 0;
	if (!base)
		return SF_ENOMEM;
	/* store_url_join drops a trailing '/': put it back for listing. */
	if (base[strlen(base) - 1] != '/') {
		char *b2 = NULL;
		if (asprintf(&b2, "%s/", base) < 0) {
			free(base);
			return SF_ENOMEM;
		}
		free(base);
		base = b2;
	}
	h.base = base;
	ret = store_list(r->store, base, "/", hist_cb, &h, err, errlen);
	/* The callback stops the listing (non-zero) only on its own error. */
	if (h.err)
		ret = sf_errf(err, errlen, h.err, "listing %s: %s", base,
			      h.err == SF_ETOOBIG ? "more than 1048576 manifests"
						  : sf_strerror(h.err));
	else if (ret > 0)
		ret = SF_EIO;
	if (ret == SF_EHTTP_404) /* file:// without manifests/: empty history */
		ret = 0;
	if (ret) {
		sf_history_free(h.e, h.n);
		free(base);
		return ret;
	}
	if (h.n)
		qsort(h.e, h.n, sizeof(*h.e), hist_cmp);
	free(base);
	*out = h.e;
	*n = h.n;
	return 0;
}

void sf_history_free(struct sf_history_entry *h, size_t n)
{
	if (!h)
		return;
	for (size_t i = 0; i < n; i++) {
		free(h[i].manifest_ref);
		free(h[i].timestamp);
		free(h[i].run_id);
	}
	free(h);
}

static int same_manifest(struct sf_reader *r, const char *a_url,
			 const char *b_ref)
{
	char *b = manifest_location(r, b_ref);
	int same = b && strcmp(a_url, b) == 0;
	free(b);
	return same;
}

int sf_history(struct sf_reader *r, struct sf_history_entry **out,
	       size_t *n, char *err, size_t errlen)
{
	struct sf_snapshot *s;
	int ret = list_history(r, out, n, err, errlen);

	if (ret)
		return ret;
	s = sf_reader_acquire(r);
	for (size_t i = 0; i < *n; i++)
		(*out)[i].is_current =
			same_manifest(r, s->manifest_url, (*out)[i].manifest_ref);
	sf_snapshot_release(s);
	return 0;
}

/* Start-up fallback (FORMAT.md 8): the manifest _CURRENT names is bad, so
 * try up to 3 older ones, newest first. */
static int fallback_snapshot(struct sf_reader *r, const char *bad_ref,
			     int bad_code, const char *bad_msg,
			     struct sf_snapshot **out, char *err, size_t errlen)
{
	struct sf_history_entry *h = NULL;
	size_t n = 0, tried = 0;
	char *bad_url = manifest_location(r, bad_ref);
	int ret;

	if (!bad_url)
		return SF_ENOMEM;
	ret = list_history(r, &h, &n, NULL, 0);
	if (ret) {
		ret = sf_errf(err, errlen, bad_code, "%s", bad_msg);
		goto out;
	}
	ret = bad_code;
	sf_errf(err, errlen, bad_code, "%s", bad_msg);
	for (size_t i = 0; i < n && tried < 3; i++) {
		char e2[512] = "";
		/* Only manifests older than the bad one. */
		if (strcmp(h[i].manifest_ref, bad_url) >= 0)
			continue;
		tried++;
		if (load_snapshot(r, h[i].manifest_ref, out, e2, sizeof(e2)) == 0) {
			sf_log(SF_LOG_ERROR,
			       "manifest named by _CURRENT is unusable (%s); "
			       "serving the older manifest %s instead",
			       bad_msg, h[i].manifest_ref);
			ret = 0;
			break;
		}
		sf_log(SF_LOG_WARN, "fallback manifest %s also unusable: %s",
		       h[i].manifest_ref, e2);
	}
out:
	sf_history_free(h, n);
	free(bad_url);
	return ret;
}

/* ---- open / close / refresh ------------------------------------------- */

static const char *keep(struct sf_reader *r, size_t *i, const char *s)
{
	if (!s || *i >= sizeof(r->str_copies) / sizeof(r->str_copies[0]))
		return NULL;
	r->str_copies[*i] = strdup(s);
	return r->str_copies[(*i)++];
}

static char *default_cache_dir(void)
{
	const char *x = getenv("XDG_CACHE_HOME"), *h = getenv("HOME");
	char *p = NULL;

	if (x && *x) {
		if (asprintf(&p, "%s/shardyfs", x) < 0)
			p = NULL;
	} else if (h && *h && access(h, W_OK) == 0) {
		if (asprintf(&p, "%s/.cache/shardyfs", h) < 0)
			p = NULL;
	} else if (asprintf(&p, "/tmp/shardyfs-cache-%u", (unsigned)getuid()) < 0) {
		p = NULL;
	}
	return p;
}

int sf_reader_open(struct sf_reader **out, const char *prefix,
		   const struct sf_options *opt, char *err, size_t errlen)
{
	struct sf_reader *r = NULL;
	struct sf_current cur;
	struct sf_snapshot *s = NULL;
	char emsg[1024] = "";
	size_t ki = 0;
	int ret;

	/* Before anything touches SQLite (see sfv_sqlite_setup()). */
	sfv_sqlite_setup();
	memset(&cur, 0, sizeof(cur));
	*out = NULL;
	if (!prefix || !*prefix)
		return sf_errf(err, errlen, SF_EINVAL, "empty prefix");
	r = calloc(1, sizeof(*r));
	if (!r)
		return SF_ENOMEM;
	atomic_init(&r->refs, 1);
	pthread_mutex_init(&r->mu, NULL);
	pthread_mutex_init(&r->refresh_mu, NULL);
	pthread_mutex_init(&r->cache_mu, NULL);
	pthread_cond_init(&r->async_cv, NULL);
	if (opt)
		r->opt = *opt;
	else
		sf_options_init(&r->opt);
	r->opt.endpoint_url = keep(r, &ki, r->opt.endpoint_url);
	r->opt.region = keep(r, &ki, r->opt.region);
	r->opt.profile = keep(r, &ki, r->opt.profile);
	r->opt.access_key_id = keep(r, &ki, r->opt.access_key_id);
	r->opt.secret_access_key = keep(r, &ki, r->opt.secret_access_key);
	r->opt.session_token = keep(r, &ki, r->opt.session_token);
	r->opt.manifest_ref = keep(r, &ki, r->opt.manifest_ref);
	/* A dropped credential would silently fall back to another identity. */
	if ((opt && opt->secret_access_key && !r->opt.secret_access_key) ||
	    (opt && opt->session_token && !r->opt.session_token) ||
	    (opt && opt->access_key_id && !r->opt.access_key_id) ||
	    (opt && opt->endpoint_url && !r->opt.endpoint_url) ||
	    (opt && opt->manifest_ref && !r->opt.manifest_ref) ||
	    (opt && opt->region && !r->opt.region) ||
	    (opt && opt->profile && !r->opt.profile)) {
		ret = SF_ENOMEM;
		goto out;
	}
	r->opt.cache_dir = NULL;
	if (r->opt.threads < 1)
		r->opt.threads = 1;
	if (r->opt.threads > 64)
		r->opt.threads = 64;
	if (r->opt.cache_bytes == 0)
		r->opt.cache_bytes = SFV_DEFAULT_BUDGET;
	if (opt && (opt->log_fn || opt->log_level != SF_LOG_WARN))
		sf_log_set(opt->log_level, opt->log_fn, opt->log_ctx);

	r->prefix = store_url_normalize(prefix);
	r->cache_dir = opt && opt->cache_dir ? strdup(opt->cache_dir)
					     : default_cache_dir();
	if (!r->prefix || !r->cache_dir) {
		ret = r->prefix ? SF_ENOMEM
				: sf_errf(err, errlen, SF_EURL, "bad prefix %s", prefix);
		goto out;
	}
	ret = store_open(&r->store, r->prefix, &r->opt, err, errlen);
	if (ret)
		goto out;
	ret = workers_new(&r->workers, r->opt.threads);
	if (ret)
		goto out;

	if (r->opt.manifest_ref) {
		r->pinned = 1;
		ret = load_snapshot(r, r->opt.manifest_ref, &s, err, errlen);
		goto installed;
	}
	ret = read_current(r, &cur, err, errlen);
	if (ret)
		goto out;
	ret = load_snapshot(r, cur.manifest_ref, &s, emsg, sizeof(emsg));
	if (ret == SF_EMANIFEST || ret == SF_EHTTP_404)
		ret = fallback_snapshot(r, cur.manifest_ref, ret, emsg, &s, err,
					errlen);
	else if (ret)
		sf_errf(err, errlen, ret, "%s", emsg);
	if (ret)
		goto out;
	if (r->opt.history_offset > 0) {
		struct sf_history_entry *h = NULL;
		size_t n = 0, at = 0;
		int found = 0;
		ret = list_history(r, &h, &n, err, errlen);
		if (ret)
			goto out;
		for (size_t i = 0; i < n; i++) {
			if (same_manifest(r, s->manifest_url, h[i].manifest_ref)) {
				at = i;
				found = 1;
				break;
			}
		}
		if (!found || at + (size_t)r->opt.history_offset >= n) {
			ret = sf_errf(err, errlen, SF_EINVAL,
				      "no manifest %d step(s) older than the "
				      "current one (%zu in history)",
				      r->opt.history_offset, n);
			sf_history_free(h, n);
			goto out;
		}
		sf_snapshot_release(s);
		s = NULL;
		r->pinned = 1;
		ret = load_snapshot(r, h[at + (size_t)r->opt.history_offset].manifest_ref,
				    &s, err, errlen);
		sf_history_free(h, n);
	}
installed:
	if (ret)
		goto out;
	r->cur = s;
	s = NULL;
	r->last_check_ok = sf_now_wall();
out:
	current_clear(&cur);
	if (s)
		sf_snapshot_release(s);
	if (ret) {
		reader_release(r);
		return ret;
	}
	*out = r;
	return 0;
}

void reader_async_end(struct sf_reader *r)
{
	pthread_mutex_lock(&r->mu);
	if (--r->async_pending == 0)
		pthread_cond_broadcast(&r->async_cv);
	pthread_mutex_unlock(&r->mu);
}

void sf_reader_close(struct sf_reader *r)
{
	struct sf_snapshot *s;

	if (!r)
		return;
	pthread_mutex_lock(&r->mu);
	r->closed = 1;
	/* Jobs run on the reader's workers; the last reader reference must
	 * not be dropped from one of them, so wait for them here. */
	while (r->async_pending)
		pthread_cond_wait(&r->async_cv, &r->mu);
	s = r->cur;
	r->cur = NULL;
	pthread_mutex_unlock(&r->mu);
	sf_snapshot_release(s);
	reader_release(r);
}

int sf_reader_refresh(struct sf_reader *r, int *changed, char *err,
		      size_t errlen)
{
	struct sf_current cur;
	struct sf_snapshot *s = NULL, *old = NULL;
	char emsg[1024] = "";
	int ret;

	if (changed)
		*changed = 0;
	if (r->pinned)
		return 0;
	pthread_mutex_lock(&r->refresh_mu);
	atomic_fetch_add(&r->n_refreshes, 1);
	ret = read_current(r, &cur, emsg, sizeof(emsg));
	if (ret)
		goto out;
	pthread_mutex_lock(&r->mu);
	int same = r->cur && strcmp(r->cur->manifest_ref, cur.manifest_ref) == 0;
	pthread_mutex_unlock(&r->mu);
	if (!same) {
		ret = load_snapshot(r, cur.manifest_ref, &s, emsg, sizeof(emsg));
		if (ret)
			goto out;
	}
	pthread_mutex_lock(&r->mu);
	if (s && !r->closed) {
		old = r->cur;
		r->cur = s;
		s = NULL;
		if (changed)
			*changed = 1;
		sf_log(SF_LOG_INFO, "refreshed to %s", cur.manifest_ref);
	}
	r->last_check_ok = sf_now_wall();
	r->last_refresh_err = 0;
	r->last_refresh_msg[0] = 0;
	pthread_mutex_unlock(&r->mu);
out:
	if (ret) {
		atomic_fetch_add(&r->n_refresh_errors, 1);
		pthread_mutex_lock(&r->mu);
		r->last_refresh_err = ret;
		snprintf(r->last_refresh_msg, sizeof(r->last_refresh_msg), "%s",
			 emsg);
		pthread_mutex_unlock(&r->mu);
		sf_log(SF_LOG_WARN, "refresh failed, keeping the current snapshot: %s",
		       emsg);
		sf_errf(err, errlen, ret, "%s", emsg);
	}
	pthread_mutex_unlock(&r->refresh_mu);
	current_clear(&cur);
	sf_snapshot_release(s);
	sf_snapshot_release(old);
	return ret;
}

int sf_reader_open_manifest(struct sf_reader *r, const char *manifest_ref,
			    struct sf_snapshot **out, char *err, size_t errlen)
{
	if (!manifest_ref || !*manifest_ref)
		return sf_errf(err, errlen, SF_EINVAL, "empty manifest ref");
	return load_snapshot(r, manifest_ref, out, err, errlen);
}

/* ---- shards ----------------------------------------------------------- */

static int ensure_cache(struct sf_reader *r, char *err, size_t errlen)
{
	int ret = 0;

	pthread_mutex_lock(&r->cache_mu);
	if (!r->cache)
		ret = sfv_cache_new(&r->cache, r->opt.cache_bytes, 2, err, errlen);
	pthread_mutex_unlock(&r->cache_mu);
	return ret;
}

/* The opened shard of row idx (opening it on first use). */
static int slot_shard(struct sf_snapshot *s, size_t idx, struct shard **out,
		      char *err, size_t errlen)
{
	struct shard_slot *sl = &s->slots[idx];
	const struct manifest_shard *ms = &s->m->shards[idx];
	struct shard_spec sp;
	struct shard *sh;
	int ret = 0;

	sh = atomic_load_explicit(&sl->sh, memory_order_acquire);
	if (sh) {
		*out = sh;
		return 0;
	}
	pthread_mutex_lock(&sl->mu);
	sh = atomic_load_explicit(&sl->sh, memory_order_relaxed);
	if (sh)
		goto done;
	if (s->mode == SF_ACCESS_RANGE) {
		ret = ensure_cache(s->r, err, errlen);
		if (ret)
			goto done;
	}
	memset(&sp, 0, sizeof(sp));
	sp.db_id = ms->db_id;
	sp.db_url = ms->db_url;
	sp.checkpoint_id = ms->checkpoint_id;
	sp.db_bytes = ms->db_bytes;
	sp.sidecar_name = s->m->has_sidecar && s->r->opt.use_sidecar
				  ? s->m->sidecar_filename
				  : NULL;
	sp.mode = s->mode;
	sp.store = s->r->store;
	sp.cache = s->r->cache;
	sp.cache_dir = s->r->cache_dir;
	ret = shard_open(&sh, &sp, err, errlen);
	if (ret == 0) {
		atomic_fetch_add(&s->r->n_shard_opens, 1);
		if (shard_was_downloaded(sh))
			atomic_fetch_add(&s->r->n_downloads, 1);
		atomic_store_explicit(&sl->sh, sh, memory_order_release);
	}
done:
	*out = sh;
	pthread_mutex_unlock(&sl->mu);
	return ret;
}

/* After a lookup found `sh` changed under its ETag (SF_EHTTP_412): retire
 * it so the next lookup opens the shard afresh instead of failing for the
 * life of the snapshot. The failed lookup itself still reports the error
 * (never pages of two versions). */
static void slot_retire(struct sf_snapshot *s, size_t idx, struct shard *sh)
{
	struct shard_slot *sl = &s->slots[idx];

	pthread_mutex_lock(&sl->mu);
	if (atomic_load_explicit(&sl->sh, memory_order_relaxed) == sh) {
		struct shard **nr = realloc(sl->retired,
					    (sl->n_retired + 1) * sizeof(*nr));
		if (nr) { /* on ENOMEM the shard simply stays in place */
			sl->retired = nr;
			sl->retired[sl->n_retired++] = sh;
			atomic_store_explicit(&sl->sh, NULL, memory_order_release);
		}
	}
	pthread_mutex_unlock(&sl->mu);
}

/* ---- lookups ---------------------------------------------------------- */

void reader_count(struct sf_reader *r, int status, double seconds)
{
	double us = seconds * 1e6;
	int b = us < 1 ? 0 : (int)(8.0 * log2(us + 1.0));

	atomic_fetch_add_explicit(&r->n_lookups, 1, memory_order_relaxed);
	if (status == 0)
		atomic_fetch_add_explicit(&r->n_found, 1, memory_order_relaxed);
	else if (status == SF_NOTFOUND)
		atomic_fetch_add_explicit(&r->n_notfound, 1, memory_order_relaxed);
	else
		atomic_fetch_add_explicit(&r->n_errors, 1, memory_order_relaxed);
	if (b >= SF_LAT_BUCKETS)
		b = SF_LAT_BUCKETS - 1;
	atomic_fetch_add_explicit(&r->lat[b], 1, memory_order_relaxed);
}

/* Encodes key for s into buf (or a malloc'd buffer in *heap, for long
 * keys). Returns 0 with *k and *klen set, or SF_EKEY. */
static int encode_key(const struct sf_snapshot *s, const struct sf_key *key,
		      uint8_t *buf, size_t cap, uint8_t **heap,
		      const uint8_t **k, size_t *klen, char *err, size_t errlen)
{
	size_t need = key->type == SF_KEY_INT ? 8 : key->len;
	uint8_t *dst = buf;
	int ret;

	*heap = NULL;
	if (need > cap) {
		*heap = malloc(need);
		if (!*heap)
			return SF_ENOMEM;
		dst = *heap;
		cap = need;
	}
	ret = sf_key_encode(s->m->key_encoding, key, dst, cap, klen, err, errlen);
	if (ret) {
		free(*heap);
		*heap = NULL;
		return ret;
	}
	*k = dst;
	return 0;
}

/* Routes key; *idx gets the manifest row or SIZE_MAX for an empty shard. */
static int route_row(struct sf_snapshot *s, const struct sf_key *key,
		     size_t *idx, char *err, size_t errlen)
{
	uint32_t db_id;
	const struct manifest_shard *ms;
	int ret = manifest_route(s->m, key, &db_id, err, errlen);

	if (ret)
		return ret;
	ms = manifest_shard(s->m, db_id);
	*idx = ms ? (size_t)(ms - s->m->shards) : SIZE_MAX;
	return 0;
}

static int snapshot_get_row(struct sf_snapshot *s, const struct sf_key *key,
			    void **value, size_t *len, char *err, size_t errlen)
{
	uint8_t buf[KEYBUF_STACK], *heap = NULL;
	const uint8_t *k;
	size_t klen, idx;
	struct shard *sh;
	int ret;

	*value = NULL;
	*len = 0;
	ret = encode_key(s, key, buf, sizeof(buf), &heap, &k, &klen, err, errlen);
	if (ret)
		return ret;
	ret = route_row(s, key, &idx, err, errlen);
	if (ret)
		goto out;
	if (idx == SIZE_MAX) {
		ret = SF_NOTFOUND; /* empty shard: no I/O */
		goto out;
	}
	ret = slot_shard(s, idx, &sh, err, errlen);
	if (ret)
		goto out;
	ret = shard_get(sh, k, klen, value, len, err, errlen);
	if (ret == SF_EHTTP_412)
		slot_retire(s, idx, sh);
out:
	free(heap);
	return ret;
}

int sf_snapshot_get(struct sf_snapshot *s, const struct sf_key *key,
		    void **value, size_t *len, char *err, size_t errlen)
{
	double t0 = sf_now_mono();
	int ret = snapshot_get_row(s, key, value, len, err, errlen);

	reader_count(s->r, ret, sf_now_mono() - t0);
	return ret;
}

int sf_get(struct sf_reader *r, const struct sf_key *key, void **value,
	   size_t *len, char *err, size_t errlen)
{
	struct sf_snapshot *s = sf_reader_acquire(r);
	int ret = sf_snapshot_get(s, key, value, len, err, errlen);

	/* 412: the shard changed under its ETag, so _CURRENT has probably
	 * moved on. Re-check it and retry once on the new snapshot rather
	 * than mixing pages of two versions. */
	if (ret == SF_EHTTP_412 && !r->pinned) {
		int changed = 0;
		if (sf_reader_refresh(r, &changed, NULL, 0) == 0 && changed) {
			sf_snapshot_release(s);
			s = sf_reader_acquire(r);
			ret = sf_snapshot_get(s, key, value, len, err, errlen);
		}
	}
	sf_snapshot_release(s);
	return ret;
}

/* A batch: keys grouped per shard; the submitting thread and pool workers
 * claim groups with an atomic counter, so nobody waits on queued work. */
struct batch {
	atomic_int refs;
	struct sf_snapshot *s;
	const struct sf_key *keys;
	struct sf_result *res;
	size_t *order;      /* key indices, grouped by shard row */
	size_t *gstart;     /* ngroups + 1 offsets into order */
	size_t *grow;       /* shard row of each group */
	size_t ngroups;
	atomic_size_t next;
	size_t done;        /* protected by mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int first_err;      /* protected by mu */
	char err[512];      /* protected by mu */
};

static void batch_release(struct batch *b)
{
	if (atomic_fetch_sub(&b->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&b->mu);
	pthread_cond_destroy(&b->cv);
	free(b->order);
	free(b->gstart);
	free(b->grow);
	free(b);
}

static void batch_note_err(struct batch *b, int code, const char *msg)
{
	pthread_mutex_lock(&b->mu);
	if (!b->first_err) {
		b->first_err = code;
		snprintf(b->err, sizeof(b->err), "%s", msg);
	}
	pthread_mutex_unlock(&b->mu);
}

static void batch_run_group(struct batch *b, size_t g)
{
	struct sf_snapshot *s = b->s;
	struct shard *sh = NULL;
	char err[512] = "";
	int oret = slot_shard(s, b->grow[g], &sh, err, sizeof(err));

	if (oret)
		batch_note_err(b, oret, err);
	for (size_t j = b->gstart[g]; j < b->gstart[g + 1]; j++) {
		size_t i = b->order[j];
		struct sf_result *res = &b->res[i];
		uint8_t buf[KEYBUF_STACK], *heap = NULL;
		const uint8_t *k;
		size_t klen;
		double t0 = sf_now_mono();

		if (oret) {
			res->status = oret;
		} else {
			res->status = encode_key(s, &b->keys[i], buf, sizeof(buf),
						 &heap, &k, &klen, err,
						 sizeof(err));
			if (res->status == 0)
				res->status = shard_get(sh, k, klen, &res->value,
							&res->len, err,
							sizeof(err));
			if (res->status == SF_EHTTP_412)
				slot_retire(s, b->grow[g], sh);
			free(heap);
			if (res->status < 0)
				batch_note_err(b, res->status, err);
		}
		reader_count(s->r, res->status, sf_now_mono() - t0);
	}
}

static void batch_work(void *arg)
{
	struct batch *b = arg;
	size_t g, ran = 0;

	while ((g = atomic_fetch_add(&b->next, 1)) < b->ngroups) {
		batch_run_group(b, g);
		ran++;
	}
	if (ran) {
		pthread_mutex_lock(&b->mu);
		b->done += ran;
		if (b->done == b->ngroups)
			pthread_cond_broadcast(&b->cv);
		pthread_mutex_unlock(&b->mu);
	}
	batch_release(b);
}

int sf_snapshot_multi_get(struct sf_snapshot *s, const struct sf_key *keys,
			  size_t n, struct sf_result *results, char *err,
			  size_t errlen)
{
	struct batch *b = NULL;
	size_t nrows = s->m->n_shards, *row = NULL, *count = NULL;
	int ret = 0;

	for (size_t i = 0; i < n; i++)
		memset(&results[i], 0, sizeof(results[i]));
	if (n == 0)
		return 0;
	b = calloc(1, sizeof(*b));
	row = malloc(n * sizeof(*row));
	count = calloc(nrows + 1, sizeof(*count));
	if (b) {
		/* Everything is allocated before any key is answered, so a
		 * failure here leaves no key looking found. */
		b->gstart = calloc(nrows + 1, sizeof(size_t));
		b->grow = calloc(nrows + 1, sizeof(size_t));
		b->order = malloc(n * sizeof(size_t));
	}
	if (!b || !row || !count || !b->gstart || !b->grow || !b->order) {
		if (b) {
			free(b->gstart);
			free(b->grow);
			free(b->order);
		}
		free(b);
		b = NULL;
		for (size_t i = 0; i < n; i++)
			results[i].status = SF_ENOMEM;
		ret = SF_ENOMEM;
		goto out;
	}
	atomic_init(&b->refs, 1);
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	b->s = s;
	b->keys = keys;
	b->res = results;

	/* Route every key; keys that need no shard are answered here. */
	for (size_t i = 0; i < n; i++) {
		char e[512] = "";
		uint8_t buf[KEYBUF_STACK], *heap = NULL;
		const uint8_t *k;
		size_t klen;
		int st = encode_key(s, &keys[i], buf, sizeof(buf), &heap, &k,
				    &klen, e, sizeof(e));
		free(heap);
		if (st == 0)
			st = route_row(s, &keys[i], &row[i], e, sizeof(e));
		if (st == 0 && row[i] == SIZE_MAX)
			st = SF_NOTFOUND;
		if (st) {
			row[i] = SIZE_MAX;
			results[i].status = st;
			reader_count(s->r, st, 0);
			if (st < 0)
				batch_note_err(b, st, e);
			continue;
		}
		count[row[i]]++;
	}
	/* Counting sort of key indices by shard row. */
	size_t pos = 0;
	for (size_t r = 0; r < nrows; r++) {
		if (!count[r])
			continue;
		b->grow[b->ngroups] = r;
		b->gstart[b->ngroups] = pos;
		pos += count[r];
		count[r] = b->gstart[b->ngroups]; /* now a write cursor */
		b->ngroups++;
	}
	b->gstart[b->ngroups] = pos;
	for (size_t i = 0; i < n; i++)
		if (row[i] != SIZE_MAX)
			b->order[count[row[i]]++] = i;

	/* Helpers for all but one group; this thread takes groups too. */
	size_t helpers = b->ngroups > 1 ? b->ngroups - 1 : 0;
	if (helpers > (size_t)s->r->opt.threads)
		helpers = (size_t)s->r->opt.threads;
	for (size_t h = 0; h < helpers; h++) {
		atomic_fetch_add(&b->refs, 1);
		if (workers_submit(s->r->workers, batch_work, b) != 0) {
			atomic_fetch_sub(&b->refs, 1);
			break;
		}
	}
	atomic_fetch_add(&b->refs, 1);
	batch_work(b);
	pthread_mutex_lock(&b->mu);
	while (b->done < b->ngroups)
		pthread_cond_wait(&b->cv, &b->mu);
	pthread_mutex_unlock(&b->mu);
out:
	if (b) {
		if (!ret && b->first_err) {
			ret = b->first_err;
			sf_errf(err, errlen, ret, "%s", b->err);
		}
		batch_release(b);
	}
	free(row);
	free(count);
	return ret;
}

int sf_multi_get(struct sf_reader *r, const struct sf_key *keys, size_t n,
		 struct sf_result *results, char *err, size_t errlen)
{
	struct sf_snapshot *s = sf_reader_acquire(r);
	int ret = sf_snapshot_multi_get(s, keys, n, results, err, errlen);
	sf_snapshot_release(s);
	return ret;
}

/* ---- introspection ---------------------------------------------------- */

int sf_snapshot_route(struct sf_snapshot *s, const struct sf_key *key,
		      uint32_t *db_id, char *err, size_t errlen)
{
	uint8_t buf[KEYBUF_STACK], *heap = NULL;
	const uint8_t *k;
	size_t klen;
	int ret = encode_key(s, key, buf, sizeof(buf), &heap, &k, &klen, err,
			     errlen);

	free(heap);
	if (ret)
		return ret;
	return manifest_route(s->m, key, db_id, err, errlen);
}

void sf_snapshot_info(const struct sf_snapshot *s, struct sf_snapshot_info *o)
{
	const struct manifest *m = s->m;

	memset(o, 0, sizeof(*o));
	o->run_id = m->run_id;
	o->created_at = m->created_at;
	o->created_at_epoch = m->created_at_epoch;
	o->manifest_ref = s->manifest_ref;
	o->manifest_url = s->manifest_url;
	o->s3_prefix = m->s3_prefix;
	o->strategy = m->strategy_name;
	o->hash_algorithm = m->hash_algorithm;
	o->key_col = m->key_col;
	o->key_encoding = m->key_encoding;
	o->num_dbs = m->num_dbs;
	o->num_nonempty = (uint32_t)m->n_shards;
	for (size_t i = 0; i < m->n_shards; i++) {
		o->total_rows += m->shards[i].row_count;
		o->total_bytes += m->shards[i].db_bytes;
	}
	o->format_version = m->format_version;
	o->has_sidecars = m->has_sidecar;
	o->access_mode = s->mode;
	o->generation = s->generation;
}

int sf_snapshot_shard(const struct sf_snapshot *s, uint32_t db_id,
		      struct sf_shard_info *o)
{
	const struct manifest_shard *ms;

	memset(o, 0, sizeof(*o));
	if (db_id >= s->m->num_dbs)
		return SF_EINVAL;
	o->db_id = db_id;
	ms = manifest_shard(s->m, db_id);
	if (!ms) {
		o->empty = 1;
		return 0;
	}
	o->db_url = ms->db_url;
	o->row_count = ms->row_count;
	o->db_bytes = ms->db_bytes;
	o->min_key_json = ms->min_key;
	o->max_key_json = ms->max_key;
	o->checkpoint_id = ms->checkpoint_id;
	o->attempt = ms->attempt;
	o->opened = atomic_load(&s->slots[ms - s->m->shards].sh) != NULL;
	return 0;
}

int sf_health(struct sf_reader *r, double staleness_s, struct sf_health *o)
{
	double now = sf_now_wall();

	memset(o, 0, sizeof(*o));
	if (staleness_s <= 0)
		staleness_s = r->opt.staleness_s;
	pthread_mutex_lock(&r->mu);
	if (r->closed || !r->cur) {
		o->status = SF_UNHEALTHY;
		snprintf(o->message, sizeof(o->message), "reader closed");
		pthread_mutex_unlock(&r->mu);
		return 0;
	}
	o->age_s = now - r->cur->m->created_at_epoch;
	o->since_refresh_s = now - r->last_check_ok;
	o->last_refresh_error = r->last_refresh_err;
	if (r->last_refresh_err) {
		o->status = SF_DEGRADED;
		snprintf(o->message, sizeof(o->message), "last refresh failed: %s",
			 r->last_refresh_msg);
	} else if (staleness_s > 0 && o->age_s > staleness_s) {
		o->status = SF_DEGRADED;
		snprintf(o->message, sizeof(o->message),
			 "snapshot is %.0f s old (threshold %.0f s)", o->age_s,
			 staleness_s);
	}
	pthread_mutex_unlock(&r->mu);
	return 0;
}

static double lat_pct(struct sf_reader *r, double q)
{
	uint64_t tot = 0, acc = 0, c[SF_LAT_BUCKETS];

	for (int i = 0; i < SF_LAT_BUCKETS; i++) {
		c[i] = atomic_load_explicit(&r->lat[i], memory_order_relaxed);
		tot += c[i];
	}
	if (!tot)
		return 0;
	for (int i = 0; i < SF_LAT_BUCKETS; i++) {
		acc += c[i];
		if ((double)acc >= q * (double)tot)
			return exp2((i + 0.5) / 8.0) - 1.0;
	}
	return 0;
}

void sf_reader_stats(struct sf_reader *r, struct sf_stats *o)
{
	struct store_stats ss;
	struct sfv_stats vs;

	memset(o, 0, sizeof(*o));
	memset(&vs, 0, sizeof(vs));
	store_stats(r->store, &ss);
	pthread_mutex_lock(&r->cache_mu);
	if (r->cache)
		sfv_cache_stats(r->cache, &vs);
	pthread_mutex_unlock(&r->cache_mu);
	o->lookups = atomic_load(&r->n_lookups);
	o->found = atomic_load(&r->n_found);
	o->notfound = atomic_load(&r->n_notfound);
	o->errors = atomic_load(&r->n_errors);
	o->get_requests = ss.get_requests;
	o->range_requests = ss.range_requests;
	o->head_requests = ss.head_requests;
	o->list_requests = ss.list_requests;
	o->put_requests = ss.put_requests;
	o->bytes_downloaded = ss.bytes_in;
	o->bytes_get = ss.bytes_get;
	o->bytes_range = ss.bytes_range;
	o->bytes_other = ss.bytes_other;
	o->retries = ss.retries;
	o->hedged_requests = ss.hedged;
	o->cache_hits = vs.cache_hits;
	o->cache_misses = vs.cache_misses;
	o->cache_bytes = vs.cache_bytes;
	o->cache_budget = vs.cache_budget ? vs.cache_budget : r->opt.cache_bytes;
	o->sidecar_hits = vs.sidecar_hits;
	o->prefetch_hits = vs.prefetch_hits;
	o->prefetch_wasted = vs.prefetch_wasted;
	o->inflight_fetches = vs.inflight_fetches;
	o->shard_opens = atomic_load(&r->n_shard_opens);
	o->downloads = atomic_load(&r->n_downloads);
	o->refreshes = atomic_load(&r->n_refreshes);
	o->refresh_errors = atomic_load(&r->n_refresh_errors);
	o->lookup_p50_us = lat_pct(r, 0.50);
	o->lookup_p99_us = lat_pct(r, 0.99);
}

/* ---- iteration -------------------------------------------------------- */

struct sf_iter {
	struct sf_snapshot *s;
	struct shard_iter *it; /* NULL for an empty shard */
};

int sf_iter_open(struct sf_snapshot *s, uint32_t db_id, struct sf_iter **out,
		 char *err, size_t errlen)
{
	struct sf_iter *it;
	const struct manifest_shard *ms;
	struct shard *sh;
	int ret = 0;

	*out = NULL;
	if (db_id >= s->m->num_dbs)
		return sf_errf(err, errlen, SF_EINVAL, "no shard %u", db_id);
	it = calloc(1, sizeof(*it));
	if (!it)
		return SF_ENOMEM;
	it->s = sf_snapshot_retain(s);
	ms = manifest_shard(s->m, db_id);
	if (ms) {
		ret = slot_shard(s, (size_t)(ms - s->m->shards), &sh, err, errlen);
		if (ret == 0)
			ret = shard_iter_open(sh, &it->it, err, errlen);
	}
	if (ret) {
		sf_iter_close(it);
		return ret;
	}
	*out = it;
	return 0;
}

int sf_iter_next(struct sf_iter *it, const uint8_t **key, size_t *klen,
		 uint64_t *vlen, char *err, size_t errlen)
{
	if (!it->it)
		return SF_NOTFOUND;
	return shard_iter_next(it->it, key, klen, vlen, err, errlen);
}

void sf_iter_close(struct sf_iter *it)
{
	if (!it)
		return;
	shard_iter_close(it->it);
	sf_snapshot_release(it->s);
	free(it);
}
