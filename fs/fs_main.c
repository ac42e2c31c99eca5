/*
 * fs_main.c -- `shardyfs mount` and `shardyfs refresh`: option parsing,
 * start-up, the refresh thread and shutdown of the FUSE mount.
 *
 * Start-up order matters. The reader starts worker threads when it opens,
 * and threads do not survive fork(), so the daemon forks *first* and the
 * child does everything else (open the snapshot, create the session, mount)
 * while the parent waits on a pipe for one status byte: the command returns
 * only when the mount is up, and an error (no snapshot, bad credentials,
 * mountpoint busy) is printed on the terminal by the child, whose stderr is
 * still the caller's. Only then does the child detach stdio and log to
 * syslog. libfuse's fuse_daemonize() is not used for this reason.
 *
 * Refresh. A dedicated thread re-reads _CURRENT every -o refresh=SECONDS
 * and whenever it is woken through a pipe: by SIGHUP (whose handler only
 * writes a byte), which is also how `shardyfs refresh MOUNTPOINT` asks for
 * one. When the snapshot changed it installs a new current view, waits for
 * lookups still resolving in the old one, then invalidates, with
 * fuse_lowlevel_notify_inval_entry(), every name recorded for the old
 * view's live inodes (they may be in use -- an open file, a cwd -- and the
 * kernel would otherwise re-attach them when it looks a stable directory up
 * again) and the top-level names keys, shards, snapshot and history (which
 * drops every unused name below them, negative ones included). Open files
 * keep their inode and so their snapshot. Notifications are sent from this
 * thread only, never from a request handler (the kernel holds the parent
 * directory's lock while it waits for a handler; notifying from one could
 * deadlock). A failed refresh keeps the old view; its message is kept for
 * `health` and the xattr user.shardyfs.last_refresh.
 *
 * Options are parsed with fuse_opt: the shardyfs ones are consumed here,
 * anything else goes to fuse_session_new() (which rejects what it does not
 * know). The mount is always read-only and gets default_permissions, so
 * the kernel enforces the modes set by uid=, gid= and umask=.
 */
#include "sffs.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "fs_inode.h"

#define DEFAULT_VALUE_CACHE (64ULL << 20)
#define REFRESH_WAIT_S 60

/* ---- logging ----------------------------------------------------------- */

static const char *level_name(enum sf_log_level l)
{
	switch (l) {
	case SF_LOG_ERROR:
		return "error";
	case SF_LOG_WARN:
		return "warn";
	case SF_LOG_INFO:
		return "info";
	case SF_LOG_DEBUG:
		break;
	}
	return "debug";
}

static void log_emit(struct fs *fs, enum sf_log_level lvl, const char *msg)
{
	static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO, LOG_DEBUG};

	if (lvl > fs->cfg.log_level)
		return;
	if (fs->use_syslog)
		syslog(prio[lvl <= SF_LOG_DEBUG ? lvl : SF_LOG_DEBUG], "%s",
		       msg);
	else
		fprintf(stderr, "shardyfs: %s: %s\n", level_name(lvl), msg);
}

void fs_log(struct fs *fs, enum sf_log_level lvl, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_emit(fs, lvl, msg);
}

static void lib_log(void *ctx, enum sf_log_level lvl, const char *msg)
{
	log_emit(ctx, lvl, msg);
}

/* ---- options ----------------------------------------------------------- */

struct opts {
	char *source, *mountpoint;
	char *cache_size, *access, *refresh, *endpoint, *region, *profile;
	char *uid, *gid, *umask, *staleness, *log_level, *cache_dir;
	char *value_cache;
	int list_keys, no_sign_request, foreground, debug, help, version;
	int allow_other, bad;
};

enum { KEY_DEBUG, KEY_ALLOW_OTHER, KEY_RW, KEY_DROP };

#define OPT(t, f) {t, offsetof(struct opts, f), 1}
#define OPTS(t, f) {t, offsetof(struct opts, f), 0}
static const struct fuse_opt opt_spec[] = {
	OPTS("cache_size=%s", cache_size),
	OPTS("access=%s", access),
	OPTS("refresh=%s", refresh),
	OPTS("endpoint=%s", endpoint),
	OPTS("region=%s", region),
	OPTS("profile=%s", profile),
	OPTS("uid=%s", uid),
	OPTS("gid=%s", gid),
	OPTS("umask=%s", umask),
	OPTS("staleness=%s", staleness),
	OPTS("log_level=%s", log_level),
	OPTS("cache_dir=%s", cache_dir),
	OPTS("value_cache=%s", value_cache),
	OPT("list_keys", list_keys),
	OPT("no_sign_request", no_sign_request),
	OPT("-f", foreground),
	OPT("-h", help),
	OPT("--help", help),
	OPT("-V", version),
	OPT("--version", version),
	FUSE_OPT_KEY("-d", KEY_DEBUG),
	FUSE_OPT_KEY("debug", KEY_DEBUG),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	FUSE_OPT_KEY("rw", KEY_RW),
	FUSE_OPT_KEY("ro", KEY_DROP),
	FUSE_OPT_END
};

static int opt_proc(void *data, const char *arg, int key,
		    struct fuse_args *outargs)
{
	struct opts *o = data;

	(void)outargs;
	switch (key) {
	case FUSE_OPT_KEY_NONOPT:
		if (!o->source) {
			o->source = strdup(arg);
			return 0;
		}
		if (!o->mountpoint) {
			o->mountpoint = strdup(arg);
			return 0;
		}
		fprintf(stderr, "shardyfs mount: unexpected argument '%s'\n",
			arg);
		return -1;
	case KEY_DEBUG:
		o->debug = 1;
		return 1;
	case KEY_ALLOW_OTHER:
		o->allow_other = 1;
		return 1;
	case KEY_RW:
		fprintf(stderr, "shardyfs mount: the mount is read-only "
				"(option 'rw' is not supported)\n");
		return -1;
	case KEY_DROP:
		return 0;
	default:
		return 1;
	}
}

static void usage(FILE *f)
{
	fprintf(f,
"usage: shardyfs mount SOURCE MOUNTPOINT [-f] [-d] [-o OPTION[,OPTION...]]\n"
"\n"
"Mounts the snapshot published under SOURCE (s3://bucket/prefix,\n"
"http(s)://host/prefix, file:///dir or a directory) read-only at MOUNTPOINT.\n"
"Unmount with `fusermount3 -u MOUNTPOINT` or `umount MOUNTPOINT`.\n"
"\n"
"  -f                    stay in the foreground and log to stderr\n"
"  -d                    debug: foreground, log_level=debug and FUSE\n"
"                        request tracing (-o debug is the same)\n"
"  -h, --help            this help\n"
"  -V, --version         print the version\n"
"\n"
"shardyfs options (-o):\n"
"  access=auto|range|download  how shards are read (default auto: range\n"
"                        if any shard >= 16 MiB or all >= 2 GiB)\n"
"  cache_size=BYTES      page cache budget for range reads (K/M/G suffix;\n"
"                        default 256M)\n"
"  cache_dir=DIR         where downloaded shards are kept\n"
"  value_cache=BYTES     values kept in the daemon after a lookup\n"
"                        (default 64M; the kernel page cache comes on top)\n"
"  refresh=SECONDS       re-read _CURRENT every SECONDS (default 0: only on\n"
"                        SIGHUP or `shardyfs refresh MOUNTPOINT`)\n"
"  staleness=SECONDS     `health` says degraded when the snapshot is older\n"
"                        (default 0: never)\n"
"  list_keys             list keys/ (a streamed listing across all shards;\n"
"                        off by default: keys/ reads but lists empty)\n"
"  endpoint=URL          S3 endpoint (else AWS_ENDPOINT_URL / config)\n"
"  region=REGION         S3 region\n"
"  profile=NAME          AWS profile for credentials\n"
"  no_sign_request       anonymous S3 requests\n"
"  uid=N, gid=N          owner of every file (default: the mounting user)\n"
"  umask=OCTAL           mask applied to 0444 files and 0555 directories\n"
"                        (default 0; the kernel enforces the modes)\n"
"  allow_other           let other users in (needs user_allow_other in\n"
"                        /etc/fuse.conf unless root; off by default)\n"
"  log_level=error|warn|info|debug   daemon log level (default warn)\n"
"  debug                 same as -d\n"
"  ro                    accepted; the mount is always read-only\n"
"  rw                    refused (exit status 2)\n"
"\n"
"Other -o options are passed to libfuse (e.g. max_read=, fsname=).\n"
"\n"
"S3 credentials, first found: the profile= option's keys, then\n"
"AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY[/AWS_SESSION_TOKEN] in the\n"
"environment, then profile AWS_PROFILE (default \"default\") in\n"
"~/.aws/credentials or ~/.aws/config, then EC2 instance metadata. The\n"
"region and endpoint can also come from AWS_REGION and AWS_ENDPOINT_URL.\n"
"\n"
"Layout: keys/NAME (value of a key; integer keys by decimal, text/bytes\n"
"keys percent-encoded: %%2F for '/', %%25 for '%%', %%00 for NUL; the empty\n"
"key is the name '%%'), shards/db=NNNNN/{info,keys/}, snapshot, health,\n"
"stats, history/<TS>_run_id=<RUN>/{keys/,shards/,snapshot}.\n"
"xattrs on keys: user.shardyfs.shard, user.shardyfs.run_id,\n"
"user.shardyfs.key_hex.\n");
}

static int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	int shift = 0;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *s == '-')
		return -1;
	switch (*end) {
	case 'k': case 'K': shift = 10; end++; break;
	case 'm': case 'M': shift = 20; end++; break;
	case 'g': case 'G': shift = 30; end++; break;
	case 't': case 'T': shift = 40; end++; break;
	default: break;
	}
	if (*end == 'i' || *end == 'B')
		end += *end == 'i' && end[1] == 'B' ? 2 : 1;
	if (*end || (shift && v > (UINT64_MAX >> shift)))
		return -1;
	*out = (uint64_t)v << shift;
	return 0;
}

static int parse_secs(const char *s, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(s, &end);
	if (errno || end == s || *end || !(v >= 0) || v > 1e9)
		return -1;
	*out = v;
	return 0;
}

static int parse_id(const char *s, unsigned long *out, int base)
{
	char *end;

	errno = 0;
	*out = strtoul(s, &end, base);
	return errno || end == s || *end || *s == '-' ? -1 : 0;
}

#define BAD(what, val) \
	do { \
		fprintf(stderr, "shardyfs mount: bad %s '%s'\n", what, val); \
		return -1; \
	} while (0)

static int build_cfg(struct opts *o, struct fs_cfg *c)
{
	unsigned long id;
	char real[PATH_MAX];
	struct stat st;

	memset(c, 0, sizeof(*c));
	c->source = o->source;
	c->foreground = o->foreground || o->debug;
	c->debug = o->debug;
	c->list_keys = o->list_keys;
	c->allow_other = o->allow_other;
	c->no_sign_request = o->no_sign_request;
	c->uid = getuid();
	c->gid = getgid();
	c->umask = 0;
	c->value_cache = DEFAULT_VALUE_CACHE;
	c->access = SF_ACCESS_AUTO;
	c->log_level = o->debug ? SF_LOG_DEBUG : SF_LOG_WARN;
	c->endpoint = o->endpoint;
	c->region = o->region;
	c->profile = o->profile;
	c->cache_dir = o->cache_dir;

	if (!realpath(o->mountpoint, real) || stat(real, &st) != 0 ||
	    !S_ISDIR(st.st_mode)) {
		fprintf(stderr, "shardyfs mount: %s: %s\n", o->mountpoint,
			errno ? strerror(errno) : "not a directory");
		return -1;
	}
	c->mountpoint = strdup(real);
	if (!c->mountpoint)
		return -1;
	if (o->cache_size && parse_size(o->cache_size, &c->cache_bytes))
		BAD("cache_size", o->cache_size);
	if (o->value_cache && parse_size(o->value_cache, &c->value_cache))
		BAD("value_cache", o->value_cache);
	if (o->refresh && parse_secs(o->refresh, &c->refresh_s))
		BAD("refresh", o->refresh);
	if (o->staleness && parse_secs(o->staleness, &c->staleness_s))
		BAD("staleness", o->staleness);
	if (o->uid) {
		if (parse_id(o->uid, &id, 10))
			BAD("uid", o->uid);
		c->uid = (uid_t)id;
	}
	if (o->gid) {
		if (parse_id(o->gid, &id, 10))
			BAD("gid", o->gid);
		c->gid = (gid_t)id;
	}
	if (o->umask) {
		if (parse_id(o->umask, &id, 8) || id > 0777)
			BAD("umask", o->umask);
		c->umask = (mode_t)id;
	}
	if (o->access) {
		if (!strcmp(o->access, "auto"))
			c->access = SF_ACCESS_AUTO;
		else if (!strcmp(o->access, "range"))
			c->access = SF_ACCESS_RANGE;
		else if (!strcmp(o->access, "download"))
			c->access = SF_ACCESS_DOWNLOAD;
		else
			BAD("access (auto, range or download)", o->access);
	}
	if (o->log_level) {
		if (!strcmp(o->log_level, "error"))
			c->log_level = SF_LOG_ERROR;
		else if (!strcmp(o->log_level, "warn"))
			c->log_level = SF_LOG_WARN;
		else if (!strcmp(o->log_level, "info"))
			c->log_level = SF_LOG_INFO;
		else if (!strcmp(o->log_level, "debug"))
			c->log_level = SF_LOG_DEBUG;
		else
			BAD("log_level (error, warn, info or debug)",
			    o->log_level);
	}
	return 0;
}

static void opts_free(struct opts *o)
{
	char **strs[] = {&o->source, &o->mountpoint, &o->cache_size,
			 &o->access, &o->refresh, &o->endpoint, &o->region,
			 &o->profile, &o->uid, &o->gid, &o->umask,
			 &o->staleness, &o->log_level, &o->cache_dir,
			 &o->value_cache};

	for (size_t i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
		free(*strs[i]);
		*strs[i] = NULL;
	}
}

/* Mount options every shardyfs mount gets. */
static int add_mount_opts(struct fuse_args *args, const char *source)
{
	char *o = strdup("ro,default_permissions,subtype=shardyfs");
	char *fsname = NULL;
	int rc = -1;

	if (!o || asprintf(&fsname, "fsname=%s", source) < 0)
		goto out;
	if (fuse_opt_add_opt_escaped(&o, fsname) != 0)
		goto out;
	if (fuse_opt_add_arg(args, "-o") != 0 || fuse_opt_add_arg(args, o) != 0)
		goto out;
	rc = 0;
out:
	free(o);
	free(fsname);
	return rc;
}

/* ---- refresh ----------------------------------------------------------- */

static int hup_fd = -1;

static void on_sighup(int sig)
{
	int saved = errno;
	char c = 'h';

	(void)sig;
	if (write(hup_fd, &c, 1) < 0) {
		/* pipe full: a refresh is already pending */
	}
	errno = saved;
}

static void invalidate(struct fs *fs, fuse_ino_t parent, const char *name)
{
	int rc = fuse_lowlevel_notify_inval_entry(fs->se, parent, name,
						  strlen(name));

	if (rc != 0 && rc != -ENOENT)
		fs_log(fs, SF_LOG_DEBUG, "invalidating a name in inode %llu: "
		       "%s", (unsigned long long)parent, strerror(-rc));
}

/*
 * Invalidates the names the kernel may hold for the old view: first each
 * recorded name of its live inodes (those can be in use, and the kernel
 * would re-attach them to a stable directory), then the top-level names,
 * which also drops every unused name below them, negative ones included.
 */
static void invalidate_view(struct fs *fs, struct fs_view *old)
{
	static const char *const top[] = {"keys", "shards", "snapshot",
					  "history"};
	struct fs_name **names = NULL;
	size_t n = 0;

	if (fs_view_names(fs, old, &names, &n) != 0)
		fs_log(fs, SF_LOG_WARN, "refresh: out of memory listing "
		       "names; open files may keep old names visible");
	for (size_t i = 0; i < n; i++) {
		invalidate(fs, names[i]->parent, names[i]->name);
		free(names[i]);
	}
	free(names);
	for (size_t i = 0; i < sizeof(top) / sizeof(top[0]); i++)
		invalidate(fs, FS_INO_ROOT, top[i]);
}

static void do_refresh(struct fs *fs)
{
	char err[192] = "", status[256];
	struct fs_view *nv, *old;
	int changed = 0;
	int rc = sf_reader_refresh(fs->reader, &changed, err, sizeof(err));

	if (rc < 0) {
		snprintf(status, sizeof(status), "error: %s",
			 err[0] ? err : sf_strerror(rc));
		fs_log(fs, SF_LOG_WARN, "refresh failed, keeping generation "
		       "%llu: %s", (unsigned long long)fs->current->info.generation,
		       err[0] ? err : sf_strerror(rc));
		goto done;
	}
	if (!changed) {
		snprintf(status, sizeof(status), "unchanged generation %llu",
			 (unsigned long long)fs->current->info.generation);
		goto done;
	}
	nv = fs_view_new(sf_reader_acquire(fs->reader));
	if (!nv) {
		snprintf(status, sizeof(status), "error: out of memory");
		goto done;
	}
	pthread_mutex_lock(&fs->mu);
	old = fs->current;
	fs->current = nv;
	/* Lookups that started in the old view must reply before the
	 * names are invalidated, or they could re-install old inodes. */
	while (old->inflight > 0)
		pthread_cond_wait(&fs->cond, &fs->mu);
	pthread_mutex_unlock(&fs->mu);
	invalidate_view(fs, old);
	snprintf(status, sizeof(status), "changed generation %llu run_id %s",
		 (unsigned long long)nv->info.generation,
		 nv->info.run_id ? nv->info.run_id : "?");
	fs_log(fs, SF_LOG_INFO, "refresh: generation %llu -> %llu (run %s)",
	       (unsigned long long)old->info.generation,
	       (unsigned long long)nv->info.generation,
	       nv->info.run_id ? nv->info.run_id : "?");
	fs_view_unref(fs, old);
done:
	pthread_mutex_lock(&fs->mu);
	snprintf(fs->last_refresh, sizeof(fs->last_refresh), "%s", status);
	fs->refresh_count++;
	pthread_cond_broadcast(&fs->cond);
	pthread_mutex_unlock(&fs->mu);
}

static void *refresh_main(void *arg)
{
	struct fs *fs = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	while (!fs->stopping) {
		struct pollfd p = {.fd = fs->wake_fd[0], .events = POLLIN};
		int timeout = fs->cfg.refresh_s > 0 ?
			      (int)(fs->cfg.refresh_s * 1000) : -1;
		int r = poll(&p, 1, timeout);
		char buf[64];

		if (fs->stopping)
			break;
		if (r < 0 && errno == EINTR)
			continue;
		if (r > 0) {
			while (read(fs->wake_fd[0], buf, sizeof(buf)) > 0) {
			}
		}
		do_refresh(fs);
	}
	return NULL;
}

/* ---- start-up ---------------------------------------------------------- */

/*
 * Forks; the parent waits for the child's status byte and returns the exit
 * status through *code (returns 1). The child returns 0 with *status_fd set.
 */
static int daemon_fork(int *status_fd, int *code)
{
	int p[2];
	pid_t pid;
	char b = 1;

	if (pipe(p) != 0) {
		perror("shardyfs mount: pipe");
		*code = 1;
		return 1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		perror("shardyfs mount: fork");
		*code = 1;
		return 1;
	}
	if (pid > 0) {
		close(p[1]);
		if (read(p[0], &b, 1) != 1)
			b = 1;
		close(p[0]);
		if (b != 0)
			waitpid(pid, NULL, 0);
		*code = b == 0 ? 0 : 1;
		return 1;
	}
	close(p[0]);
	setsid();
	*status_fd = p[1];
	return 0;
}

static void detach(struct fs *fs, int status_fd)
{
	int null = open("/dev/null", O_RDWR);
	char ok = 0;

	if (chdir("/") != 0) {
		/* not fatal */
	}
	openlog("shardyfs", LOG_PID, LOG_DAEMON);
	fs->use_syslog = 1;
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	if (write(status_fd, &ok, 1) != 1) {
		/* the parent is gone; keep serving */
	}
	close(status_fd);
}

static int open_reader(struct fs *fs)
{
	struct sf_options opt;
	char err[512] = "";
	int rc;

	sf_options_init(&opt);
	opt.endpoint_url = fs->cfg.endpoint;
	opt.region = fs->cfg.region;
	opt.profile = fs->cfg.profile;
	opt.no_sign_request = fs->cfg.no_sign_request;
	opt.access_mode = fs->cfg.access;
	opt.cache_dir = fs->cfg.cache_dir;
	if (fs->cfg.cache_bytes)
		opt.cache_bytes = fs->cfg.cache_bytes;
	opt.staleness_s = fs->cfg.staleness_s;
	opt.log_level = fs->cfg.log_level;
	opt.log_fn = lib_log;
	opt.log_ctx = fs;
	rc = sf_reader_open(&fs->reader, fs->cfg.source, &opt, err,
			    sizeof(err));
	if (rc != 0) {
		fprintf(stderr, "shardyfs mount: cannot open %s: %s\n",
			fs->cfg.source, err[0] ? err : sf_strerror(rc));
		return -1;
	}
	fs->current = fs_view_new(sf_reader_acquire(fs->reader));
	if (!fs->current) {
		fprintf(stderr, "shardyfs mount: out of memory\n");
		return -1;
	}
	snprintf(fs->last_refresh, sizeof(fs->last_refresh),
		 "opened generation %llu",
		 (unsigned long long)fs->current->info.generation);
	return 0;
}

static int serve(struct fs *fs, struct fuse_args *args, int status_fd)
{
	struct fuse_loop_config lc;
	struct sigaction sa;
	pthread_t refresher;
	int started = 0, mounted = 0, rc = 1;

	fs->se = fuse_session_new(args, &fs_ops, sizeof(fs_ops), fs);
	if (!fs->se)
		return 1;     /* libfuse printed why (e.g. unknown option) */
	if (fuse_set_signal_handlers(fs->se) != 0)
		goto out;
	/* SIGHUP refreshes instead of exiting (libfuse's default). */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sighup;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGHUP, &sa, NULL) != 0)
		goto out;
	if (fuse_session_mount(fs->se, fs->cfg.mountpoint) != 0)
		goto out;
	mounted = 1;
	if (status_fd >= 0)
		detach(fs, status_fd);
	fs_log(fs, SF_LOG_INFO, "serving %s at %s (generation %llu)",
	       fs->cfg.source, fs->cfg.mountpoint,
	       (unsigned long long)fs->current->info.generation);
	if (pthread_create(&refresher, NULL, refresh_main, fs) == 0)
		started = 1;
	else
		fs_log(fs, SF_LOG_ERROR, "cannot start the refresh thread");

	memset(&lc, 0, sizeof(lc));
	lc.clone_fd = 0;
	lc.max_idle_threads = 10;
	rc = fuse_session_loop_mt(fs->se, &lc) != 0 ? 1 : 0;

	fs->stopping = 1;
	if (write(fs->wake_fd[1], "q", 1) < 0) {
		/* the thread also checks `stopping` on its own */
	}
out:
	if (mounted)
		fuse_session_unmount(fs->se);
	if (started)
		pthread_join(refresher, NULL);
	fuse_remove_signal_handlers(fs->se);
	fuse_session_destroy(fs->se);
	fs->se = NULL;
	return rc;
}

int sffs_main(int argc, char **argv)
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct opts o;
	struct fs *fs = NULL;
	int status_fd = -1, code = 1;

	memset(&o, 0, sizeof(o));
	if (fuse_opt_parse(&args, &o, opt_spec, opt_proc) != 0) {
		fprintf(stderr, "(see `shardyfs mount --help`)\n");
		code = 2;
		goto out;
	}
	if (o.help) {
		usage(stdout);
		code = 0;
		goto out;
	}
	if (o.version) {
		printf("shardyfs %s, libfuse %s\n", SF_VERSION_STRING,
		       fuse_pkgversion());
		code = 0;
		goto out;
	}
	if (!o.source || !o.mountpoint) {
		usage(stderr);
		code = 2;
		goto out;
	}
	fs = calloc(1, sizeof(*fs));
	if (!fs || build_cfg(&o, &fs->cfg) != 0 ||
	    add_mount_opts(&args, o.source) != 0) {
		code = 2;
		goto out;
	}
	if (!fs->cfg.foreground && daemon_fork(&status_fd, &code) != 0)
		goto out;    /* the parent: the child reported */

	/* From here on: the process that serves the mount. */
	code = 1;
	pthread_mutex_init(&fs->mu, NULL);
	pthread_cond_init(&fs->cond, NULL);
	fs->start_time = (double)time(NULL);
	if (pipe2(fs->wake_fd, O_CLOEXEC | O_NONBLOCK) != 0) {
		perror("shardyfs mount: pipe");
		goto done;
	}
	hup_fd = fs->wake_fd[1];
	if (open_reader(fs) != 0 || fs_tables_init(fs) != 0)
		goto done;
	code = serve(fs, &args, status_fd);
	if (code == 0)
		fs_log(fs, SF_LOG_INFO, "unmounted %s", fs->cfg.mountpoint);
done:
	if (status_fd >= 0 && !fs->use_syslog)
		close(status_fd);   /* the parent reads EOF: failure */
	fs_tables_free(fs);
	if (fs->reader)
		sf_reader_close(fs->reader);
	if (fs->wake_fd[0] > 0) {
		close(fs->wake_fd[0]);
		close(fs->wake_fd[1]);
	}
	hup_fd = -1;
	pthread_cond_destroy(&fs->cond);
	pthread_mutex_destroy(&fs->mu);
out:
	if (fs)
		free(fs->cfg.mountpoint);
	free(fs);
	opts_free(&o);
	fuse_opt_free_args(&args);
	return code;
}

/* ---- shardyfs refresh -------------------------------------------------- */

static int get_xattr(const char *path, const char *name, char *buf,
		     size_t cap)
{
	ssize_t n = getxattr(path, name, buf, cap - 1);

	if (n < 0)
		return -1;
	buf[n] = 0;
	return 0;
}

int sffs_refresh_main(int argc, char **argv)
{
	char pidbuf[32], cnt[32], now[32], last[512];
	unsigned long long before;
	long pid;

	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: shardyfs refresh MOUNTPOINT\n"
			"Asks the shardyfs mount at MOUNTPOINT to re-read "
			"_CURRENT now and prints the outcome.\n");
		return argc == 2 && (!strcmp(argv[1], "-h") ||
				     !strcmp(argv[1], "--help")) ? 0 : 2;
	}
	if (get_xattr(argv[1], "user.shardyfs.pid", pidbuf, sizeof(pidbuf)) ||
	    get_xattr(argv[1], "user.shardyfs.refresh_count", cnt,
		      sizeof(cnt))) {
		fprintf(stderr, "shardyfs refresh: %s is not the root of a "
			"shardyfs mount (%s)\n", argv[1], strerror(errno));
		return 1;
	}
	pid = strtol(pidbuf, NULL, 10);
	before = strtoull(cnt, NULL, 10);
	if (pid <= 0 || kill((pid_t)pid, SIGHUP) != 0) {
		fprintf(stderr, "shardyfs refresh: cannot signal the daemon "
			"(pid %ld): %s\n", pid, strerror(errno));
		return 1;
	}
	for (int i = 0; i < REFRESH_WAIT_S * 20; i++) {
		struct timespec ts = {0, 50 * 1000 * 1000};

		nanosleep(&ts, NULL);
		if (get_xattr(argv[1], "user.shardyfs.refresh_count", now,
			      sizeof(now)) != 0)
			break;
		if (strtoull(now, NULL, 10) > before) {
			if (get_xattr(argv[1], "user.shardyfs.last_refresh",
				      last, sizeof(last)) != 0)
				break;
			printf("%s\n", last);
			return strncmp(last, "error", 5) == 0 ? 1 : 0;
		}
	}
	fprintf(stderr, "shardyfs refresh: no answer from pid %ld\n", pid);
	return 1;
}
