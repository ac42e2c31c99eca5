/*
 * test_mount.c -- tests of `shardyfs mount` on real FUSE mounts of the
 * shardyfusion fixtures (file:// prefixes): every key read through stat,
 * open()+read(), partial reads and cat; odd names; ENOENT vs EIO; refresh
 * with an open file; history/; shards/ and the JSON files; xattrs; EROFS;
 * concurrent readers; daemon mode; the mount(8) helper, directly and via
 * `mount -t fuse.shardyfs` on an installed tree; range reads over S3 from a
 * private moto_server killed mid-test (EIO, never ENOENT); uid=, gid=,
 * umask= and allow_other against other users; no leaks at unmount under
 * AddressSanitizer; --help and README.md naming every option.
 *
 * Each test mounts in its own temporary directory. The daemon (and the
 * S3 test's moto_server) runs as a child of the test with
 * PR_SET_PDEATHSIG, and the suite's .fini unmounts and kills the server,
 * so a failing or crashing test leaves no mount or process behind.
 * Skipped (cr_skip_test) only when /dev/fuse is missing, and the tests
 * that switch users or use mount(8) also when not run as root.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "fs_names.h"
#include "sf_test.h"

/* One mount per test process (Criterion forks each test). */
static struct mnt {
	char *tmp;
	char *dir;
	char *log;
	pid_t pid;
	pid_t moto;          /* private moto_server (S3 tests), its own group */
} M;

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

	nanosleep(&ts, NULL);
}

/* /proc files have no size: read line by line (not sft_read_file). */
static int is_mounted(const char *dir)
{
	FILE *f = fopen("/proc/mounts", "r");
	char *line = NULL, *needle = NULL;
	size_t cap = 0;
	int found = 0;

	if (!f)
		return 0;
	if (asprintf(&needle, " %s fuse.shardyfs ", dir) < 0)
		abort();
	while (!found && getline(&line, &cap, f) > 0)
		found = strstr(line, needle) != NULL;
	free(line);
	free(needle);
	fclose(f);
	return found;
}

static char *log_text(void)
{
	size_t n;
	char *t = M.log ? (char *)sft_read_file(M.log, &n) : NULL;

	return t ? t : strdup("(no log)");
}

static void setup(void)
{
	if (access("/dev/fuse", R_OK | W_OK) != 0)
		cr_skip_test("/dev/fuse is not available");
	memset(&M, 0, sizeof(M));
	M.tmp = sft_tmpdir();
	if (asprintf(&M.dir, "%s/mnt", M.tmp) < 0 ||
	    asprintf(&M.log, "%s/daemon.log", M.tmp) < 0)
		abort();
	cr_assert_eq(mkdir(M.dir, 0755), 0);
}

/* Unmounts (if mounted) and reaps the daemon; returns its exit status. */
static int mount_stop(void)
{
	int st = -1;

	if (M.dir && is_mounted(M.dir)) {
		char *cmd = NULL;

		if (asprintf(&cmd, "fusermount3 -u '%s' 2>/dev/null || "
			     "fusermount3 -u -z '%s'", M.dir, M.dir) < 0)
			abort();
		if (system(cmd) != 0) {
			/* reported by the is_mounted() checks */
		}
		free(cmd);
	}
	if (M.pid > 0) {
		for (int i = 0; i < 200; i++) {
			pid_t r = waitpid(M.pid, &st, WNOHANG);

			if (r == M.pid)
				break;
			if (i == 199) {
				kill(M.pid, SIGKILL);
				waitpid(M.pid, &st, 0);
			}
			sleep_ms(50);
		}
		M.pid = 0;
	}
	return st;
}

static void moto_kill(void)
{
	if (M.moto > 0) {
		kill(-M.moto, SIGKILL);
		kill(M.moto, SIGKILL);
		waitpid(M.moto, NULL, 0);
		M.moto = 0;
	}
}

/* Unmounts and requires a clean exit of the daemon (its log otherwise). */
static void stop_clean(void)
{
	int st = mount_stop();

	if (st != 0) {
		char *log = log_text();

		cr_assert_fail("daemon exit status %#x (%s): %s", st,
			       WIFSIGNALED(st) ? strsignal(WTERMSIG(st)) :
			       "exit code", log);
	}
}

static void teardown(void)
{
	mount_stop();
	moto_kill();
	if (M.dir && is_mounted(M.dir)) {
		char *cmd = NULL;

		if (asprintf(&cmd, "umount -l '%s'", M.dir) >= 0 &&
		    system(cmd) != 0) {
			/* nothing more to try */
		}
		free(cmd);
	}
	if (M.tmp)
		sft_rmrf(M.tmp);
	free(M.tmp);
	free(M.dir);
	free(M.log);
	memset(&M, 0, sizeof(M));
}

TestSuite(mount, .init = setup, .fini = teardown, .timeout = 300);

/*
 * Starts `shardyfs mount SRC DIR -f [-o OPTS]` and waits for the mount.
 * `env` (NULL-terminated, may be NULL) changes the daemon's environment:
 * "NAME=VALUE" sets, a bare "NAME" unsets.
 */
static void mount_start_env(const char *src, const char *opts,
			    const char *const *env)
{
	const char *cli = sft_cli();

	M.pid = fork();
	cr_assert_geq(M.pid, 0);
	if (M.pid == 0) {
		int fd = open(M.log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		prctl(PR_SET_PDEATHSIG, SIGTERM);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		for (size_t i = 0; env && env[i]; i++) {
			if (strchr(env[i], '='))
				putenv((char *)env[i]);
			else
				unsetenv(env[i]);
		}
		if (opts)
			execl(cli, cli, "mount", src, M.dir, "-f", "-o", opts,
			      (char *)NULL);
		else
			execl(cli, cli, "mount", src, M.dir, "-f",
			      (char *)NULL);
		_exit(127);
	}
	/* A generous readiness deadline, not a timing assertion. */
	for (int i = 0; i < 600; i++) {
		int st;

		if (is_mounted(M.dir))
			return;
		if (waitpid(M.pid, &st, WNOHANG) == M.pid) {
			M.pid = 0;
			cr_assert_fail("shardyfs mount exited early: %s", log_text());
		}
		sleep_ms(50);
	}
	cr_assert_fail("mount did not appear: %s", log_text());
}

static void mount_start(const char *src, const char *opts)
{
	mount_start_env(src, opts, NULL);
}

static void mount_fixture(const char *name, const char *opts)
{
	char *url = sft_fixture_url(name);

	mount_start(url, opts);
	free(url);
}

static char *path_of(const char *rel)
{
	char *p = NULL;

	if (asprintf(&p, "%s/%s", M.dir, rel) < 0)
		abort();
	return p;
}

static char *key_path(const char *dir, enum sf_key_encoding enc,
		      const uint8_t *key, size_t klen)
{
	char name[FS_NAMES_BUFSZ];
	char *p = NULL;

	cr_assert_eq(fs_names_encode(enc, key, klen, name, sizeof(name), NULL),
		     0);
	if (asprintf(&p, "%s/%s/%s", M.dir, dir, name) < 0)
		abort();
	return p;
}

/* Reads a whole file with open()+read() (malloc'd). */
static uint8_t *read_all(const char *path, size_t *len, int *err)
{
	int fd = open(path, O_RDONLY);
	size_t cap = 4096, n = 0;
	uint8_t *buf;
	ssize_t r;

	*err = 0;
	if (fd < 0) {
		*err = errno;
		return NULL;
	}
	buf = malloc(cap);
	while ((r = read(fd, buf + n, cap - n)) > 0) {
		n += (size_t)r;
		if (n == cap)
			buf = realloc(buf, cap *= 2);
	}
	if (r < 0)
		*err = errno;
	close(fd);
	*len = n;
	return buf;
}

static json_t *read_json(const char *rel)
{
	char *p = path_of(rel);
	json_error_t je;
	json_t *j = json_load_file(p, 0, &je);

	cr_assert_not_null(j, "%s is not JSON: %s", rel, je.text);
	free(p);
	return j;
}

static json_t *fixture_info(const char *name)
{
	char *rel = NULL, *p;
	json_t *j;

	if (asprintf(&rel, "shardyfusion/%s/info.json", name) < 0)
		abort();
	p = sft_data(rel);
	j = json_load_file(p, 0, NULL);
	cr_assert_not_null(j);
	free(rel);
	free(p);
	return j;
}

static enum sf_key_encoding fixture_enc(const char *name)
{
	json_t *info = fixture_info(name);
	enum sf_key_encoding enc;

	cr_assert_eq(sf_encoding_parse(json_string_value(json_object_get(
			info, "key_encoding")), &enc), 0);
	json_decref(info);
	return enc;
}

/* ---- every key --------------------------------------------------------- */

static void check_every_key(const char *fixture)
{
	enum sf_key_encoding enc = fixture_enc(fixture);
	size_t n;
	struct sft_answer *a = sft_answers(fixture, &n);

	mount_fixture(fixture, NULL);
	for (size_t i = 0; i < n; i++) {
		char *p = key_path("keys", enc, a[i].key, a[i].klen);
		char sha[65];
		struct stat st;
		uint8_t *v;
		size_t len;
		int err;

		cr_assert_eq(stat(p, &st), 0, "stat %s: %s", p,
			     strerror(errno));
		cr_assert(S_ISREG(st.st_mode));
		cr_assert_eq((uint64_t)st.st_size, a[i].vlen,
			     "size of %s", p);
		v = read_all(p, &len, &err);
		cr_assert_eq(err, 0, "read %s: %s", p, strerror(err));
		cr_assert_eq(len, a[i].vlen);
		sft_sha256_hex(v, len, sha);
		cr_assert_str_eq(sha, a[i].sha256, "content of %s", p);

		/* partial reads at offsets (every 5th key) */
		if (i % 5 == 0 && len > 0) {
			int fd = open(p, O_RDONLY);
			size_t offs[] = {0, len / 3, len - 1, len / 2};
			uint8_t buf[4096];

			cr_assert_geq(fd, 0);
			for (size_t k = 0; k < 4; k++) {
				size_t want = len - offs[k] < 100 ?
					      len - offs[k] : 100;
				ssize_t r = pread(fd, buf, 100,
						  (off_t)offs[k]);

				cr_assert_eq(r, (ssize_t)want);
				cr_assert(memcmp(buf, v + offs[k], want) == 0);
			}
			cr_assert_eq(pread(fd, buf, 10, (off_t)len), 0,
				     "read at EOF");
			cr_assert_eq(pread(fd, buf, 10, (off_t)len + 5000), 0);
			close(fd);
		}
		/* and through cat for a sample */
		if (i % 97 == 0) {
			char *cmd = NULL, *out = NULL;
			size_t olen = 0;

			if (asprintf(&cmd, "cat '%s'", p) < 0)
				abort();
			if (strchr(p, '\'') == NULL) {
				cr_assert_eq(sft_run(cmd, &out, &olen, NULL), 0);
				cr_assert_eq(olen, len);
				cr_assert(memcmp(out, v, len) == 0);
			}
			free(out);
			free(cmd);
		}
		free(v);
		free(p);
	}
	sft_answers_free(a, n);
	stop_clean();
	cr_assert_not(is_mounted(M.dir));
}

Test(mount, reads_every_utf8_key) { check_every_key("utf8"); }
Test(mount, reads_every_u64_key) { check_every_key("u64"); }
Test(mount, reads_every_raw_key) { check_every_key("raw"); }
Test(mount, reads_every_sparse_key) { check_every_key("sparse"); }

/* ---- names ------------------------------------------------------------- */

static void expect_content(const char *rel, const char *fixture,
			   const char *user_key)
{
	size_t n, len;
	struct sft_answer *a = sft_answers(fixture, &n);
	char *p = path_of(rel), sha[65];
	int err, found = 0;
	uint8_t *v = read_all(p, &len, &err);

	cr_assert_eq(err, 0, "read %s: %s", rel, strerror(err));
	sft_sha256_hex(v, len, sha);
	for (size_t i = 0; i < n; i++) {
		if (strcmp(a[i].user_key, user_key) == 0) {
			found = 1;
			cr_assert_eq(len, a[i].vlen, "%s", rel);
			cr_assert_str_eq(sha, a[i].sha256, "%s", rel);
		}
	}
	cr_assert(found, "no answer for '%s'", user_key);
	free(v);
	free(p);
	sft_answers_free(a, n);
}

static void expect_errno(const char *rel, int want)
{
	char *p = path_of(rel);
	struct stat st;
	int fd;

	errno = 0;
	cr_assert_eq(stat(p, &st), -1, "%s exists", rel);
	cr_assert_eq(errno, want, "stat %s: %s, wanted %s", rel,
		     strerror(errno), strerror(want));
	errno = 0;
	fd = open(p, O_RDONLY);
	cr_assert_eq(fd, -1);
	cr_assert_eq(errno, want, "open %s: %s", rel, strerror(errno));
	free(p);
}

Test(mount, maps_odd_names_and_the_empty_key)
{
	mount_fixture("utf8", NULL);
	expect_content("keys/a%2Fb", "utf8", "a/b");
	expect_content("keys/a%2fb", "utf8", "a/b");
	expect_content("keys/%61%2F%62", "utf8", "a/b");
	expect_content("keys/50%25", "utf8", "50%");
	expect_content("keys/%", "utf8", "");
	expect_content("keys/.dot", "utf8", ".dot");
	expect_content("keys/h\xc3\xa9llo", "utf8", "h\xc3\xa9llo");
	expect_content("keys/h%C3%A9llo", "utf8", "h\xc3\xa9llo");
}

Test(mount, answers_enoent_for_absent_keys_and_undecodable_names)
{
	const char *fixtures[] = {"utf8", "raw", "u64"};
	const char *bad_text[] = {"keys/%zz", "keys/a%", "keys/%4", "keys/%%",
				  "keys/%2", "shards/db=00000/keys/%zz"};
	const char *bad_int[] = {"keys/abc", "keys/-1", "keys/01", "keys/+1",
				 "keys/18446744073709551616", "keys/%31",
				 "keys/1.0"};

	for (size_t f = 0; f < 3; f++) {
		enum sf_key_encoding enc = fixture_enc(fixtures[f]);
		json_t *info = fixture_info(fixtures[f]), *k;
		size_t i;

		mount_fixture(fixtures[f], NULL);
		json_array_foreach(json_object_get(info, "absent_keys"), i, k) {
			uint8_t kb[256];
			size_t kl = 0;
			char *p, *rel;

			if (enc == SF_ENC_RAW) {
				const char *h = json_string_value(k);

				for (kl = 0; h[2 * kl]; kl++)
					sscanf(h + 2 * kl, "%2hhx", &kb[kl]);
			} else if (enc == SF_ENC_U64BE) {
				uint64_t v = json_is_integer(k) ?
					(uint64_t)json_integer_value(k) :
					strtoull(json_string_value(k), NULL, 10);

				for (kl = 0; kl < 8; kl++)
					kb[kl] = (uint8_t)(v >> (56 - 8 * kl));
			} else {
				kl = strlen(json_string_value(k));
				memcpy(kb, json_string_value(k), kl);
			}
			p = key_path("keys", enc, kb, kl);
			rel = p + strlen(M.dir) + 1;
			expect_errno(rel, ENOENT);
			free(p);
		}
		json_decref(info);
		if (enc == SF_ENC_U64BE) {
			for (i = 0; i < sizeof(bad_int) / sizeof(*bad_int); i++)
				expect_errno(bad_int[i], ENOENT);
		} else {
			for (i = 0; i < sizeof(bad_text) / sizeof(*bad_text); i++)
				expect_errno(bad_text[i], ENOENT);
		}
		expect_errno("nothing-here", ENOENT);
		expect_errno("shards/db=99999", ENOENT);
		expect_errno("shards/db=0", ENOENT);
		stop_clean();
	}
}

/* ---- failures are EIO -------------------------------------------------- */

static char *copy_fixture(const char *name, const char *dest_rel)
{
	char *src = NULL, *dst = NULL, *cmd = NULL;

	src = sft_data("shardyfusion");
	if (asprintf(&dst, "%s/%s", M.tmp, dest_rel) < 0 ||
	    asprintf(&cmd, "cp -r '%s/%s/snapshot' '%s'", src, name, dst) < 0)
		abort();
	cr_assert_eq(system(cmd), 0, "%s", cmd);
	free(cmd);
	free(src);
	return dst;
}

Test(mount, answers_eio_not_enoent_when_the_store_fails)
{
	char *snap = copy_fixture("utf8", "snap");
	char *opts = NULL, *cmd = NULL;
	struct stat st;

	if (asprintf(&opts, "access=download,cache_dir=%s/cache", M.tmp) < 0)
		abort();
	mount_start(snap, opts);
	/* Shards open lazily: take them away before any key is read. */
	if (asprintf(&cmd, "mv '%s/shards' '%s/shards.gone'", snap, snap) < 0)
		abort();
	cr_assert_eq(system(cmd), 0);
	for (int i = 0; i < 5; i++) {
		char name[32], *p;

		snprintf(name, sizeof(name), "keys/item-%05d", i);
		p = path_of(name);
		errno = 0;
		cr_assert_eq(stat(p, &st), -1, "%s readable without shards",
			     name);
		cr_assert_eq(errno, EIO, "stat %s: %s", name, strerror(errno));
		free(p);
	}
	{
		char *p = path_of("shards/db=00001/keys");
		DIR *d = opendir(p);
		int err = 0;

		cr_assert_not_null(d);
		errno = 0;
		while (readdir(d))
			;
		err = errno;
		closedir(d);
		cr_assert_eq(err, EIO, "listing: %s", strerror(err));
		free(p);
	}
	/* The daemon logged why and is still serving. */
	{
		char *log = log_text();

		cr_assert(strstr(log, "item-") || strstr(log, "lookup"),
			  "no log line: %s", log);
		free(log);
	}
	{
		json_t *h = read_json("health");

		cr_assert_not_null(json_object_get(h, "status"));
		json_decref(h);
	}
	stop_clean();
	free(opts);
	free(cmd);
	free(snap);
}

/* ---- refresh ----------------------------------------------------------- */

/* A prefix holding the utf8 run (current) and the sparse run. */
static char *two_run_prefix(void)
{
	char *snap = copy_fixture("utf8", "two");
	char *data = sft_data("shardyfusion/sparse/snapshot");
	char *cmd = NULL;

	if (asprintf(&cmd, "cp -r '%s/manifests/.' '%s/manifests/' && "
		     "cp -r '%s/shards/.' '%s/shards/'", data, snap, data,
		     snap) < 0)
		abort();
	cr_assert_eq(system(cmd), 0);
	free(cmd);
	free(data);
	return snap;
}

static void set_current(const char *snap, const char *fixture)
{
	char *rel = NULL, *src, *dst = NULL, *tmp = NULL;
	uint8_t *cur;
	size_t n;

	if (asprintf(&rel, "shardyfusion/%s/snapshot/_CURRENT", fixture) < 0 ||
	    asprintf(&dst, "%s/_CURRENT", snap) < 0 ||
	    asprintf(&tmp, "%s/_CURRENT.tmp", snap) < 0)
		abort();
	src = sft_data(rel);
	cur = sft_read_file(src, &n);
	cr_assert_not_null(cur);
	cr_assert_eq(sft_write_file(tmp, cur, n), 0);
	cr_assert_eq(rename(tmp, dst), 0);
	free(cur);
	free(src);
	free(rel);
	free(dst);
	free(tmp);
}

static int run_refresh(char **out)
{
	char *cmd = NULL;
	int rc;

	if (asprintf(&cmd, "'%s' refresh '%s'", sft_cli(), M.dir) < 0)
		abort();
	rc = sft_run(cmd, out, NULL, NULL);
	free(cmd);
	return rc;
}

static uint64_t root_xattr_u64(const char *name)
{
	char buf[64];
	ssize_t n = getxattr(M.dir, name, buf, sizeof(buf) - 1);

	cr_assert_gt(n, 0, "getxattr %s: %s", name, strerror(errno));
	buf[n] = 0;
	return strtoull(buf, NULL, 10);
}

Test(mount, refresh_keeps_open_files_on_their_snapshot)
{
	char *snap = two_run_prefix(), *out = NULL;
	char *p = path_of("keys/item-00001");
	uint8_t head[20], rest[8192];
	char sha[65];
	size_t n;
	struct sft_answer *a = sft_answers("utf8", &n);
	const struct sft_answer *want = NULL;
	ssize_t r, total;
	int fd;

	for (size_t i = 0; i < n; i++)
		if (!strcmp(a[i].user_key, "item-00001"))
			want = &a[i];
	cr_assert_not_null(want);
	mount_start(snap, NULL);
	expect_errno("keys/one", ENOENT);   /* cached as negative now */
	fd = open(p, O_RDONLY);
	cr_assert_geq(fd, 0);
	cr_assert_eq(read(fd, head, sizeof(head)), (ssize_t)sizeof(head));
	cr_assert_eq(root_xattr_u64("user.shardyfs.generation"), 1);

	set_current(snap, "sparse");
	cr_assert_eq(run_refresh(&out), 0, "refresh: %s", out);
	cr_assert(strstr(out, "changed"), "refresh said: %s", out);
	free(out);
	cr_assert_eq(root_xattr_u64("user.shardyfs.generation"), 2);

	/* new lookups see the new snapshot, negative entries included */
	expect_content("keys/one", "sparse", "one");
	expect_errno("keys/item-00001", ENOENT);
	{
		json_t *s = read_json("snapshot");

		cr_assert_str_eq(json_string_value(json_object_get(s, "run_id")),
				 "8cf1dfeba2b14f98a6b30c591d290148");
		cr_assert_eq(json_integer_value(json_object_get(s, "num_dbs")), 8);
		json_decref(s);
	}
	/* the open file still reads its own snapshot to the end */
	memcpy(rest, head, sizeof(head));
	total = sizeof(head);
	while ((r = read(fd, rest + total, sizeof(rest) - (size_t)total)) > 0)
		total += r;
	close(fd);
	sft_sha256_hex(rest, (size_t)total, sha);
	cr_assert_eq((uint64_t)total, want->vlen);
	cr_assert_str_eq(sha, want->sha256);

	/* the older run stays readable under history/ */
	expect_content("history/2026-11-25T07:32:19.496948Z_run_id="
		       "b9aa90b271ef41d7ad4ae9f6e42e4aac/keys/item-00001",
		       "utf8", "item-00001");
	expect_content("history/2026-11-25T07:32:19.791622Z_run_id="
		       "8cf1dfeba2b14f98a6b30c591d290148/keys/two",
		       "sparse", "two");
	expect_errno("history/2026-11-25T07:32:19.496948Z_run_id="
		     "b9aa90b271ef41d7ad4ae9f6e42e4aac/keys/one", ENOENT);

	/* an unchanged refresh says so */
	cr_assert_eq(run_refresh(&out), 0);
	cr_assert(strstr(out, "unchanged"), "refresh said: %s", out);
	free(out);

	/* and back: a rollback is just another refresh */
	set_current(snap, "utf8");
	cr_assert_eq(run_refresh(&out), 0);
	free(out);
	expect_content("keys/item-00001", "utf8", "item-00001");
	expect_errno("keys/one", ENOENT);
	stop_clean();
	sft_answers_free(a, n);
	free(p);
	free(snap);
}

Test(mount, failed_refresh_keeps_the_old_snapshot_and_shows_in_health)
{
	char *snap = copy_fixture("utf8", "snap"), *out = NULL, *cur = NULL;
	json_t *h;

	mount_start(snap, NULL);
	if (asprintf(&cur, "%s/_CURRENT", snap) < 0)
		abort();
	cr_assert_eq(sft_write_file(cur, "{not json", 9), 0);
	cr_assert_eq(run_refresh(&out), 1, "refresh said: %s", out);
	cr_assert(strstr(out, "error"), "refresh said: %s", out);
	free(out);
	expect_content("keys/item-00001", "utf8", "item-00001");
	h = read_json("health");
	cr_assert_neq(json_integer_value(json_object_get(h,
			"last_refresh_error")), 0);
	cr_assert(strstr(json_string_value(json_object_get(h, "last_refresh")),
			 "error"));
	cr_assert_eq(json_integer_value(json_object_get(h, "generation")), 1);
	json_decref(h);
	stop_clean();
	free(cur);
	free(snap);
}

Test(mount, polls_current_with_the_refresh_option)
{
	char *snap = two_run_prefix();

	mount_start(snap, "refresh=0.2");
	expect_errno("keys/one", ENOENT);
	set_current(snap, "sparse");
	/* wait (bounded) for the poller to notice */
	for (int i = 0; i < 600 &&
	     root_xattr_u64("user.shardyfs.generation") < 2; i++)
		sleep_ms(50);
	cr_assert_eq(root_xattr_u64("user.shardyfs.generation"), 2);
	expect_content("keys/one", "sparse", "one");
	stop_clean();
	free(snap);
}

/* ---- concurrency ------------------------------------------------------- */

struct reader_arg {
	struct sft_answer *a;
	size_t n;
	size_t start;
	int failures;
};

static void *reader_thread(void *p)
{
	struct reader_arg *ra = p;

	for (size_t j = 0; j < ra->n; j++) {
		size_t i = (ra->start + j * 7) % ra->n;
		char name[FS_NAMES_BUFSZ], path[4096], sha[65];
		uint8_t *v;
		size_t len;
		int err;

		if (fs_names_encode(SF_ENC_UTF8, ra->a[i].key, ra->a[i].klen,
				    name, sizeof(name), NULL) != 0) {
			ra->failures++;
			continue;
		}
		snprintf(path, sizeof(path), "%s/keys/%s", M.dir, name);
		v = read_all(path, &len, &err);
		if (!v || err) {
			ra->failures++;
			free(v);
			continue;
		}
		sft_sha256_hex(v, len, sha);
		if (len != ra->a[i].vlen || strcmp(sha, ra->a[i].sha256))
			ra->failures++;
		free(v);
	}
	return NULL;
}

Test(mount, serves_many_concurrent_readers)
{
	enum { NT = 8 };
	pthread_t t[NT];
	struct reader_arg ra[NT];
	size_t n;
	struct sft_answer *a = sft_answers("utf8", &n);

	mount_fixture("utf8", "value_cache=64K");   /* exercise refetches */
	for (int i = 0; i < NT; i++) {
		ra[i] = (struct reader_arg){a, n, (size_t)i * 251, 0};
		cr_assert_eq(pthread_create(&t[i], NULL, reader_thread, &ra[i]),
			     0);
	}
	for (int i = 0; i < NT; i++) {
		pthread_join(t[i], NULL);
		cr_assert_eq(ra[i].failures, 0, "thread %d: %d failures", i,
			     ra[i].failures);
	}
	sft_answers_free(a, n);
	stop_clean();
}

/* ---- read-only --------------------------------------------------------- */

Test(mount, refuses_every_write_with_erofs)
{
	char *k = NULL, *nk = NULL, *d = NULL;

	mount_fixture("utf8", NULL);
	k = path_of("keys/item-00001");
	nk = path_of("keys/new");
	d = path_of("newdir");
	errno = 0;
	cr_assert_eq(open(k, O_WRONLY), -1);
	cr_assert_eq(errno, EROFS);
	cr_assert_eq(open(k, O_RDWR), -1);
	cr_assert_eq(errno, EROFS);
	cr_assert_eq(open(nk, O_WRONLY | O_CREAT, 0644), -1);
	cr_assert_eq(errno, EROFS);
	cr_assert_eq(mkdir(d, 0755), -1);
	cr_assert_eq(errno, EROFS);
	cr_assert_eq(unlink(k), -1);
	cr_assert_eq(errno, EROFS);
	cr_assert_eq(rename(k, nk), -1);
	cr_assert_eq(errno, EROFS);
	cr_assert_eq(truncate(k, 0), -1);
	cr_assert_eq(errno, EROFS);
	cr_assert_eq(chmod(k, 0600), -1);
	cr_assert_eq(errno, EROFS);
	cr_assert_eq(setxattr(k, "user.x", "1", 1, 0), -1);
	cr_assert_eq(errno, EROFS);
	cr_assert_eq(setxattr(M.dir, "user.shardyfs.refresh", "1", 1, 0), -1);
	cr_assert_eq(errno, EROFS);
	expect_content("keys/item-00001", "utf8", "item-00001");
	stop_clean();
	free(k);
	free(nk);
	free(d);
}

/* ---- shards/, JSON files, xattrs --------------------------------------- */

static size_t list_dir(const char *rel, char ***names)
{
	char *p = path_of(rel);
	DIR *d = opendir(p);
	struct dirent *e;
	size_t n = 0;

	cr_assert_not_null(d, "opendir %s: %s", rel, strerror(errno));
	*names = NULL;
	errno = 0;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		*names = realloc(*names, (n + 1) * sizeof(char *));
		(*names)[n++] = strdup(e->d_name);
	}
	cr_assert_eq(errno, 0, "readdir %s: %s", rel, strerror(errno));
	closedir(d);
	free(p);
	return n;
}

static void free_names(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

static void check_shards(const char *fixture)
{
	enum sf_key_encoding enc = fixture_enc(fixture);
	json_t *info = fixture_info(fixture), *snapj;
	json_int_t num_dbs = json_integer_value(json_object_get(info, "num_dbs"));
	const char *run_id = json_string_value(json_object_get(info, "run_id"));
	size_t na, seen = 0, nd;
	struct sft_answer *a = sft_answers(fixture, &na);
	char **dbs;

	mount_fixture(fixture, NULL);
	nd = list_dir("shards", &dbs);
	cr_assert_eq((json_int_t)nd, num_dbs);
	snapj = read_json("snapshot");
	cr_assert_str_eq(json_string_value(json_object_get(snapj, "run_id")),
			 run_id);
	cr_assert_eq(json_integer_value(json_object_get(snapj, "num_dbs")),
		     num_dbs);
	for (json_int_t db = 0; db < num_dbs; db++) {
		char rel[64], **keys;
		json_t *si;
		struct stat st;
		size_t nk, pos = 0;
		char *p;

		snprintf(rel, sizeof(rel), "shards/db=%05d", (int)db);
		p = path_of(rel);
		cr_assert_eq(stat(p, &st), 0);
		cr_assert(S_ISDIR(st.st_mode));
		free(p);
		snprintf(rel, sizeof(rel), "shards/db=%05d/info", (int)db);
		si = read_json(rel);
		cr_assert_eq(json_integer_value(json_object_get(si, "db_id")), db);
		cr_assert_eq((uint64_t)json_integer_value(json_object_get(si,
				"db_bytes")), (uint64_t)st.st_size);
		snprintf(rel, sizeof(rel), "shards/db=%05d/keys", (int)db);
		nk = list_dir(rel, &keys);
		cr_assert_eq((json_int_t)nk,
			     json_integer_value(json_object_get(si, "row_count")),
			     "%s", rel);
		cr_assert_eq(json_is_true(json_object_get(si, "empty")), nk == 0);
		/* listed in stored order, a subsequence of answers.tsv (which
		 * is sorted by stored bytes); each key readable here with
		 * the right xattrs */
		for (size_t k = 0; k < nk; k++) {
			uint8_t kb[FS_NAMES_BUFSZ];
			size_t kl;
			char *kp, xv[300], hex[2 * FS_NAMES_BUFSZ + 1];
			ssize_t xn;

			cr_assert_eq(fs_names_decode(enc, keys[k],
				     strlen(keys[k]), kb, sizeof(kb), &kl), 0);
			while (pos < na && (a[pos].klen != kl ||
			       memcmp(a[pos].key, kb, kl)))
				pos++;
			cr_assert_lt(pos, na, "%s/%s out of order", rel, keys[k]);
			if (k % 13 == 0) {
				if (asprintf(&kp, "%s/%s", rel, keys[k]) < 0)
					abort();
				expect_content(kp, fixture, a[pos].user_key);
				free(kp);
				kp = key_path(rel, enc, kb, kl);
				xn = getxattr(kp, "user.shardyfs.shard", xv,
					      sizeof(xv) - 1);
				cr_assert_gt(xn, 0);
				xv[xn] = 0;
				cr_assert_eq(atoi(xv), (int)db);
				xn = getxattr(kp, "user.shardyfs.run_id", xv,
					      sizeof(xv) - 1);
				cr_assert_gt(xn, 0);
				xv[xn] = 0;
				cr_assert_str_eq(xv, run_id);
				xn = getxattr(kp, "user.shardyfs.key_hex", xv,
					      sizeof(xv) - 1);
				cr_assert_geq(xn, 0);
				xv[xn] = 0;
				fs_names_hex(kb, kl, hex);
				cr_assert_str_eq(xv, hex);
				free(kp);
			}
			pos++;
		}
		seen += nk;
		free_names(keys, nk);
		json_decref(si);
	}
	cr_assert_eq(seen, na, "every key listed once");
	free_names(dbs, nd);
	json_decref(snapj);
	json_decref(info);
	sft_answers_free(a, na);
	stop_clean();
}

Test(mount, lists_shards_with_info_and_keys_utf8) { check_shards("utf8"); }
Test(mount, lists_shards_with_info_and_keys_sparse) { check_shards("sparse"); }
Test(mount, lists_shards_with_info_and_keys_raw) { check_shards("raw"); }
Test(mount, lists_shards_with_info_and_keys_u64) { check_shards("u64"); }

Test(mount, answers_snapshot_health_stats_and_root_xattrs)
{
	json_t *h, *s, *s2;
	char **names, buf[64];
	size_t n;
	ssize_t xn;

	mount_fixture("u64", NULL);
	n = list_dir("", &names);
	cr_assert_eq(n, 6);
	free_names(names, n);
	expect_content("keys/4294967296", "u64", "4294967296");
	h = read_json("health");
	cr_assert_str_eq(json_string_value(json_object_get(h, "status")),
			 "healthy");
	cr_assert_eq(json_integer_value(json_object_get(h, "generation")), 1);
	s = read_json("stats");
	cr_assert_geq(json_integer_value(json_object_get(s, "lookups")), 1);
	expect_content("keys/0", "u64", "0");
	s2 = read_json("stats");    /* a new rendering each time */
	cr_assert_gt(json_integer_value(json_object_get(s2, "lookups")),
		     json_integer_value(json_object_get(s, "lookups")));
	/* bytes by request kind add up to the total */
	cr_assert_eq(json_integer_value(json_object_get(s2, "bytes_get")) +
			     json_integer_value(json_object_get(s2, "bytes_range")) +
			     json_integer_value(json_object_get(s2, "bytes_other")),
		     json_integer_value(json_object_get(s2, "bytes_downloaded")));
	cr_assert_not_null(json_object_get(s2, "bytes_range"));
	xn = getxattr(M.dir, "user.shardyfs.pid", buf, sizeof(buf) - 1);
	cr_assert_gt(xn, 0);
	buf[xn] = 0;
	cr_assert_eq(atoi(buf), (int)M.pid);
	xn = getxattr(M.dir, "user.shardyfs.nope", buf, sizeof(buf));
	cr_assert_eq(xn, -1);
	cr_assert_eq(errno, ENODATA);
	json_decref(h);
	json_decref(s);
	json_decref(s2);
	stop_clean();
}

Test(mount, lists_keys_only_with_list_keys)
{
	char **names;
	size_t n, na;
	struct sft_answer *a = sft_answers("utf8", &na);

	mount_fixture("utf8", NULL);
	n = list_dir("keys", &names);
	cr_assert_eq(n, 0);
	free_names(names, n);
	stop_clean();

	mount_fixture("utf8", "list_keys");
	n = list_dir("keys", &names);
	cr_assert_eq(n, na);
	free_names(names, n);
	sft_answers_free(a, na);
	stop_clean();
}

/* ---- daemon mode and mount(8) ------------------------------------------ */

Test(mount, daemonizes_after_opening_and_reports_errors_on_the_terminal)
{
	char *cmd = NULL, *err = NULL, *url = sft_fixture_url("raw");
	int rc;

	if (asprintf(&cmd, "'%s' mount '%s/nowhere' '%s'", sft_cli(), M.tmp,
		     M.dir) < 0)
		abort();
	rc = sft_run(cmd, NULL, NULL, &err);
	cr_assert_eq(rc, 1, "exit %d: %s", rc, err);
	cr_assert(err && strstr(err, "nowhere"), "stderr: %s", err);
	cr_assert_not(is_mounted(M.dir));
	free(cmd);
	free(err);

	if (asprintf(&cmd, "'%s' mount '%s' '%s'", sft_cli(), url, M.dir) < 0)
		abort();
	rc = sft_run(cmd, NULL, NULL, &err);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
	cr_assert(is_mounted(M.dir), "mounted when the command returns");
	expect_errno("keys/ffff", ENOENT);
	cr_assert_eq(mount_stop(), -1);   /* not our child */
	cr_assert_not(is_mounted(M.dir));
	free(cmd);
	free(err);
	free(url);
}

Test(mount, mount_helper_translates_mount8_options)
{
	char *cmd = NULL, *err = NULL, *url = sft_fixture_url("utf8");
	char **names;
	size_t n;
	int rc;

	if (asprintf(&cmd, "SHARDYFS='%s' '%s/packaging/mount.shardyfs' '%s' "
		     "'%s' -o rw,noauto,_netdev,defaults,user,nofail,"
		     "x-systemd.automount,list_keys", sft_cli(), SF_SOURCE_DIR,
		     url, M.dir) < 0)
		abort();
	rc = sft_run(cmd, NULL, NULL, &err);
	cr_assert_eq(rc, 0, "exit %d: %s", rc, err);
	cr_assert(is_mounted(M.dir));
	n = list_dir("keys", &names);       /* list_keys passed through */
	cr_assert_eq(n, 2008);
	free_names(names, n);
	cr_assert_eq(mount_stop(), -1);
	cr_assert_not(is_mounted(M.dir));
	free(cmd);
	free(err);
	free(url);
}

/* ---- S3: a private moto_server that dies mid-test ---------------------- */

/* A free TCP port on 127.0.0.1 (the kernel's choice; 0 on error). */
static int free_port(void)
{
	struct sockaddr_in a;
	socklen_t al = sizeof(a);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = 0;

	if (fd < 0)
		return 0;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &al) == 0)
		port = ntohs(a.sin_port);
	close(fd);
	return port;
}

static int port_open(int port)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

	if (fd < 0)
		return 0;
	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	a.sin_port = htons((uint16_t)port);
	ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	close(fd);
	return ok;
}

/*
 * Starts a moto_server of this test only (signature checks off, which is
 * moto's default) in its own process group, killed with the test process
 * (PR_SET_PDEATHSIG) and by the suite's .fini. Fills s3 with its endpoint
 * and made-up credentials (sent, not checked).
 */
static void moto_start(struct sft_s3 *s3)
{
	char *mlog = NULL, port_s[16];
	int port = 0;

	if (asprintf(&mlog, "%s/moto.log", M.tmp) < 0)
		abort();
	for (int tries = 0; tries < 5 && !port; tries++) {
		port = free_port();
		if (port && port_open(port))
			port = 0;
	}
	cr_assert_gt(port, 0, "no free port");
	snprintf(port_s, sizeof(port_s), "%d", port);
	M.moto = fork();
	cr_assert_geq(M.moto, 0);
	if (M.moto == 0) {
		int fd = open(mlog, O_WRONLY | O_CREAT | O_TRUNC, 0644);

		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		unsetenv("INITIAL_NO_AUTH_ACTION_COUNT");
		execlp("moto_server", "moto_server", "-H", "127.0.0.1", "-p",
		       port_s, (char *)NULL);
		_exit(127);
	}
	setpgid(M.moto, M.moto);    /* both sides: no race with kill(-pgid) */
	/* A generous readiness deadline, not a timing assertion. */
	for (int i = 0; !port_open(port); i++) {
		int st;

		if (waitpid(M.moto, &st, WNOHANG) == M.moto) {
			size_t n;
			char *t = (char *)sft_read_file(mlog, &n);

			M.moto = 0;
			cr_assert_fail("moto_server exited (status %d; install "
				       "moto[server], see packaging/deps.sh): "
				       "%s", st, t ? t : "");
		}
		cr_assert_lt(i, 1200, "moto_server did not start");
		sleep_ms(50);
	}
	memset(s3, 0, sizeof(*s3));
	snprintf(s3->endpoint, sizeof(s3->endpoint), "http://127.0.0.1:%d",
		 port);
	snprintf(s3->key, sizeof(s3->key), "AKIDSHARDYFSFUSE0001");
	snprintf(s3->secret, sizeof(s3->secret), "fuse-test-secret-0001");
	snprintf(s3->region, sizeof(s3->region), "us-east-1");
	free(mlog);
}

/* The shard a text key routes to, by the library on the local fixture. */
static uint32_t route_text(struct sf_snapshot *s, const char *text)
{
	struct sf_key k = sf_key_text(text, strlen(text));
	char err[256] = "";
	uint32_t db = 0;

	cr_assert_eq(sf_snapshot_route(s, &k, &db, err, sizeof(err)), 0,
		     "route %s: %s", text, err);
	return db;
}

static void expect_eio(const char *rel)
{
	char *p = path_of(rel);
	struct stat st;
	uint8_t *v;
	size_t len;
	int err;

	errno = 0;
	cr_assert_eq(stat(p, &st), -1, "%s readable with the store down",
		     rel);
	cr_assert_eq(errno, EIO, "stat %s: %s (want EIO)", rel,
		     strerror(errno));
	v = read_all(p, &len, &err);
	cr_assert_null(v, "%s opened with the store down", rel);
	cr_assert_eq(err, EIO, "open %s: %s (want EIO)", rel, strerror(err));
	free(p);
}

Test(mount, range_mode_over_s3_answers_eio_when_the_server_dies)
{
	struct sft_s3 s3;
	struct sf_reader *lr = NULL;
	struct sf_snapshot *ls;
	struct sf_options lo;
	char *bucket = sft_unique_bucket(), *src = NULL, *opts = NULL;
	char *local = sft_data("shardyfusion/utf8/snapshot");
	char *url = sft_fixture_url("utf8");
	char *envs[5] = {NULL};
	const char *env[9];
	const char *before[4], *after[4], *absent[4];
	char absent_buf[4][32], home_absent[48] = "";
	size_t nb = 0, na = 0, nabs = 0, n;
	struct sft_answer *a = sft_answers("utf8", &n);
	uint32_t home;

	/* Which keys live in which shard, from the local copy. */
	sf_options_init(&lo);
	cr_assert_eq(sf_reader_open(&lr, url, &lo, NULL, 0), 0);
	ls = sf_reader_acquire(lr);
	home = route_text(ls, "item-00001");
	for (size_t i = 0; i < n && (nb < 4 || na < 4); i++) {
		const char *k = a[i].user_key;

		if (strncmp(k, "item-", 5) != 0)
			continue;
		if (route_text(ls, k) == home) {
			if (nb < 4)
				before[nb++] = k;
		} else if (na < 4) {
			after[na++] = k;
		}
	}
	/* Names that are not keys, routed away from the read shard: only
	 * the store can tell they are absent. */
	for (int i = 0; nabs < 4 && i < 1000; i++) {
		snprintf(absent_buf[nabs], sizeof(absent_buf[nabs]),
			 "never-seen-%d", i);
		if (route_text(ls, absent_buf[nabs]) != home) {
			absent[nabs] = absent_buf[nabs];
			nabs++;
		}
	}
	for (int i = 0; !home_absent[0] && i < 1000; i++) {
		char k[32];

		snprintf(k, sizeof(k), "absent-%d", i);
		if (route_text(ls, k) == home)
			snprintf(home_absent, sizeof(home_absent), "keys/%s",
				 k);
	}
	cr_assert(nb == 4 && na == 4 && nabs == 4 && home_absent[0]);
	sf_snapshot_release(ls);
	sf_reader_close(lr);

	moto_start(&s3);
	sft_s3_mkbucket(&s3, bucket);
	if (asprintf(&src, "s3://%s/golden/utf8", bucket) < 0)
		abort();
	cr_assert_eq(sft_upload_dir(&s3, local, src), 0, "upload");

	if (asprintf(&opts, "access=range,cache_size=16K,value_cache=1M,"
		     "endpoint=%s,region=%s", s3.endpoint, s3.region) < 0 ||
	    asprintf(&envs[0], "AWS_ACCESS_KEY_ID=%s", s3.key) < 0 ||
	    asprintf(&envs[1], "AWS_SECRET_ACCESS_KEY=%s", s3.secret) < 0 ||
	    asprintf(&envs[2], "AWS_REGION=%s", s3.region) < 0)
		abort();
	env[0] = envs[0];
	env[1] = envs[1];
	env[2] = envs[2];
	env[3] = "AWS_PROFILE";
	env[4] = "AWS_SESSION_TOKEN";
	env[5] = "AWS_ENDPOINT_URL";
	env[6] = "AWS_EC2_METADATA_DISABLED=true";
	env[7] = "SF_STORE_BACKOFF_CAP_MS=200";
	env[8] = NULL;
	mount_start_env(src, opts, env);

	/* Up: range reads through the tiny cache. */
	for (size_t i = 0; i < nb; i++) {
		char rel[64];

		snprintf(rel, sizeof(rel), "keys/%s", before[i]);
		expect_content(rel, "utf8", before[i]);
	}
	/* an absent key of the read shard: ENOENT while the store is up */
	expect_errno(home_absent, ENOENT);
	{
		json_t *h = read_json("health");

		cr_assert_str_eq(json_string_value(json_object_get(h,
				 "status")), "healthy");
		json_decref(h);
	}

	/* Down: nothing listens on the port any more. */
	moto_kill();
	cr_assert_not(port_open((int)strtol(strrchr(s3.endpoint, ':') + 1,
					    NULL, 10)));
	for (size_t i = 0; i < na; i++) {
		char rel[64];

		snprintf(rel, sizeof(rel), "keys/%s", after[i]);
		expect_eio(rel);
	}
	for (size_t i = 0; i < nabs; i++) {
		char rel[64];

		snprintf(rel, sizeof(rel), "keys/%s", absent[i]);
		expect_eio(rel);
	}
	/* keys read before the failure still read (kernel and value cache) */
	for (size_t i = 0; i < nb; i++) {
		char rel[64];

		snprintf(rel, sizeof(rel), "keys/%s", before[i]);
		expect_content(rel, "utf8", before[i]);
	}
	/* health still answers and the daemon still runs */
	{
		json_t *h = read_json("health");

		cr_assert_not_null(json_object_get(h, "status"));
		json_decref(h);
		cr_assert_eq(waitpid(M.pid, NULL, WNOHANG), 0,
			     "the daemon died: %s", log_text());
	}
	/* each failure left a log line naming the key */
	{
		char *log = log_text(), hex[2 * 64 + 1];

		for (size_t i = 0; i < na; i++) {
			fs_names_hex((const uint8_t *)after[i],
				     strlen(after[i]), hex);
			cr_assert(strstr(log, hex), "no log line for %s: %s",
				  after[i], log);
		}
		cr_assert(strstr(log, "lookup of key"), "log: %s", log);
		cr_assert_null(strstr(log, s3.secret), "secret in the log");
		free(log);
	}
	stop_clean();
	for (size_t i = 0; i < 3; i++)
		free(envs[i]);
	sft_answers_free(a, n);
	free(opts);
	free(src);
	free(url);
	free(local);
	free(bucket);
}

/* ---- owners, modes and other users ------------------------------------- */

static void expect_owner_mode(const char *rel, uid_t uid, gid_t gid,
			      mode_t mode)
{
	char *p = path_of(rel);
	struct stat st;

	cr_assert_eq(stat(p, &st), 0, "stat %s: %s", rel, strerror(errno));
	cr_assert_eq(st.st_uid, uid, "%s: uid %u", rel, (unsigned)st.st_uid);
	cr_assert_eq(st.st_gid, gid, "%s: gid %u", rel, (unsigned)st.st_gid);
	cr_assert_eq(st.st_mode, mode, "%s: mode %o, want %o", rel,
		     (unsigned)st.st_mode, (unsigned)mode);
	free(p);
}

Test(mount, applies_uid_gid_and_umask)
{
	const char *dirs[] = {"", "keys", "shards", "history",
			      "shards/db=00000", "shards/db=00000/keys"};
	const char *files[] = {"keys/item-00001", "snapshot", "health",
			       "stats", "shards/db=00000/info"};
	const char *bad[] = {"uid=-1", "uid=abc", "gid=1x", "umask=8",
			     "umask=1000", "umask="};

	mount_fixture("utf8", NULL);
	for (size_t i = 0; i < 6; i++)
		expect_owner_mode(dirs[i], getuid(), getgid(), S_IFDIR | 0555);
	for (size_t i = 0; i < 5; i++)
		expect_owner_mode(files[i], getuid(), getgid(), S_IFREG | 0444);
	stop_clean();

	mount_fixture("utf8", "uid=4242,gid=4343,umask=027");
	for (size_t i = 0; i < 6; i++)
		expect_owner_mode(dirs[i], 4242, 4343, S_IFDIR | 0550);
	for (size_t i = 0; i < 5; i++)
		expect_owner_mode(files[i], 4242, 4343, S_IFREG | 0440);
	expect_content("keys/item-00001", "utf8", "item-00001");
	stop_clean();

	for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
		char *cmd = NULL, *err = NULL, *url = sft_fixture_url("utf8");
		int rc;

		if (asprintf(&cmd, "'%s' mount '%s' '%s' -f -o %s", sft_cli(),
			     url, M.dir, bad[i]) < 0)
			abort();
		rc = sft_run(cmd, NULL, NULL, &err);
		cr_assert_eq(rc, 2, "%s: exit %d: %s", bad[i], rc, err);
		cr_assert(err && strstr(err, "bad "), "%s: %s", bad[i], err);
		cr_assert_not(is_mounted(M.dir));
		free(cmd);
		free(err);
		free(url);
	}
}

/*
 * Runs fn(arg) in a child process with uid/gid `id` (no supplementary
 * groups) and returns its exit status (0 = all its checks held).
 */
static int as_user(uid_t id, int (*fn)(const void *), const void *arg)
{
	pid_t pid = fork();
	int st;

	cr_assert_geq(pid, 0);
	if (pid == 0) {
		if (setgroups(0, NULL) != 0 || setgid(id) != 0 ||
		    setuid(id) != 0)
			_exit(100);
		_exit(fn(arg));
	}
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static void other_users_setup(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to switch users");
	/* The mountpoint must be reachable by others, so that a denial
	 * comes from the mount and not from the private temp dir. */
	cr_assert_eq(chmod(M.tmp, 0755), 0);
}

/* In the child: the mount is reachable but refuses this user. */
static int child_denied(const void *arg)
{
	const char *key = arg;
	struct stat st;
	char *k = path_of(key), *keys = path_of("keys");
	int fd;

	if (stat(M.tmp, &st) != 0)
		return 10;          /* the control: the parent dir is open */
	errno = 0;
	if (stat(M.dir, &st) == 0 || (errno != EACCES && errno != EPERM))
		return 11;
	errno = 0;
	if (stat(k, &st) == 0 || (errno != EACCES && errno != EPERM))
		return 12;
	errno = 0;
	fd = open(k, O_RDONLY);
	if (fd >= 0 || (errno != EACCES && errno != EPERM))
		return 13;
	errno = 0;
	if (opendir(keys) != NULL || (errno != EACCES && errno != EPERM))
		return 14;
	free(k);
	free(keys);
	return 0;
}

/* In the child: this user reads the key and lists shards/. */
static int child_reads(const void *arg)
{
	const char *key = arg;
	char *k = path_of(key), sha[65];
	uint8_t *v;
	size_t len, n;
	int err;
	struct sft_answer *a = sft_answers("utf8", &n);
	DIR *d;

	v = read_all(k, &len, &err);
	if (!v || err)
		return 20;
	sft_sha256_hex(v, len, sha);
	for (size_t i = 0; i < n; i++)
		if (!strcmp(a[i].user_key, key + strlen("keys/")) &&
		    (len != a[i].vlen || strcmp(sha, a[i].sha256)))
			return 21;
	free(k);
	k = path_of("shards");
	d = opendir(k);
	if (!d)
		return 22;
	closedir(d);
	free(k);
	free(v);
	sft_answers_free(a, n);
	return 0;
}

/* In the child: the mount answers, but the modes refuse this user. */
static int child_mode_denied(const void *arg)
{
	char *k = path_of(arg);
	struct stat st;
	int fd;

	if (stat(M.dir, &st) != 0)
		return 30;          /* allow_other let us in */
	errno = 0;
	fd = open(k, O_RDONLY);
	if (fd >= 0 || errno != EACCES)
		return 31;
	free(k);
	return 0;
}

Test(mount, keeps_other_users_out_without_allow_other)
{
	int rc;

	other_users_setup();
	mount_fixture("utf8", NULL);
	expect_content("keys/item-00001", "utf8", "item-00001");
	rc = as_user(65534, child_denied, "keys/item-00001");
	cr_assert_eq(rc, 0, "uid 65534 on a mount without allow_other: "
		     "check %d failed", rc);
	stop_clean();
}

Test(mount, lets_other_users_in_with_allow_other)
{
	int rc;

	other_users_setup();
	mount_fixture("utf8", "allow_other");
	rc = as_user(65534, child_reads, "keys/item-00002");
	cr_assert_eq(rc, 0, "uid 65534 with allow_other: check %d failed",
		     rc);
	stop_clean();

	/* allow_other lets users reach the mount; the modes still rule
	 * (default_permissions): 0500/0400 for uid 65533 only. */
	mount_fixture("utf8", "allow_other,uid=65533,gid=65533,umask=0277");
	rc = as_user(65533, child_reads, "keys/item-00003");
	cr_assert_eq(rc, 0, "owner 65533: check %d failed", rc);
	rc = as_user(65534, child_mode_denied, "keys/item-00003");
	cr_assert_eq(rc, 0, "uid 65534 against mode 0400: check %d failed",
		     rc);
	stop_clean();
}

/* ---- a clean unmount leaks nothing ------------------------------------- */

#if defined(__SANITIZE_ADDRESS__)
#define SFT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SFT_ASAN 1
#endif
#endif

/*
 * The daemon is built like this test (the same flags): with
 * AddressSanitizer, LeakSanitizer checks its heap at exit. Exercises the
 * paths that allocate per request -- key lookups (value cache over budget,
 * refetches), negative answers, shards/ listings, JSON files, xattrs,
 * history views, a refresh that changes the snapshot with a file open
 * across it -- then unmounts and requires exit status 0 and no report.
 */
Test(mount, clean_unmount_leaks_nothing)
{
	static const char *const env[] = {
		"ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:exitcode=23",
		NULL};
	char *snap, *out = NULL, *log, *p, **names;
	uint8_t buf[64];
	size_t n;
	int fd, st;

#ifndef SFT_ASAN
	cr_skip_test("not built with AddressSanitizer (-DSF_SANITIZE=address)");
#endif
	snap = two_run_prefix();
	mount_start_env(snap, "value_cache=4K,list_keys", env);
	expect_content("keys/item-00001", "utf8", "item-00001");
	expect_content("keys/item-00002", "utf8", "item-00002");
	expect_errno("keys/one", ENOENT);
	expect_errno("keys/%zz", ENOENT);
	n = list_dir("shards/db=00001/keys", &names);
	cr_assert_gt(n, 0);
	free_names(names, n);
	n = list_dir("keys", &names);
	cr_assert_eq(n, 2008);
	free_names(names, n);
	json_decref(read_json("snapshot"));
	json_decref(read_json("health"));
	json_decref(read_json("stats"));
	json_decref(read_json("shards/db=00002/info"));
	cr_assert_gt(getxattr(M.dir, "user.shardyfs.last_refresh", buf,
			      sizeof(buf)), 0);
	p = path_of("keys/item-00003");
	cr_assert_gt(getxattr(p, "user.shardyfs.key_hex", buf, sizeof(buf)),
		     0);
	fd = open(p, O_RDONLY);
	cr_assert_geq(fd, 0);

	set_current(snap, "sparse");
	cr_assert_eq(run_refresh(&out), 0, "refresh: %s", out);
	cr_assert(strstr(out, "changed"), "refresh said: %s", out);
	free(out);
	expect_content("keys/one", "sparse", "one");
	cr_assert_gt(read(fd, buf, sizeof(buf)), 0);
	close(fd);
	n = list_dir("history", &names);
	cr_assert_eq(n, 2);
	for (size_t i = 0; i < n; i++) {
		char *rel = NULL;

		if (asprintf(&rel, "history/%s/snapshot", names[i]) < 0)
			abort();
		json_decref(read_json(rel));
		free(rel);
	}
	free_names(names, n);
	expect_content("history/2026-11-25T07:32:19.496948Z_run_id="
		       "b9aa90b271ef41d7ad4ae9f6e42e4aac/keys/item-00004",
		       "utf8", "item-00004");
	expect_errno("history/2026-11-25T07:32:19.496948Z_run_id="
		     "b9aa90b271ef41d7ad4ae9f6e42e4aac/keys/one", ENOENT);
	expect_errno("history/nope", ENOENT);
	set_current(snap, "utf8");
	cr_assert_eq(run_refresh(&out), 0, "refresh: %s", out);
	free(out);

	st = mount_stop();
	log = log_text();
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		  "daemon status %#x: %s", st, log);
	cr_assert_null(strstr(log, "LeakSanitizer"), "%s", log);
	cr_assert_null(strstr(log, "AddressSanitizer"), "%s", log);
	cr_assert_not(is_mounted(M.dir));
	free(log);
	free(p);
	free(snap);
}

/* ---- make install + mount -t fuse.shardyfs ----------------------------- */

/*
 * `mount -t fuse.shardyfs` through the installed helper: installs the build
 * into a private DESTDIR, then, in a private mount namespace (nothing is
 * visible to, or left on, the machine), lays that DESTDIR's sbin/ over
 * /sbin with a read-only overlay so mount(8) finds the installed
 * /sbin/mount.fuse.shardyfs link, and mounts with mount(8) options to be
 * translated. The script exits 77 when the namespace or overlay cannot be
 * had (then the test is skipped; mount.shardyfs itself is tested above).
 */
static const char mount8_script[] =
"set -u\n"
"root=$1 src=$2 dir=$3\n"
"sbin=$(readlink -f /sbin)\n"
"mount -t overlay overlay -o \"lowerdir=$root/sbin:$sbin\" \"$sbin\" || exit 77\n"
"[ -L /sbin/mount.fuse.shardyfs ] || exit 10\n"
"trap 'umount -l \"$dir\" 2>/dev/null' EXIT\n"
"SHARDYFS=$root/usr/local/bin/shardyfs\n"
"export SHARDYFS\n"
"mount -t fuse.shardyfs \"$src\" \"$dir\" -o noauto,_netdev,nofail,list_keys || exit 11\n"
"grep -q \" $dir fuse.shardyfs \" /proc/mounts || exit 12\n"
"pid=$(getfattr --absolute-names --only-values -n user.shardyfs.pid \"$dir\") || exit 13\n"
"ls -A \"$dir/keys\" | wc -l\n"
"umount \"$dir\" || exit 14\n"
"trap - EXIT\n"
"i=0\n"
"while kill -0 \"$pid\" 2>/dev/null; do\n"
"	i=$((i + 1))\n"
"	[ $i -lt 200 ] || { kill -9 \"$pid\"; exit 15; }\n"
"	sleep 0.05\n"
"done\n";

Test(mount, mount8_runs_the_installed_fuse_shardyfs_helper)
{
	char *root = NULL, *cmd = NULL, *out = NULL, *err = NULL, *script;
	char *url = sft_fixture_url("utf8"), link[64];
	ssize_t ln;
	int rc;

	if (geteuid() != 0)
		cr_skip_test("needs root for mount(8) and a mount namespace");
	if (system("unshare -m --propagation private true 2>/dev/null") != 0)
		cr_skip_test("no private mount namespace (unshare -m)");
	if (asprintf(&root, "%s/root", M.tmp) < 0 ||
	    asprintf(&cmd, "DESTDIR='%s' cmake --install '%s'", root,
		     SF_TEST_BIN_DIR) < 0)
		abort();
	rc = sft_run(cmd, &out, NULL, &err);
	cr_assert_eq(rc, 0, "%s: %s%s", cmd, out, err);
	free(cmd);
	free(out);
	free(err);

	/* the install laid the helper and its fuse.shardyfs link */
	if (asprintf(&cmd, "%s/sbin/mount.fuse.shardyfs", root) < 0)
		abort();
	ln = readlink(cmd, link, sizeof(link) - 1);
	cr_assert_gt(ln, 0, "%s: %s", cmd, strerror(errno));
	link[ln] = 0;
	cr_assert_str_eq(link, "mount.shardyfs");
	cr_assert_eq(access(cmd, X_OK), 0);
	free(cmd);

	script = path_of("../mount8.sh");
	cr_assert_eq(sft_write_file(script, mount8_script,
				    strlen(mount8_script)), 0);
	if (asprintf(&cmd, "unshare -m --propagation private sh '%s' '%s' "
		     "'%s' '%s'", script, root, url, M.dir) < 0)
		abort();
	rc = sft_run(cmd, &out, NULL, &err);
	if (rc == 77)
		cr_skip_test("no overlayfs in a mount namespace: %s", err);
	cr_assert_eq(rc, 0, "script exit %d: %s", rc, err);
	/* list_keys reached the daemon; the mount(8)-only options did not
	 * (shardyfs would have refused them) */
	cr_assert_str_eq(out, "2008\n", "listing: %s (%s)", out, err);
	cr_assert_not(is_mounted(M.dir));
	free(cmd);
	free(out);
	free(err);
	free(script);
	free(url);
	free(root);
}

/* ---- --help and README.md name every option ---------------------- */

/* The option names of fs_main.c's opt_spec ("name=" for valued ones). */
static size_t spec_options(char ***out)
{
	char *path = NULL, *src, *p, *end;
	size_t n = 0;

	if (asprintf(&path, "%s/fs/fs_main.c", SF_SOURCE_DIR) < 0)
		abort();
	src = (char *)sft_read_file(path, NULL);
	cr_assert_not_null(src, "%s", path);
	p = strstr(src, "opt_spec[] = {");
	cr_assert_not_null(p);
	end = strstr(p, "FUSE_OPT_END");
	cr_assert_not_null(end);
	*out = NULL;
	while ((p = strstr(p, "(\"")) && p < end) {
		char *q = strchr(p + 2, '"'), *pct;

		cr_assert_not_null(q);
		*out = realloc(*out, (n + 1) * sizeof(char *));
		(*out)[n] = strndup(p + 2, (size_t)(q - p - 2));
		pct = strchr((*out)[n], '%');
		if (pct)
			*pct = 0;               /* "name=%s" -> "name=" */
		n++;
		p = q;
	}
	free(src);
	free(path);
	return n;
}

static int spec_has(char **spec, size_t n, const char *name, size_t len)
{
	for (size_t i = 0; i < n; i++)
		if (strlen(spec[i]) == len && !strncmp(spec[i], name, len))
			return 1;
	return 0;
}

/* `opt` appears in text as a whole option name. */
static int names_option(const char *text, const char *opt)
{
	size_t ol = strlen(opt);

	for (const char *p = strstr(text, opt); p; p = strstr(p + 1, opt)) {
		char b = p == text ? ' ' : p[-1], a = p[ol];

		if (!strchr(" ,`|(\n", b))
			continue;
		if (opt[ol - 1] == '=' || !(a == '_' || a == '-' || a == '=' ||
		    (a >= 'a' && a <= 'z') || (a >= 'A' && a <= 'Z') ||
		    (a >= '0' && a <= '9')))
			return 1;
	}
	return 0;
}

/* Checks each name of a "-x, --y" / "name=VAL, other=VAL" list. */
static void check_listed(char **spec, size_t n, const char *list,
			 size_t len, const char *where)
{
	const char *p = list, *end = list + len;

	while (p < end) {
		const char *q = p, *eq;
		size_t l;

		while (q < end && *q != ',' && *q != ' ' && *q != '`')
			q++;
		l = (size_t)(q - p);
		eq = memchr(p, '=', l);
		if (eq)
			l = (size_t)(eq - p) + 1;
		if (l > 0)
			cr_assert(spec_has(spec, n, p, l), "%s names '%.*s', "
				  "which `shardyfs mount` does not accept",
				  where, (int)l, p);
		while (q < end && (*q == ',' || *q == ' ' || *q == '`'))
			q++;
		p = q;
	}
}

/* (In the mount suite: a second suite makes Criterion's parallel runner
 * leak, which LeakSanitizer reports.) */
Test(mount, help_and_readme_name_exactly_the_accepted_options)
{
	char **spec, *cmd = NULL, *help = NULL, *readme, *path = NULL;
	size_t n = spec_options(&spec);
	int rc;

	cr_assert_geq(n, 20, "opt_spec parsed: %zu names", n);
	if (asprintf(&cmd, "'%s' mount --help", sft_cli()) < 0 ||
	    asprintf(&path, "%s/README.md", SF_SOURCE_DIR) < 0)
		abort();
	rc = sft_run(cmd, &help, NULL, NULL);
	cr_assert_eq(rc, 0);
	readme = (char *)sft_read_file(path, NULL);
	cr_assert_not_null(readme);
	/* only the Options section counts (the mount(8) section names
	 * options the helper drops) */
	{
		char *sec = strstr(readme, "\n### Options\n"), *next;

		cr_assert_not_null(sec, "README.md has no mount Options section");
		next = strstr(sec + 1, "\n### ");
		if (next)
			*next = 0;
		memmove(readme, sec, strlen(sec) + 1);
	}

	/* every accepted option is documented in both */
	for (size_t i = 0; i < n; i++) {
		cr_assert(names_option(help, spec[i]),
			  "--help does not document '%s'", spec[i]);
		cr_assert(names_option(readme, spec[i]),
			  "README.md does not document '%s'", spec[i]);
	}
	/* and both document only accepted options: the help's option lines
	 * ("  NAMES  text") and the README's option tables ("| `NAMES` |") */
	for (char *l = help; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1
							   : NULL) {
		const char *cell = l + 2, *e;

		if (l[0] != ' ' || l[1] != ' ' || l[2] == ' ')
			continue;
		e = strstr(cell, "  ");
		if (!e || (strchr(cell, '\n') && e > strchr(cell, '\n')))
			e = strchr(cell, '\n');
		cr_assert_not_null(e);
		check_listed(spec, n, cell, (size_t)(e - cell), "--help");
	}
	for (char *l = readme; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1
							     : NULL) {
		const char *cell = l + 2, *e;

		if (strncmp(l, "| `", 3) != 0)
			continue;
		e = strstr(cell, " |");
		cr_assert_not_null(e);
		check_listed(spec, n, cell, (size_t)(e - cell), "README");
	}
	for (size_t i = 0; i < n; i++)
		free(spec[i]);
	free(spec);
	free(help);
	free(readme);
	free(cmd);
	free(path);
}
