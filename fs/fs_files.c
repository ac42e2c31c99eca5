/*
 * fs_files.c -- the JSON files of the shardyfs mount: snapshot, health,
 * stats and shards/db=NNNNN/info.
 *
 * Each file is rendered once, when it is looked up, into the inode's
 * buffer: its stat size is then exact and a reader sees one consistent
 * document however it reads it. `snapshot` describes a view and never
 * changes, so it is rendered once per view; the others change with time and
 * get a new inode per lookup (see fs_inode.c).
 *
 * Output is pretty-printed JSON (jansson) with a trailing newline, so that
 * `cat` and `jq` both work. Strings from the manifest are escaped by the
 * encoder; min_key/max_key, which the manifest stores as JSON text, are
 * embedded as JSON when they parse and as a string otherwise.
 */
#include "fs_inode.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

static const char *access_name(enum sf_access_mode m)
{
	switch (m) {
	case SF_ACCESS_DOWNLOAD:
		return "download";
	case SF_ACCESS_RANGE:
		return "range";
	case SF_ACCESS_AUTO:
		break;
	}
	return "auto";
}

static const char *health_name(enum sf_health_status s)
{
	switch (s) {
	case SF_HEALTHY:
		return "healthy";
	case SF_DEGRADED:
		return "degraded";
	case SF_UNHEALTHY:
		break;
	}
	return "unhealthy";
}

/* json_string() refuses invalid UTF-8: fall back to an escaped copy. */
static json_t *jstr(const char *s)
{
	json_t *j;

	if (!s)
		return json_null();
	j = json_string(s);
	if (!j) {
		size_t n = strlen(s);
		char *c = malloc(n + 1);

		if (!c)
			return NULL;
		for (size_t i = 0; i <= n; i++)
			c[i] = (unsigned char)s[i] >= 0x80 ? '?' : s[i];
		j = json_string(c);
		free(c);
	}
	return j;
}

static json_t *jnum(uint64_t v)
{
	return json_integer((json_int_t)v);
}

static json_t *jtext(const char *json_text)
{
	json_t *j;

	if (!json_text)
		return json_null();
	j = json_loads(json_text, JSON_DECODE_ANY, NULL);
	return j ? j : jstr(json_text);
}

/* Serializes and frees `root`; adds the trailing newline. */
static char *finish(json_t *root, size_t *len)
{
	char *s, *out;
	size_t n;

	if (!root)
		return NULL;
	s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!s)
		return NULL;
	n = strlen(s);
	out = malloc(n + 2);
	if (out) {
		memcpy(out, s, n);
		out[n] = '\n';
		out[n + 1] = 0;
		*len = n + 1;
	}
	free(s);
	return out;
}

char *fs_render_snapshot(struct fs *fs, struct fs_view *v, size_t *len)
{
	const struct sf_snapshot_info *i = &v->info;
	json_t *o = json_object();

	(void)fs;
	if (!o)
		return NULL;
	json_object_set_new(o, "run_id", jstr(i->run_id));
	json_object_set_new(o, "created_at", jstr(i->created_at));
	json_object_set_new(o, "created_at_epoch", json_real(i->created_at_epoch));
	json_object_set_new(o, "manifest_ref", jstr(i->manifest_ref));
	json_object_set_new(o, "manifest_url", jstr(i->manifest_url));
	json_object_set_new(o, "s3_prefix", jstr(i->s3_prefix));
	json_object_set_new(o, "strategy", jstr(i->strategy));
	json_object_set_new(o, "hash_algorithm", jstr(i->hash_algorithm));
	json_object_set_new(o, "key_col", jstr(i->key_col));
	json_object_set_new(o, "key_encoding",
			    jstr(sf_encoding_name(i->key_encoding)));
	json_object_set_new(o, "num_dbs", jnum(i->num_dbs));
	json_object_set_new(o, "num_nonempty", jnum(i->num_nonempty));
	json_object_set_new(o, "total_rows", jnum(i->total_rows));
	json_object_set_new(o, "total_bytes", jnum(i->total_bytes));
	json_object_set_new(o, "format_version", json_integer(i->format_version));
	json_object_set_new(o, "has_sidecars", json_boolean(i->has_sidecars));
	json_object_set_new(o, "access_mode", jstr(access_name(i->access_mode)));
	json_object_set_new(o, "generation", jnum(i->generation));
	json_object_set_new(o, "pinned", json_boolean(v->history));
	return finish(o, len);
}

char *fs_render_shard(struct fs *fs, struct fs_view *v, uint32_t db,
		      size_t *len)
{
	struct sf_shard_info si;
	struct sf_stats st;
	json_t *o, *c;

	if (sf_snapshot_shard(v->snap, db, &si) != 0)
		return NULL;
	sf_reader_stats(fs->reader, &st);
	o = json_object();
	c = json_object();
	if (!o || !c) {
		json_decref(o);
		json_decref(c);
		return NULL;
	}
	json_object_set_new(o, "db_id", jnum(si.db_id));
	json_object_set_new(o, "empty", json_boolean(si.empty));
	json_object_set_new(o, "db_url", jstr(si.db_url));
	json_object_set_new(o, "row_count", jnum(si.row_count));
	json_object_set_new(o, "db_bytes", jnum(si.db_bytes));
	json_object_set_new(o, "min_key", jtext(si.min_key_json));
	json_object_set_new(o, "max_key", jtext(si.max_key_json));
	json_object_set_new(o, "checkpoint_id", jstr(si.checkpoint_id));
	json_object_set_new(o, "attempt", json_integer(si.attempt));
	json_object_set_new(o, "opened", json_boolean(si.opened));
	json_object_set_new(o, "access_mode",
			    jstr(access_name(v->info.access_mode)));
	/* The page cache and the download cache are shared by all shards. */
	json_object_set_new(c, "bytes", jnum(st.cache_bytes));
	json_object_set_new(c, "budget", jnum(st.cache_budget));
	json_object_set_new(c, "hits", jnum(st.cache_hits));
	json_object_set_new(c, "misses", jnum(st.cache_misses));
	json_object_set_new(c, "downloads", jnum(st.downloads));
	json_object_set_new(o, "cache", c);
	return finish(o, len);
}

char *fs_render_health(struct fs *fs, size_t *len)
{
	struct sf_health h;
	json_t *o = json_object();
	uint64_t gen, count;
	char last[sizeof(fs->last_refresh)];
	int rc;

	if (!o)
		return NULL;
	memset(&h, 0, sizeof(h));
	rc = sf_health(fs->reader, fs->cfg.staleness_s, &h);
	pthread_mutex_lock(&fs->mu);
	gen = fs->current->info.generation;
	count = fs->refresh_count;
	memcpy(last, fs->last_refresh, sizeof(last));
	pthread_mutex_unlock(&fs->mu);

	json_object_set_new(o, "status", jstr(rc == 0 ? health_name(h.status)
						       : "unhealthy"));
	json_object_set_new(o, "age_s", json_real(h.age_s));
	json_object_set_new(o, "since_refresh_s", json_real(h.since_refresh_s));
	json_object_set_new(o, "last_refresh_error",
			    json_integer(h.last_refresh_error));
	json_object_set_new(o, "last_refresh_error_name",
			    h.last_refresh_error ?
			    jstr(sf_strerror(h.last_refresh_error)) :
			    json_null());
	json_object_set_new(o, "message", jstr(h.message));
	json_object_set_new(o, "generation", jnum(gen));
	json_object_set_new(o, "refreshes", jnum(count));
	json_object_set_new(o, "last_refresh", jstr(last));
	json_object_set_new(o, "staleness_s", json_real(fs->cfg.staleness_s));
	return finish(o, len);
}

char *fs_render_stats(struct fs *fs, size_t *len)
{
	struct sf_stats s;
	json_t *o = json_object(), *f = json_object();
	uint64_t nodes, cached;

	if (!o || !f) {
		json_decref(o);
		json_decref(f);
		return NULL;
	}
	sf_reader_stats(fs->reader, &s);
	pthread_mutex_lock(&fs->mu);
	nodes = fs->nodes;
	cached = fs->cached_bytes;
	pthread_mutex_unlock(&fs->mu);

#define N(field) json_object_set_new(o, #field, jnum(s.field))
	N(lookups);
	N(found);
	N(notfound);
	N(errors);
	N(get_requests);
	N(range_requests);
	N(head_requests);
	N(list_requests);
	N(bytes_downloaded);
	N(bytes_get);
	N(bytes_range);
	N(bytes_other);
	N(retries);
	N(hedged_requests);
	N(cache_hits);
	N(cache_misses);
	N(cache_bytes);
	N(cache_budget);
	N(sidecar_hits);
	N(prefetch_hits);
	N(prefetch_wasted);
	N(inflight_fetches);
	N(shard_opens);
	N(downloads);
	N(refreshes);
	N(refresh_errors);
#undef N
	json_object_set_new(o, "lookup_p50_us", json_real(s.lookup_p50_us));
	json_object_set_new(o, "lookup_p99_us", json_real(s.lookup_p99_us));

	json_object_set_new(f, "lookups",
			    jnum(__atomic_load_n(&fs->n_lookups, __ATOMIC_RELAXED)));
	json_object_set_new(f, "negative",
			    jnum(__atomic_load_n(&fs->n_negative, __ATOMIC_RELAXED)));
	json_object_set_new(f, "errors",
			    jnum(__atomic_load_n(&fs->n_errors, __ATOMIC_RELAXED)));
	json_object_set_new(f, "reads",
			    jnum(__atomic_load_n(&fs->n_reads, __ATOMIC_RELAXED)));
	json_object_set_new(f, "value_refetches",
			    jnum(__atomic_load_n(&fs->n_refetch, __ATOMIC_RELAXED)));
	json_object_set_new(f, "inodes", jnum(nodes));
	json_object_set_new(f, "value_cache_bytes", jnum(cached));
	json_object_set_new(f, "value_cache_budget", jnum(fs->cfg.value_cache));
	json_object_set_new(o, "fs", f);
	return finish(o, len);
}
