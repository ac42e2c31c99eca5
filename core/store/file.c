/*
 * file.c -- the file:// backend (and plain paths).
 *
 * Local files behave like objects so that every caller can treat file://,
 * s3:// and http(s):// alike:
 *   - a missing file (or a directory where an object is expected) is
 *     SF_EHTTP_404, a range starting at or past the end SF_EHTTP_416;
 *   - every object has a synthetic ETag "\"<size hex>-<mtime ns hex>\"",
 *     so If-Match pinning works (a mismatch is SF_EHTTP_412). The ETag is
 *     taken from fstat() of the descriptor the bytes are read from, so a
 *     read never mixes two versions of a file replaced by rename();
 *   - writes go to a hidden temp file in the target directory that is
 *     fsync()ed and rename()d into place (readers never see a torn object);
 *     missing parent directories are created;
 *   - LIST walks directories with S3 semantics: the prefix is a string
 *     prefix (".../dir/" or ".../dir/na"), names come back as full file://
 *     URLs in byte order, and with a delimiter the common prefixes are
 *     reported once (for "/" that is simply the subdirectories).
 *
 * URLs are not percent-decoded: "file:///a b/c" names the path "/a b/c".
 * "file://localhost/x" is "/x".
 */
#include "store_impl.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_TMP_PREFIX ".sf-tmp-"
#define FILE_LIST_MAX_ENTRIES (4u * 1024 * 1024)
#define FILE_LIST_MAX_DEPTH 64
#define FILE_COPY_BUF (1u << 20)

/* The local path a file:// URL or plain path names (borrowed from url);
 * the same mapping store_local_path() gives the core. */
static const char *url_path(const char *url)
{
	const char *p = store_local_path(url);

	return p ? p : url;
}

static void etag_of(const struct stat *sb, char *out, size_t outlen)
{
	uint64_t ns = (uint64_t)sb->st_mtim.tv_sec * 1000000000ull +
		      (uint64_t)sb->st_mtim.tv_nsec;

	snprintf(out, outlen, "\"%" PRIx64 "-%" PRIx64 "\"",
		 (uint64_t)sb->st_size, ns);
}

static void info_of(const struct stat *sb, struct store_info *info)
{
	if (!info)
		return;
	info->size = (uint64_t)sb->st_size;
	info->mtime = (int64_t)sb->st_mtim.tv_sec;
	etag_of(sb, info->etag, sizeof(info->etag));
}

/* Opens url for reading and checks it is a regular file (and, when
 * if_match is set, that its ETag matches). On 0, *fdp is open (caller
 * closes) and *sb filled. */
static int open_object(const char *url, const char *if_match, int *fdp,
		       struct stat *sb, char *err, size_t errlen)
{
	const char *path = url_path(url);
	int fd, e;

	*fdp = -1;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		e = errno;
		return sf_errf(err, errlen, store_errno_code(e), "open %s: %s",
			       url, strerror(e));
	}
	if (fstat(fd, sb) != 0) {
		e = errno;
		close(fd);
		return sf_errf(err, errlen, SF_EIO, "stat %s: %s", url,
			       strerror(e));
	}
	if (!S_ISREG(sb->st_mode)) {
		close(fd);
		return sf_errf(err, errlen, SF_EHTTP_404,
			       "%s: not a regular file", url);
	}
	if (if_match && *if_match) {
		char tag[136];

		etag_of(sb, tag, sizeof(tag));
		if (strcmp(tag, if_match) != 0) {
			close(fd);
			return sf_errf(err, errlen, SF_EHTTP_412,
				       "%s changed (ETag %s, wanted %s)", url,
				       tag, if_match);
		}
	}
	*fdp = fd;
	return 0;
}

/* pread()s up to len bytes at off; *got is what was read before EOF. */
static int pread_full(int fd, uint8_t *dst, size_t len, uint64_t off,
		      size_t *got)
{
	size_t n = 0;

	while (n < len) {
		ssize_t r = pread(fd, dst + n, len - n, (off_t)(off + n));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			*got = n;
			return -errno;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	*got = n;
	return 0;
}

static int write_full(int fd, const uint8_t *src, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, src, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		src += w;
		len -= (size_t)w;
	}
	return 0;
}

static int file_get(struct store *st, const char *url, size_t max_bytes,
		    uint8_t **data, size_t *len, struct store_info *info,
		    char *err, size_t errlen)
{
	struct stat sb;
	uint8_t *buf = NULL;
	size_t got = 0;
	int fd = -1, rc;

	store_count(st, STORE_CTR_GET, 1);
	rc = open_object(url, NULL, &fd, &sb, err, errlen);
	if (rc)
		goto out;
	if ((uint64_t)sb.st_size > max_bytes) {
		rc = sf_errf(err, errlen, SF_ETOOBIG,
			     "%s is %" PRIu64 " bytes, more than the %zu allowed",
			     url, (uint64_t)sb.st_size, max_bytes);
		goto out;
	}
	buf = malloc((size_t)sb.st_size + 1);
	if (!buf) {
		rc = sf_errf(err, errlen, SF_ENOMEM, "out of memory");
		goto out;
	}
	rc = pread_full(fd, buf, (size_t)sb.st_size, 0, &got);
	if (rc) {
		rc = sf_errf(err, errlen, SF_EIO, "read %s: %s", url,
			     strerror(-rc));
		goto out;
	}
	buf[got] = '\0';
	store_count_bytes_in(st, STORE_CTR_GET, got);
	info_of(&sb, info);
	*data = buf;
	*len = got;
	buf = NULL;
out:
	free(buf);
	if (fd >= 0)
		close(fd);
	return rc;
}

static int file_get_range(struct store *st, const char *url, uint64_t off,
			  size_t len, const struct store_range_opts *ro,
			  uint8_t *dst, size_t *got, struct store_info *info,
			  char *err, size_t errlen)
{
	struct stat sb;
	int fd = -1, rc;

	store_count(st, STORE_CTR_RANGE, 1);
	rc = open_object(url, ro ? ro->if_match : NULL, &fd, &sb, err, errlen);
	if (rc)
		goto out;
	if (off >= (uint64_t)sb.st_size) {
		rc = sf_errf(err, errlen, SF_EHTTP_416,
			     "%s: range at %" PRIu64 " starts past the end (%"
			     PRIu64 " bytes)", url, off, (uint64_t)sb.st_size);
		goto out;
	}
	rc = pread_full(fd, dst, len, off, got);
	if (rc) {
		rc = sf_errf(err, errlen, SF_EIO, "read %s: %s", url,
			     strerror(-rc));
		goto out;
	}
	store_count_bytes_in(st, STORE_CTR_RANGE, *got);
	info_of(&sb, info);
out:
	if (fd >= 0)
		close(fd);
	return rc;
}

static int copy_fd(int in, int out, uint64_t *copied)
{
	uint8_t *buf = malloc(FILE_COPY_BUF);
	int rc = 0;

	*copied = 0;
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t r = read(in, buf, FILE_COPY_BUF);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			rc = -errno;
			break;
		}
		if (r == 0)
			break;
		rc = write_full(out, buf, (size_t)r);
		if (rc)
			break;
		*copied += (uint64_t)r;
	}
	free(buf);
	return rc;
}

static int file_get_to_fd(struct store *st, const char *url, int fd,
			  uint64_t max_bytes, const char *if_match,
			  struct store_info *info, char *err, size_t errlen)
{
	struct stat sb;
	uint64_t n = 0;
	int in = -1, rc;

	store_count(st, STORE_CTR_GET, 1);
	rc = open_object(url, if_match, &in, &sb, err, errlen);
	if (rc)
		goto out;
	if (max_bytes && (uint64_t)sb.st_size > max_bytes) {
		rc = sf_errf(err, errlen, SF_ETOOBIG,
			     "%s is %" PRIu64 " bytes, more than the %" PRIu64
			     " allowed", url, (uint64_t)sb.st_size, max_bytes);
		goto out;
	}
	rc = copy_fd(in, fd, &n);
	store_count_bytes_in(st, STORE_CTR_GET, n);
	if (rc) {
		rc = sf_errf(err, errlen, SF_EIO, "copy %s: %s", url,
			     strerror(-rc));
		goto out;
	}
	info_of(&sb, info);
out:
	if (in >= 0)
		close(in);
	return rc;
}

static int file_head(struct store *st, const char *url,
		     struct store_info *info, char *err, size_t errlen)
{
	struct stat sb;
	int e;

	store_count(st, STORE_CTR_HEAD, 1);
	if (stat(url_path(url), &sb) != 0) {
		e = errno;
		return sf_errf(err, errlen, store_errno_code(e), "stat %s: %s",
			       url, strerror(e));
	}
	if (!S_ISREG(sb.st_mode))
		return sf_errf(err, errlen, SF_EHTTP_404,
			       "%s: not a regular file", url);
	info_of(&sb, info);
	return 0;
}

/* ---- writing ------------------------------------------------------------- */

/* mkdir -p of the directory part of path (path itself is a file). */
static int mkdir_parents(const char *path)
{
	char buf[PATH_MAX];
	size_t n = strlen(path), i;

	if (n >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, path, n + 1);
	for (i = 1; i < n; i++) {
		if (buf[i] != '/')
			continue;
		buf[i] = '\0';
		if (mkdir(buf, 0755) != 0 && errno != EEXIST) {
			int e = errno;
			struct stat sb;
			if (!(stat(buf, &sb) == 0 && S_ISDIR(sb.st_mode)))
				return -e;
		}
		buf[i] = '/';
	}
	return 0;
}

/* Creates a temp file next to path. On 0, *fdp is open and tmp holds its
 * name. */
static int open_temp(const char *path, char *tmp, size_t tmplen, int *fdp)
{
	const char *slash = strrchr(path, '/');
	size_t dl = slash ? (size_t)(slash - path) + 1 : 0;
	int fd, n;

	n = snprintf(tmp, tmplen, "%.*s" FILE_TMP_PREFIX "%s.XXXXXX", (int)dl,
		     path, slash ? slash + 1 : path);
	if (n < 0 || (size_t)n >= tmplen)
		return -ENAMETOOLONG;
	fd = mkostemp(tmp, O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fchmod(fd, 0644) != 0) {
		/* not fatal: the object is still readable by its owner */
	}
	*fdp = fd;
	return 0;
}

/* The common tail of put and put_file: fsync, stat, rename. Closes fd. */
static int commit_temp(int fd, const char *tmp, const char *path,
		       struct store_info *info)
{
	struct stat sb;
	int rc = 0;

	if (fsync(fd) != 0 || fstat(fd, &sb) != 0)
		rc = -errno;
	if (close(fd) != 0 && !rc)
		rc = -errno;
	if (!rc && rename(tmp, path) != 0)
		rc = -errno;
	if (rc) {
		unlink(tmp);
		return rc;
	}
	info_of(&sb, info);
	return 0;
}

static int put_common(struct store *st, const char *url, const void *data,
		      size_t len, int src_fd, struct store_info *info,
		      char *err, size_t errlen)
{
	const char *path = url_path(url);
	char tmp[PATH_MAX];
	uint64_t n = 0;
	int fd = -1, rc;
	size_t pl = strlen(path);

	store_count(st, STORE_CTR_PUT, 1);
	if (pl == 0 || path[pl - 1] == '/')
		return sf_errf(err, errlen, SF_EURL,
			       "PUT %s: not an object name", url);
	rc = mkdir_parents(path);
	if (rc)
		goto fail;
	rc = open_temp(path, tmp, sizeof(tmp), &fd);
	if (rc)
		goto fail;
	if (src_fd >= 0) {
		rc = copy_fd(src_fd, fd, &n);
	} else {
		rc = write_full(fd, data, len);
		n = len;
	}
	if (rc) {
		close(fd);
		unlink(tmp);
		goto fail;
	}
	rc = commit_temp(fd, tmp, path, info);
	if (rc)
		goto fail;
	store_count(st, STORE_CTR_BYTES_OUT, n);
	return 0;
fail:
	return sf_errf(err, errlen, rc == -ENOENT ? SF_EIO : store_errno_code(-rc),
		       "PUT %s: %s", url, strerror(-rc));
}

static int file_put(struct store *st, const char *url, const void *data,
		    size_t len, const char *content_type,
		    struct store_info *info, char *err, size_t errlen)
{
	return put_common(st, url, data, len, -1, info, err, errlen);
}

static int file_put_file(struct store *st, const char *url, const char *path,
			 const char *content_type, struct store_info *info,
			 char *err, size_t errlen)
{
	int src, rc, e;

	src = open(path, O_RDONLY | O_CLOEXEC);
	if (src < 0) {
		e = errno;
		return sf_errf(err, errlen, SF_EIO, "open %s: %s", path,
			       strerror(e));
	}
	rc = put_common(st, url, NULL, 0, src, info, err, errlen);
	close(src);
	return rc;
}

/* ---- listing ----------------------------------------------------------- */

struct names {
	char **v; /* relative names; directories end in '/' */
	size_t n, cap;
};

static int names_add(struct names *ns, const char *a, const char *b,
		     int is_dir)
{
	char *s;

	if (ns->n >= FILE_LIST_MAX_ENTRIES)
		return -E2BIG;
	if (ns->n == ns->cap) {
		size_t cap = ns->cap ? ns->cap * 2 : 64;
		char **v = realloc(ns->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		ns->v = v;
		ns->cap = cap;
	}
	if (asprintf(&s, "%s%s%s", a, b, is_dir ? "/" : "") < 0)
		return -ENOMEM;
	ns->v[ns->n++] = s;
	return 0;
}

static void names_free(struct names *ns)
{
	size_t i;

	for (i = 0; i < ns->n; i++)
		free(ns->v[i]);
	free(ns->v);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Is this directory entry a directory / a regular file (following
 * symlinks)? Returns 'd', 'f' or 0 (skip). */
static int entry_kind(int dfd, const struct dirent *de)
{
	struct stat sb;

	if (de->d_type == DT_DIR)
		return 'd';
	if (de->d_type == DT_REG)
		return 'f';
	if (fstatat(dfd, de->d_name, &sb, 0) != 0)
		return 0;
	if (S_ISDIR(sb.st_mode))
		return 'd';
	if (S_ISREG(sb.st_mode))
		return 'f';
	return 0;
}

/*
 * Collects entries of dir (a path ending in '/') whose name starts with
 * namepfx; rel is the name of dir relative to the listing base. With
 * recurse, descends into subdirectories (and lists files only); without,
 * reports subdirectories as "name/".
 */
static int walk(const char *dir, const char *rel, const char *namepfx,
		int recurse, int depth, struct names *ns)
{
	DIR *d;
	struct dirent *de;
	size_t pl = strlen(namepfx);
	int rc = 0;

	if (depth > FILE_LIST_MAX_DEPTH)
		return 0;
	d = opendir(*dir ? dir : ".");
	if (!d)
		return (errno == ENOENT || errno == ENOTDIR) ? 0 : -errno;
	while ((de = readdir(d)) != NULL) {
		int kind;

		if (strcmp(de->d_name, ".") == 0 ||
		    strcmp(de->d_name, "..") == 0)
			continue;
		if (strncmp(de->d_name, FILE_TMP_PREFIX,
			    sizeof(FILE_TMP_PREFIX) - 1) == 0)
			continue;
		if (strncmp(de->d_name, namepfx, pl) != 0)
			continue;
		kind = entry_kind(dirfd(d), de);
		if (kind == 'f') {
			rc = names_add(ns, rel, de->d_name, 0);
		} else if (kind == 'd' && !recurse) {
			rc = names_add(ns, rel, de->d_name, 1);
		} else if (kind == 'd') {
			char *sub = NULL, *subrel = NULL;

			if (asprintf(&sub, "%s%s/", dir, de->d_name) < 0)
				sub = NULL;
			if (asprintf(&subrel, "%s%s/", rel, de->d_name) < 0)
				subrel = NULL;
			if (!sub || !subrel)
				rc = -ENOMEM;
			else
				rc = walk(sub, subrel, "", 1, depth + 1, ns);
			free(sub);
			free(subrel);
		}
		if (rc)
			break;
	}
	closedir(d);
	return rc;
}

static int file_list(struct store *st, const char *url_prefix,
		     const char *delimiter, store_list_cb cb, void *ctx,
		     char *err, size_t errlen)
{
	const char *path = url_path(url_prefix);
	const char *slash = strrchr(path, '/');
	struct names ns = {0};
	char *dir = NULL, *base = NULL, *name = NULL, *last = NULL;
	const char *namepfx;
	size_t i, npl, dl;
	int rc = 0, fast;

	store_count(st, STORE_CTR_LIST, 1);
	dl = slash ? (size_t)(slash - path) + 1 : 0;
	namepfx = path + dl;
	npl = strlen(namepfx);
	dir = strndup(path, dl);
	if (!dir) {
		rc = -ENOMEM;
		goto out;
	}
	/* The URL prefix names are built on: file://<absolute dir>/ */
	if (dl > 0 && path[0] == '/') {
		if (asprintf(&base, "file://%s", dir) < 0)
			base = NULL;
	} else {
		char cwd[PATH_MAX];

		if (!getcwd(cwd, sizeof(cwd))) {
			rc = -errno;
			goto out;
		}
		if (asprintf(&base, "file://%s%s%s", cwd,
			     strcmp(cwd, "/") == 0 ? "" : "/", dir) < 0)
			base = NULL;
	}
	if (!base) {
		rc = -ENOMEM;
		goto out;
	}
	fast = delimiter && strcmp(delimiter, "/") == 0;
	rc = walk(dir, "", namepfx, !fast, 0, &ns);
	if (rc)
		goto out;
	if (ns.n > 1)
		qsort(ns.v, ns.n, sizeof(*ns.v), cmp_str);
	for (i = 0; i < ns.n; i++) {
		const char *k = ns.v[i];
		int is_prefix = 0;
		size_t kl = strlen(k);

		if (fast) {
			is_prefix = kl > 0 && k[kl - 1] == '/';
		} else if (delimiter) {
			const char *d = strstr(k + npl, delimiter);
			if (d) {
				kl = (size_t)(d - k) + strlen(delimiter);
				is_prefix = 1;
			}
		}
		free(name);
		if (asprintf(&name, "%s%.*s", base, (int)kl, k) < 0) {
			name = NULL;
			rc = -ENOMEM;
			goto out;
		}
		if (is_prefix && last && strcmp(last, name) == 0)
			continue;
		rc = cb(ctx, name, is_prefix);
		if (rc)
			goto out_cb;
		free(last);
		last = name;
		name = NULL;
	}
out:
	if (rc == -E2BIG)
		rc = sf_errf(err, errlen, SF_ETOOBIG,
			     "LIST %s: more than %u entries", url_prefix,
			     FILE_LIST_MAX_ENTRIES);
	else if (rc)
		rc = sf_errf(err, errlen, store_errno_code(-rc), "LIST %s: %s",
			     url_prefix, strerror(-rc));
out_cb:
	names_free(&ns);
	free(dir);
	free(base);
	free(name);
	free(last);
	return rc;
}

static int file_create_bucket(struct store *st, const char *bucket,
			      char *err, size_t errlen)
{
	return sf_errf(err, errlen, SF_EUNSUPPORTED,
		       "buckets exist only on s3://");
}

const struct store_ops file_ops = {
	.name = "file",
	.get = file_get,
	.get_range = file_get_range,
	.get_to_fd = file_get_to_fd,
	.head = file_head,
	.list = file_list,
	.put = file_put,
	.put_file = file_put_file,
	.create_bucket = file_create_bucket,
};
