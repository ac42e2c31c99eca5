/*
 * fs_inode.c -- views and the inode table of the shardyfs mount.
 *
 * Inode numbers are handed out from a counter and never reused, so the
 * kernel can never confuse an inode of an old snapshot with one of a new
 * snapshot: the FUSE generation number can stay 0. Two uthash tables index
 * the same nodes: by inode number (every request) and by identity (kind,
 * view, shard, key) so that a name looked up twice in one view yields the
 * same inode and the kernel's lookup count on it simply grows. Files whose
 * content is rendered per lookup (health, stats, shard info) are never
 * deduplicated: each lookup gets a fresh inode, which is what lets the kernel
 * cache pages of every file forever without serving stale figures.
 *
 * A key node keeps the value that the lookup had to fetch anyway (to know
 * the size), as long as the total stays under the value budget
 * (-o value_cache); a read of a node without its value fetches it again from
 * the node's own view, so an open file always reads the snapshot it was
 * looked up in.
 *
 * Views are reference counted under fs->mu: each node holds one reference,
 * the current view holds one for being current, and a lookup in progress
 * holds one plus an in-flight mark (the refresh thread waits for in-flight
 * lookups of the old view before invalidating names, so that no lookup can
 * install an old inode under a name after the invalidation). The snapshot
 * is released outside the lock when the last reference goes.
 */
#include "fs_inode.h"

#include <stdlib.h>
#include <string.h>

/* ---- views ------------------------------------------------------------- */

struct fs_view *fs_view_new(struct sf_snapshot *snap)
{
	struct fs_view *v = calloc(1, sizeof(*v));

	if (!v) {
		sf_snapshot_release(snap);
		return NULL;
	}
	v->snap = snap;
	sf_snapshot_info(snap, &v->info);
	v->refs = 1;
	return v;
}

static void view_free(struct fs_view *v)
{
	if (!v)
		return;
	sf_snapshot_release(v->snap);
	free(v->ref);
	free(v);
}

/* Drops a reference with fs->mu held; returns the view if it must now be
 * freed (by the caller, after unlocking). */
static struct fs_view *view_put_locked(struct fs *fs, struct fs_view *v)
{
	if (!v || --v->refs > 0)
		return NULL;
	if (v->history) {
		struct fs_view **pp = &fs->hist_views;

		while (*pp && *pp != v)
			pp = &(*pp)->next;
		if (*pp)
			*pp = v->next;
	}
	return v;
}

void fs_view_ref(struct fs *fs, struct fs_view *v)
{
	pthread_mutex_lock(&fs->mu);
	v->refs++;
	pthread_mutex_unlock(&fs->mu);
}

void fs_view_unref(struct fs *fs, struct fs_view *v)
{
	struct fs_view *dead;

	if (!v)
		return;
	pthread_mutex_lock(&fs->mu);
	dead = view_put_locked(fs, v);
	pthread_mutex_unlock(&fs->mu);
	view_free(dead);
}

struct fs_view *fs_view_enter(struct fs *fs)
{
	struct fs_view *v;

	pthread_mutex_lock(&fs->mu);
	v = fs->current;
	v->refs++;
	v->inflight++;
	pthread_mutex_unlock(&fs->mu);
	return v;
}

struct fs_view *fs_view_current(struct fs *fs)
{
	struct fs_view *v;

	pthread_mutex_lock(&fs->mu);
	v = fs->current;
	v->refs++;
	pthread_mutex_unlock(&fs->mu);
	return v;
}

void fs_view_leave(struct fs *fs, struct fs_view *v)
{
	struct fs_view *dead;

	pthread_mutex_lock(&fs->mu);
	if (--v->inflight == 0)
		pthread_cond_broadcast(&fs->cond);
	dead = view_put_locked(fs, v);
	pthread_mutex_unlock(&fs->mu);
	view_free(dead);
}

static struct fs_view *find_history_locked(struct fs *fs, const char *ref)
{
	for (struct fs_view *v = fs->hist_views; v; v = v->next)
		if (strcmp(v->ref, ref) == 0)
			return v;
	return NULL;
}

int fs_view_history(struct fs *fs, const char *ref, struct fs_view **out,
		    char *err, size_t errlen)
{
	struct sf_snapshot *snap = NULL;
	struct fs_view *v, *mine = NULL;
	int rc;

	pthread_mutex_lock(&fs->mu);
	v = find_history_locked(fs, ref);
	if (v)
		v->refs++;
	pthread_mutex_unlock(&fs->mu);
	if (v) {
		*out = v;
		return 0;
	}

	/* Not open yet: open it without the lock (network I/O). */
	rc = sf_reader_open_manifest(fs->reader, ref, &snap, err, errlen);
	if (rc != 0)
		return rc;
	mine = fs_view_new(snap);
	if (!mine)
		return SF_ENOMEM;
	mine->ref = strdup(ref);
	if (!mine->ref) {
		view_free(mine);
		return SF_ENOMEM;
	}
	mine->history = 1;

	pthread_mutex_lock(&fs->mu);
	v = find_history_locked(fs, ref);
	if (v) {
		v->refs++;      /* another lookup won the race */
	} else {
		mine->next = fs->hist_views;
		fs->hist_views = mine;
		v = mine;
		mine = NULL;
	}
	pthread_mutex_unlock(&fs->mu);
	view_free(mine);
	*out = v;
	return 0;
}

/* ---- nodes ------------------------------------------------------------- */

static void node_free(struct fs_node *n)
{
	if (!n)
		return;
	while (n->names) {
		struct fs_name *nx = n->names->next;

		free(n->names);
		n->names = nx;
	}
	free(n->key);
	if (n->kind == FS_KEY)
		sf_free(n->data);   /* values come from sf_snapshot_get() */
	else
		free(n->data);
	free(n->id);
	free(n);
}

int fs_tables_init(struct fs *fs)
{
	static const struct {
		fuse_ino_t ino;
		enum fs_kind kind;
	} stable[] = {
		{FS_INO_ROOT, FS_ROOT},
		{FS_INO_KEYS, FS_KEYS},
		{FS_INO_SHARDS, FS_SHARDS},
		{FS_INO_HISTORY, FS_HISTORY},
	};

	fs->next_ino = FS_INO_FIRST;
	for (size_t i = 0; i < sizeof(stable) / sizeof(stable[0]); i++) {
		struct fs_node *n = calloc(1, sizeof(*n));

		if (!n)
			return SF_ENOMEM;
		n->ino = stable[i].ino;
		n->kind = stable[i].kind;
		n->nlookup = 1;
		n->mtime = fs->start_time;
		HASH_ADD(hh, fs->by_ino, ino, sizeof(n->ino), n);
	}
	return 0;
}

void fs_tables_free(struct fs *fs)
{
	struct fs_node *n, *tmp;
	struct fs_view *dead;

	pthread_mutex_lock(&fs->mu);
	HASH_ITER(hh, fs->by_ino, n, tmp) {
		HASH_DELETE(hh, fs->by_ino, n);
		if (n->id)
			HASH_DELETE(hid, fs->by_id, n);
		dead = view_put_locked(fs, n->view);
		pthread_mutex_unlock(&fs->mu);
		view_free(dead);
		node_free(n);
		pthread_mutex_lock(&fs->mu);
	}
	dead = view_put_locked(fs, fs->current);
	fs->current = NULL;
	pthread_mutex_unlock(&fs->mu);
	view_free(dead);
}

/* Identity of a node: kind, view and shard, then the key bytes (malloc'd). */
static char *identity(enum fs_kind kind, const struct fs_view *v, uint32_t db,
		      const uint8_t *key, size_t klen, size_t *idlen)
{
	struct {
		uint32_t kind;
		uint32_t db;
		uintptr_t view;
	} head;
	char *id;

	memset(&head, 0, sizeof(head));
	head.kind = (uint32_t)kind;
	head.db = kind == FS_KEY ? 0 : db;
	head.view = (uintptr_t)v;
	*idlen = sizeof(head) + klen;
	id = malloc(*idlen);
	if (!id)
		return NULL;
	memcpy(id, &head, sizeof(head));
	if (klen)
		memcpy(id + sizeof(head), key, klen);
	return id;
}

struct fs_node *fs_node_reuse(struct fs *fs, enum fs_kind kind,
			      struct fs_view *v, uint32_t db,
			      const uint8_t *key, size_t klen)
{
	struct fs_node *found = NULL;
	size_t idlen;
	char *id = identity(kind, v, db, key, klen, &idlen);

	if (!id)
		return NULL;
	pthread_mutex_lock(&fs->mu);
	HASH_FIND(hid, fs->by_id, id, idlen, found);
	if (found)
		found->nlookup++;
	pthread_mutex_unlock(&fs->mu);
	free(id);
	return found;
}

struct fs_node *fs_node_add(struct fs *fs, struct fs_node *n, int dedup)
{
	struct fs_node *found = NULL;

	if (dedup) {
		n->id = identity(n->kind, n->view, n->db, n->key, n->klen,
				 &n->idlen);
		if (!n->id) {
			node_free(n);
			return NULL;
		}
	}
	pthread_mutex_lock(&fs->mu);
	if (dedup)
		HASH_FIND(hid, fs->by_id, n->id, n->idlen, found);
	if (found) {
		found->nlookup++;
		pthread_mutex_unlock(&fs->mu);
		node_free(n);
		return found;
	}
	if (n->kind == FS_KEY && n->data) {
		if (fs->cached_bytes + n->size <= fs->cfg.value_cache) {
			n->cached = 1;
			fs->cached_bytes += n->size;
		} else {
			sf_free(n->data);
			n->data = NULL;
		}
	}
	n->ino = fs->next_ino++;
	n->nlookup = 1;
	HASH_ADD(hh, fs->by_ino, ino, sizeof(n->ino), n);
	if (n->id)
		HASH_ADD_KEYPTR(hid, fs->by_id, n->id, n->idlen, n);
	if (n->view)
		n->view->refs++;
	fs->nodes++;
	pthread_mutex_unlock(&fs->mu);
	return n;
}

struct fs_node *fs_node_get(struct fs *fs, fuse_ino_t ino)
{
	struct fs_node *n = NULL;

	pthread_mutex_lock(&fs->mu);
	HASH_FIND(hh, fs->by_ino, &ino, sizeof(ino), n);
	pthread_mutex_unlock(&fs->mu);
	return n;
}

struct fs_node *fs_node_hold(struct fs *fs, fuse_ino_t ino)
{
	struct fs_node *n = NULL;

	pthread_mutex_lock(&fs->mu);
	HASH_FIND(hh, fs->by_ino, &ino, sizeof(ino), n);
	if (n)
		n->busy++;
	pthread_mutex_unlock(&fs->mu);
	return n;
}

void fs_node_put(struct fs *fs, struct fs_node *n)
{
	struct fs_view *dead = NULL;
	int last;

	if (!n)
		return;
	pthread_mutex_lock(&fs->mu);
	last = --n->busy == 0 && n->gone;
	if (last)
		dead = view_put_locked(fs, n->view);
	pthread_mutex_unlock(&fs->mu);
	if (last) {
		view_free(dead);
		node_free(n);
	}
}

/*
 * Freed at once unless a handler holds the node: the kernel may forget an
 * inode as soon as it has a reply, before the handler that sent it has
 * returned (a read replying from n->data, then caching a value in n).
 */
void fs_node_forget(struct fs *fs, fuse_ino_t ino, uint64_t nlookup)
{
	struct fs_node *n = NULL;
	struct fs_view *dead = NULL;

	if (ino < FS_INO_FIRST)
		return;
	pthread_mutex_lock(&fs->mu);
	HASH_FIND(hh, fs->by_ino, &ino, sizeof(ino), n);
	if (!n) {
		pthread_mutex_unlock(&fs->mu);
		return;
	}
	n->nlookup = nlookup < n->nlookup ? n->nlookup - nlookup : 0;
	if (n->nlookup > 0) {
		pthread_mutex_unlock(&fs->mu);
		return;
	}
	HASH_DELETE(hh, fs->by_ino, n);
	if (n->id)
		HASH_DELETE(hid, fs->by_id, n);
	if (n->cached)
		fs->cached_bytes -= n->size;
	n->cached = 0;
	fs->nodes--;
	if (n->busy > 0) {
		n->gone = 1;    /* the last fs_node_put() frees it */
		pthread_mutex_unlock(&fs->mu);
		return;
	}
	dead = view_put_locked(fs, n->view);
	pthread_mutex_unlock(&fs->mu);
	view_free(dead);
	node_free(n);
}

void fs_node_cache_value(struct fs *fs, struct fs_node *n, char *data)
{
	pthread_mutex_lock(&fs->mu);
	if (!n->data && !n->gone &&
	    fs->cached_bytes + n->size <= fs->cfg.value_cache) {
		n->data = data;
		n->cached = 1;
		fs->cached_bytes += n->size;
		data = NULL;
	}
	pthread_mutex_unlock(&fs->mu);
	sf_free(data);
}

void fs_node_note_name(struct fs *fs, fuse_ino_t ino, fuse_ino_t parent,
		       const char *name)
{
	struct fs_node *n = NULL;
	struct fs_name *nm;
	size_t len = strlen(name);

	if (ino < FS_INO_FIRST || parent >= FS_INO_FIRST ||
	    parent == FS_INO_HISTORY)
		return;
	pthread_mutex_lock(&fs->mu);
	HASH_FIND(hh, fs->by_ino, &ino, sizeof(ino), n);
	if (!n || !n->view || n->view->history)
		goto out;
	for (nm = n->names; nm; nm = nm->next)
		if (nm->parent == parent && strcmp(nm->name, name) == 0)
			goto out;
	nm = malloc(sizeof(*nm) + len + 1);
	if (!nm)
		goto out;   /* the top-level invalidation still prunes it
			     * unless it is in use */
	nm->parent = parent;
	memcpy(nm->name, name, len + 1);
	nm->next = n->names;
	n->names = nm;
out:
	pthread_mutex_unlock(&fs->mu);
}

int fs_view_names(struct fs *fs, struct fs_view *v, struct fs_name ***out,
		  size_t *n)
{
	struct fs_name **arr = NULL;
	struct fs_node *node, *tmp;
	size_t cnt = 0, cap = 0;
	int rc = 0;

	pthread_mutex_lock(&fs->mu);
	HASH_ITER(hh, fs->by_ino, node, tmp) {
		if (node->view != v)
			continue;
		for (struct fs_name *nm = node->names; nm; nm = nm->next) {
			size_t len = strlen(nm->name);
			struct fs_name *c;

			if (cnt == cap) {
				size_t ncap = cap ? cap * 2 : 64;
				struct fs_name **na = realloc(arr,
						ncap * sizeof(*na));

				if (!na) {
					rc = SF_ENOMEM;
					goto out;
				}
				arr = na;
				cap = ncap;
			}
			c = malloc(sizeof(*c) + len + 1);
			if (!c) {
				rc = SF_ENOMEM;
				goto out;
			}
			c->next = NULL;
			c->parent = nm->parent;
			memcpy(c->name, nm->name, len + 1);
			arr[cnt++] = c;
		}
	}
out:
	pthread_mutex_unlock(&fs->mu);
	*out = arr;
	*n = cnt;
	return rc;
}

void fs_node_stat(struct fs *fs, const struct fs_node *n, struct stat *st)
{
	int dir = fs_kind_is_dir(n->kind);

	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_uid = fs->cfg.uid;
	st->st_gid = fs->cfg.gid;
	st->st_mode = dir ? (S_IFDIR | (0555 & ~fs->cfg.umask))
			  : (S_IFREG | (0444 & ~fs->cfg.umask));
	st->st_nlink = dir ? 2 : 1;
	st->st_size = (off_t)n->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
	st->st_mtim.tv_sec = (time_t)n->mtime;
	st->st_mtim.tv_nsec = (long)((n->mtime - (double)(time_t)n->mtime) * 1e9);
	st->st_atim = st->st_mtim;
	st->st_ctim = st->st_mtim;
}
