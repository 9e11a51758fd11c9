/* SPDX-License-Identifier: MIT */
/*
 * vdev_file: a leaf device that is a regular file or a block device.
 *
 * Theory of operation. I/O is plain pread/pwrite on one descriptor, looped until the whole
 * range moved (short transfers and EINTR are retried; a zero-byte transfer means the file shrank
 * under us and is -EIO). Flush is fdatasync, which on Linux also sends a cache flush to a block
 * device. The size is fixed at open: st_size for a file, BLKGETSIZE64 for a block device.
 *
 * O_DIRECT. When asked for (enum vdev_direct: writes only, or reads and writes), the device is
 * opened with O_DIRECT; a filesystem that refuses it (tmpfs answers EINVAL) silently gets a
 * buffered descriptor instead. Direct I/O needs the offset, the length and the memory buffer
 * aligned; the alignments are the kernel's (statx STATX_DIOALIGN), else guessed from the
 * block size. The pool's I/O is sector-aligned and its block buffers are BLKBUF_ALIGN-aligned
 * (blkbuf.h), so:
 *   - a request in a direct direction whose offset and length are multiples of dio_align goes
 *     to the direct descriptor; if the caller's buffer is not dio_mem_align-aligned it is
 *     bounced through an aligned temporary buffer;
 *   - any other request (or one the kernel still refuses with EINVAL) goes to a second,
 *     buffered descriptor on the same file. Linux keeps the page cache coherent around direct
 *     I/O (a direct write writes back and drops the cached pages of its range), so mixing the
 *     two is safe; fdatasync on either descriptor syncs the file.
 *
 * Invariants:
 *  1. fd is always valid; bfd == -1 unless direct, in which case bfd is a buffered descriptor
 *     of the same file opened with the same access mode.
 *  2. readonly implies both descriptors are O_RDONLY and every write fails with -EROFS.
 *  3. Every I/O is range-checked against base.size (fixed at open) before it is issued.
 * The struct is immutable after open, so calls need no lock (pread/pwrite are thread-safe).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/err.h"
#include "core/ondisk.h"
#include "core/vdev_backend.h"

#define DIO_GUESS_ALIGN 4096u  /* alignment assumed when the kernel does not say: a page */
#define BOUNCE_CHUNK    MiB(1) /* largest bounce buffer; bigger requests are split */

struct file_backend {
    struct vdev_backend base; /* first: the ops cast between the two */
    int fd;                   /* the device; O_DIRECT when direct */
    int bfd;                  /* buffered descriptor when direct, else -1 (invariant 1) */
    bool direct;              /* fd was opened with O_DIRECT */
    bool direct_reads;        /* reads use fd too (VDEV_DIRECT_ALL); else only writes do */
    bool readonly;
    uint32_t dio_align;     /* offset/length granularity of direct I/O (bytes, power of two) */
    uint32_t dio_mem_align; /* buffer alignment of direct I/O (bytes, power of two) */
};

static struct file_backend *
file_of(struct vdev_backend *b)
{
    return (struct file_backend *)b;
}

static bool
file_range_ok(const struct file_backend *f, uint64_t off, size_t len)
{
    return off <= f->base.size && len <= f->base.size - off;
}

/* pread until len bytes arrived. -errno, or -EIO on an unexpected end of file. */
static int
pread_full(int fd, uint64_t off, uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = pread(fd, buf, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return ERR(-EIO);
        buf += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

static int
pwrite_full(int fd, uint64_t off, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, buf, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            return ERR(-EIO);
        buf += n;
        off += (uint64_t)n;
        len -= (size_t)n;
    }
    return 0;
}

/* pwritev until all of iov[0..n) (n <= VDEV_IOV_MAX) is written, resuming after short writes. */
static int
pwritev_full(int fd, uint64_t off, const struct iovec *iov, int n)
{
    struct iovec left[VDEV_IOV_MAX];
    ASSERT(n >= 0 && n <= VDEV_IOV_MAX);
    memcpy(left, iov, (size_t)n * sizeof(*iov));
    struct iovec *v = left;
    while (n > 0) {
        ssize_t done = pwritev(fd, v, n, (off_t)off);
        if (done < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (done == 0)
            return ERR(-EIO);
        off += (uint64_t)done;
        while (n > 0 && (size_t)done >= v->iov_len) {
            done -= (ssize_t)v->iov_len;
            v++;
            n--;
        }
        if (n > 0) {
            v->iov_base = (uint8_t *)v->iov_base + done;
            v->iov_len -= (size_t)done;
        }
    }
    return 0;
}

static bool
file_direct_ok(const struct file_backend *f, uint64_t off, size_t len)
{
    return f->direct && (off & (f->dio_align - 1)) == 0 && (len & (f->dio_align - 1)) == 0;
}

/*
 * Direct I/O of an aligned range with a possibly unaligned buffer. write selects the direction;
 * for reads buf is written to. Returns 0, -ENOMEM, or the transfer's error.
 */
static int
file_direct_io(struct file_backend *f, bool write, uint64_t off, uint8_t *buf, size_t len)
{
    if (((uintptr_t)buf & (f->dio_mem_align - 1)) == 0) {
        return write ? pwrite_full(f->fd, off, buf, len) : pread_full(f->fd, off, buf, len);
    }
    size_t cap = len < BOUNCE_CHUNK ? len : (size_t)BOUNCE_CHUNK;
    size_t align = f->dio_mem_align > DIO_GUESS_ALIGN ? f->dio_mem_align : DIO_GUESS_ALIGN;
    uint8_t *bounce = aligned_alloc(align, (cap + align - 1) & ~(align - 1));
    if (bounce == NULL)
        return ERR(-ENOMEM);
    int rc = 0;
    while (len > 0 && rc == 0) {
        size_t n = len < cap ? len : cap; /* cap and len are dio_align multiples */
        if (write) {
            memcpy(bounce, buf, n);
            rc = pwrite_full(f->fd, off, bounce, n);
        } else {
            rc = pread_full(f->fd, off, bounce, n);
            if (rc == 0)
                memcpy(buf, bounce, n);
        }
        buf += n;
        off += n;
        len -= n;
    }
    free(bounce);
    return rc;
}

static int
file_read(struct vdev_backend *b, uint64_t off, void *buf, size_t len)
{
    struct file_backend *f = file_of(b);

    if (!file_range_ok(f, off, len))
        return ERR(-EINVAL);
    if (len == 0)
        return 0;
    if (f->direct_reads && file_direct_ok(f, off, len)) {
        int rc = file_direct_io(f, false, off, buf, len);
        if (rc != -EINVAL)
            return rc;
        /* the kernel wants a coarser alignment than we guessed: go buffered */
    }
    return pread_full(f->direct ? f->bfd : f->fd, off, buf, len);
}

static int
file_write(struct vdev_backend *b, uint64_t off, const void *buf, size_t len)
{
    struct file_backend *f = file_of(b);

    if (f->readonly)
        return ERR(-EROFS);
    if (!file_range_ok(f, off, len))
        return ERR(-EINVAL);
    if (len == 0)
        return 0;
    if (file_direct_ok(f, off, len)) {
        /* file_direct_io only reads from buf when writing; the cast keeps one helper */
        int rc = file_direct_io(f, true, off, (uint8_t *)(uintptr_t)buf, len);
        if (rc != -EINVAL)
            return rc;
    }
    return pwrite_full(f->direct ? f->bfd : f->fd, off, buf, len);
}

/*
 * One pwritev for the whole vector: on the direct descriptor when every segment is aligned for
 * it, on the buffered one when the device is not direct; anything else (or a direct write the
 * kernel refuses) is written segment by segment by file_write, which knows the fallbacks.
 */
static int
file_writev(struct vdev_backend *b, uint64_t off, const struct iovec *iov, int n)
{
    struct file_backend *f = file_of(b);

    if (f->readonly)
        return ERR(-EROFS);
    size_t total = 0;
    bool aligned = f->direct && (off & (f->dio_align - 1)) == 0;
    for (int i = 0; i < n; i++) {
        total += iov[i].iov_len;
        if (((uintptr_t)iov[i].iov_base & (f->dio_mem_align - 1)) != 0 ||
            (iov[i].iov_len & (f->dio_align - 1)) != 0)
            aligned = false;
    }
    if (!file_range_ok(f, off, total))
        return ERR(-EINVAL);
    if (!f->direct)
        return pwritev_full(f->fd, off, iov, n);
    if (aligned) {
        int rc = pwritev_full(f->fd, off, iov, n);
        if (rc != -EINVAL)
            return rc;
    }
    for (int i = 0; i < n; i++) {
        int rc = file_write(b, off, iov[i].iov_base, iov[i].iov_len);
        if (rc != 0)
            return rc;
        off += iov[i].iov_len;
    }
    return 0;
}

static int
file_flush(struct vdev_backend *b)
{
    struct file_backend *f = file_of(b);

    if (f->readonly)
        return 0;
    while (fdatasync(f->fd) != 0) {
        if (errno != EINTR)
            return -errno;
    }
    return 0;
}

static void
file_close(struct vdev_backend *b)
{
    struct file_backend *f = file_of(b);

    (void)close(f->fd);
    if (f->bfd >= 0)
        (void)close(f->bfd);
    free(f);
}

static const struct vdev_backend_ops file_ops = {
    .read = file_read,
    .write = file_write,
    .writev = file_writev,
    .flush = file_flush,
    .close = file_close,
};

/*
 * Opens path with flags. When it is missing and opts->create is set, first creates it as a
 * sparse file of create_size bytes (created buffered: some filesystems refuse O_DIRECT) and
 * sets *created; the caller unlinks it if the open fails later. Returns the descriptor or a
 * negative errno.
 */
static int
file_open_fd(const char *path, int flags, const struct vdev_file_opts *opts, bool *created)
{
    for (;;) {
        int fd = open(path, flags);
        if (fd >= 0)
            return fd;
        if (errno == EINTR)
            continue;
        if (errno != ENOENT || !opts->create)
            return -errno;
        if (opts->create_size < VDEV_MIN_SIZE)
            return ERR(-EINVAL);
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0) {
            if (errno == EEXIST || errno == EINTR)
                continue; /* someone else made it: open theirs */
            return -errno;
        }
        int rc = ftruncate(fd, (off_t)opts->create_size) != 0 ? -errno : 0;
        (void)close(fd);
        if (rc != 0) {
            (void)unlink(path);
            return rc;
        }
        *created = true;
    }
}

static bool
align_ok(uint64_t a)
{
    return a >= 1 && a <= 65536 && (a & (a - 1)) == 0;
}

/*
 * The kernel's direct I/O alignments for the open file (statx STATX_DIOALIGN, Linux 6.1), when
 * it reports them; otherwise the guesses already in f are kept.
 */
static void
file_probe_dio(struct file_backend *f)
{
    struct statx sx;
    if (statx(f->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &sx) != 0 ||
        (sx.stx_mask & STATX_DIOALIGN) == 0)
        return;
    if (align_ok(sx.stx_dio_offset_align) && align_ok(sx.stx_dio_mem_align)) {
        f->dio_align = sx.stx_dio_offset_align;
        f->dio_mem_align = sx.stx_dio_mem_align;
    }
}

/* Fills f->base.size, f->dio_align and f->dio_mem_align from the open descriptor. */
static int
file_probe(struct file_backend *f)
{
    struct stat st;

    if (fstat(f->fd, &st) != 0)
        return -errno;
    f->dio_mem_align = DIO_GUESS_ALIGN;
    if (S_ISREG(st.st_mode)) {
        f->base.size = (uint64_t)st.st_size;
        f->dio_align = st.st_blksize >= (blksize_t)SECTOR_SIZE && align_ok((uint64_t)st.st_blksize)
                           ? (uint32_t)st.st_blksize
                           : DIO_GUESS_ALIGN;
    } else if (S_ISBLK(st.st_mode)) {
        uint64_t bytes = 0;
        int lbs = 0;
        if (ioctl(f->fd, BLKGETSIZE64, &bytes) != 0)
            return -errno;
        if (ioctl(f->fd, BLKSSZGET, &lbs) != 0 || lbs < (int)SECTOR_SIZE ||
            !align_ok((uint64_t)lbs))
            lbs = DIO_GUESS_ALIGN;
        f->base.size = bytes;
        f->dio_align = (uint32_t)lbs;
    } else {
        return ERR(-EINVAL); /* neither a file nor a block device */
    }
    if (f->direct)
        file_probe_dio(f);
    return 0;
}

int
vdev_file_open(const char *path, const struct vdev_file_opts *opts, struct vdev_backend **out)
{
    static const struct vdev_file_opts defaults = { 0 };
    ASSERT(path != NULL);
    ASSERT(out != NULL);
    *out = NULL;
    if (opts == NULL)
        opts = &defaults;
    if (opts->create && opts->readonly)
        return ERR(-EINVAL);

    struct file_backend *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return ERR(-ENOMEM);
    f->fd = -1;
    f->bfd = -1;
    f->readonly = opts->readonly;

    int flags = (opts->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
    bool created = false;
    int rc;
    if (opts->direct != VDEV_DIRECT_OFF) {
        rc = file_open_fd(path, flags | O_DIRECT, opts, &created);
        if (rc >= 0) {
            f->direct = true;
            f->direct_reads = opts->direct == VDEV_DIRECT_ALL;
        } else if (rc == -EINVAL)
            rc = file_open_fd(path, flags, opts, &created); /* O_DIRECT refused: buffered */
    } else {
        rc = file_open_fd(path, flags, opts, &created);
    }
    if (rc < 0)
        goto fail;
    f->fd = rc;
    if (f->direct) {
        rc = file_open_fd(path, flags, opts, &created);
        if (rc < 0)
            goto fail;
        f->bfd = rc;
    }
    rc = file_probe(f);
    if (rc != 0)
        goto fail;
    if (f->base.size < VDEV_MIN_SIZE) {
        rc = ERR(-EINVAL);
        goto fail;
    }
    (void)snprintf(f->base.path, sizeof(f->base.path), "%s", path);
    f->base.ops = &file_ops;
    *out = &f->base;
    return 0;

fail:
    if (f->fd >= 0)
        (void)close(f->fd);
    if (f->bfd >= 0)
        (void)close(f->bfd);
    if (created)
        (void)unlink(path);
    free(f);
    return rc;
}
