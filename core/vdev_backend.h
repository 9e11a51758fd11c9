/* SPDX-License-Identifier: MIT */
/*
 * vdev_backend: how the pool reaches one leaf device. A small vtable with three implementations:
 * a regular file or block device (pread/pwrite/fdatasync, optional O_DIRECT), memory (tests),
 * and a fault-injecting wrapper around any other backend (tests).
 *
 * Offsets and lengths are absolute bytes on the device. All calls are thread-safe and may run
 * concurrently (pread/pwrite semantics); a short transfer is retried internally, so a call either
 * transfers everything or fails with a negative errno (-EIO on device errors).
 */
#ifndef LCPFS_CORE_VDEV_BACKEND_H
#define LCPFS_CORE_VDEV_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct vdev_backend;

/* The most segments of one vdev_backend_writev (and of one aggregated device write). */
#define VDEV_IOV_MAX 256

struct vdev_backend_ops {
    int (*read)(struct vdev_backend *b, uint64_t off, void *buf, size_t len);
    int (*write)(struct vdev_backend *b, uint64_t off, const void *buf, size_t len);
    /* Optional: one write of iov[0..n) at off (n <= VDEV_IOV_MAX); else write per segment. */
    int (*writev)(struct vdev_backend *b, uint64_t off, const struct iovec *iov, int n);
    int (*flush)(struct vdev_backend *b);  /* make every completed write durable */
    void (*close)(struct vdev_backend *b); /* frees b */
};

struct vdev_backend {
    const struct vdev_backend_ops *ops;
    uint64_t size;  /* usable bytes */
    char path[192]; /* for messages and the config path hint; "" when none */
};

static inline int
vdev_backend_read(struct vdev_backend *b, uint64_t off, void *buf, size_t len)
{
    return b->ops->read(b, off, buf, len);
}
static inline int
vdev_backend_write(struct vdev_backend *b, uint64_t off, const void *buf, size_t len)
{
    return b->ops->write(b, off, buf, len);
}
/* Writes iov[0..n) contiguously at off: in one call when the backend can, else per segment. */
static inline int
vdev_backend_writev(struct vdev_backend *b, uint64_t off, const struct iovec *iov, int n)
{
    if (b->ops->writev != NULL)
        return b->ops->writev(b, off, iov, n);
    for (int i = 0; i < n; i++) {
        int rc = b->ops->write(b, off, iov[i].iov_base, iov[i].iov_len);
        if (rc != 0)
            return rc;
        off += iov[i].iov_len;
    }
    return 0;
}
static inline int
vdev_backend_flush(struct vdev_backend *b)
{
    return b->ops->flush(b);
}
/* Closes and frees b; NULL is a no-op. */
void vdev_backend_close(struct vdev_backend *b);

/*
 * Which I/O bypasses the page cache (O_DIRECT). The pool's block cache (arc.h) already holds
 * what was written and read, so the page cache only adds a second copy of it:
 *   OFF     everything buffered (the kernel caches, reads ahead and writes back);
 *   WRITES  writes direct: no copy into the page cache, no second cached copy of written data,
 *           no write-back or dirty throttling behind the pool's back; reads stay buffered, so
 *           the kernel's read-ahead still serves cold sequential reads;
 *   ALL     reads and writes direct: the block cache is the only cache.
 * A filesystem that refuses O_DIRECT (tmpfs) silently gets OFF.
 */
enum vdev_direct {
    VDEV_DIRECT_OFF = 0,
    VDEV_DIRECT_WRITES,
    VDEV_DIRECT_ALL,
};

struct vdev_file_opts {
    bool create;             /* create the file if missing (regular files only) */
    uint64_t create_size;    /* size of a created file (sparse, via ftruncate) */
    enum vdev_direct direct; /* what goes O_DIRECT; falls back to buffered if refused */
    bool readonly;
};

/*
 * Opens a regular file or block device. Returns 0 and a new backend in *out (free with
 * vdev_backend_close), -ENOENT if missing and !create, -EINVAL if smaller than VDEV_MIN_SIZE,
 * or another negative errno.
 */
int vdev_file_open(const char *path, const struct vdev_file_opts *opts, struct vdev_backend **out);

/* A zero-filled memory device of size bytes. Returns 0 or -ENOMEM. */
int vdev_mem_open(uint64_t size, struct vdev_backend **out);

/*
 * Fault-injecting wrapper. Takes ownership of inner (closing the wrapper closes inner).
 * Faults are set with the vdev_fault_* calls below at any time, from any thread.
 */
int vdev_fault_wrap(struct vdev_backend *inner, struct vdev_backend **out);

/* Fail the n-th read (1 = the next one) from now with -EIO; 0 disarms. */
void vdev_fault_fail_nth_read(struct vdev_backend *b, uint64_t n);
/* Fail the n-th write from now with -EIO; 0 disarms. */
void vdev_fault_fail_nth_write(struct vdev_backend *b, uint64_t n);
/* Every read from now on fails (or stops failing) with -EIO. */
void vdev_fault_fail_all_reads(struct vdev_backend *b, bool on);
void vdev_fault_fail_all_writes(struct vdev_backend *b, bool on);
/* Every read from now on first sleeps usec microseconds (a slow device; 0 = off). */
void vdev_fault_set_read_delay(struct vdev_backend *b, unsigned usec);
/* Flip bits in the inner device's data at [off, off+len): XOR each byte with mask (nonzero). */
int vdev_fault_flip(struct vdev_backend *b, uint64_t off, uint64_t len, uint8_t mask);
/*
 * Power-loss simulation: while armed, writes are buffered in memory and reach the inner device
 * only on flush. vdev_fault_power_cut() discards every write since the last flush (as a cut
 * would), and keeps buffering. Reads see buffered writes (like a device cache).
 */
void vdev_fault_set_volatile_cache(struct vdev_backend *b, bool on);
void vdev_fault_power_cut(struct vdev_backend *b);
/*
 * Crash simulation: the n-th write from now (1 = the next) and every write and flush after it
 * vanish silently, as if power failed just before that write; anything still in the volatile
 * cache is lost at that moment. The pool above keeps running, unaware; close it and import the
 * inner device to see what a machine would find after the crash. 0 disarms.
 */
void vdev_fault_crash_after_writes(struct vdev_backend *b, uint64_t n);
/* Counters of operations seen by the wrapper. */
struct vdev_fault_stats {
    uint64_t reads, writes, flushes, injected_read_errors, injected_write_errors;
};
void vdev_fault_get_stats(struct vdev_backend *b, struct vdev_fault_stats *out);

#endif
