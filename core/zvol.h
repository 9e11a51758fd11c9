/* SPDX-License-Identifier: MIT */
/*
 * zvol: block volumes — a volume dataset's data as a sparse array of volblocksize blocks, with
 * the operations a block-device protocol (NBD) needs: read, write (read-modify-write for
 * unaligned ranges), trim, write-zeroes, flush, FUA, resize, the data/hole map and the
 * changed-block map since a snapshot.
 *
 * A volume's object set holds one object, ZVOL_OBJ (type OT_ZVOL, block size = volblocksize,
 * size = volsize); the `volsize` property mirrors its size. All-zero blocks are stored as holes
 * (pool-format.md decisions), so write-zeroes always deallocates; space for later writes is
 * guaranteed by refreservation, not by allocated zeroes.
 *
 * Thread-safe: any number of threads may use one handle. Reads see every write that returned,
 * committed or not; a flush (or a FUA write) returns once the data is durable.
 */
#ifndef LCPFS_CORE_ZVOL_H
#define LCPFS_CORE_ZVOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "common/err.h"
#include "core/pool.h"

#define ZVOL_OBJ               1
#define ZVOL_DEFAULT_BLOCKSIZE 16384u
#define ZVOL_MAX_WRITE_CHUNK   (1u << 20) /* one transaction per MiB of a large write */

struct zvol;
struct dataset;

/* Opens volume `name` or a snapshot of one (read-only). -ENOENT, -EINVAL (not a volume). */
int zvol_open(struct pool *p, const char *name, struct zvol **out, struct err_msg *em);
void zvol_close(struct zvol *zv); /* NULL ok */

uint64_t zvol_size(struct zvol *zv);
uint32_t zvol_blocksize(const struct zvol *zv);
bool zvol_readonly(const struct zvol *zv);
struct dataset *zvol_dataset(struct zvol *zv);

/* Reads [off, off+len): -EINVAL past the end, -ECKSUM / -EIO. */
int zvol_read(struct zvol *zv, uint64_t off, size_t len, void *buf);
/* The same without copying: pieces lent by the cache (core/objset.h obj_read_pieces); max =
 * len / zvol_blocksize() + 2 always suffices. Release each with obj_piece_release. */
struct obj_piece;
int zvol_read_pieces(struct zvol *zv, uint64_t off, size_t len, struct obj_piece *pv, size_t max,
                     size_t *n);
/* The same for an event loop: never waits. -EWOULDBLOCK when a lock is busy or a block is not in
 * the cache (then call zvol_read_pieces from a thread that may wait). */
int zvol_read_pieces_nowait(struct zvol *zv, uint64_t off, size_t len, struct obj_piece *pv,
                            size_t max, size_t *n);

enum {
    ZVOL_FUA = 1u << 0,
    ZVOL_NOWAIT = 1u << 1, /* zvol_write_blocks: -EWOULDBLOCK instead of waiting */
};
/* Writes [off, off+len); with ZVOL_FUA returns once durable. -EINVAL past the end, -EROFS,
 * -ENOSPC, -EDQUOT. A failed write may have written a prefix (like a disk). */
int zvol_write(struct zvol *zv, uint64_t off, size_t len, const void *buf, unsigned flags);
/*
 * Zero-copy writes of whole blocks. zvol_block_alloc returns a buffer of zvol_blocksize() bytes
 * (NULL: no memory), to fill and pass to zvol_write_blocks or to free with zvol_block_free.
 * zvol_write_blocks writes bufs[0..n) as the blocks from off (a multiple of the block size) on,
 * taking them over instead of copying. Errors as zvol_write. With ZVOL_NOWAIT, for an event
 * loop, it returns -EWOULDBLOCK having done nothing wherever it would wait (a busy lock, the
 * write throttle, FUA, more than ZVOL_MAX_WRITE_CHUNK): the buffers are then still the caller's,
 * to write from a thread that may wait. On every other return they are consumed.
 */
uint8_t *zvol_block_alloc(const struct zvol *zv);
void zvol_block_free(uint8_t *block); /* NULL ok */
int zvol_write_blocks(struct zvol *zv, uint64_t off, uint8_t **bufs, size_t n, unsigned flags);
/* Deallocates [off, off+len) (reads then return zeros). */
int zvol_trim(struct zvol *zv, uint64_t off, uint64_t len, unsigned flags);
/* Zeroes [off, off+len) (as holes). */
int zvol_write_zeroes(struct zvol *zv, uint64_t off, uint64_t len, unsigned flags);
/* Makes every write that returned durable. */
int zvol_flush(struct zvol *zv);

/* Data/hole map of [off, off+len) as of now (uncommitted writes included). */
typedef int (*zvol_extent_fn)(void *arg, uint64_t off, uint64_t len, bool is_data);
int zvol_extents(struct zvol *zv, uint64_t off, uint64_t len, zvol_extent_fn fn, void *arg);

/* Ranges changed since snapshot/bookmark `since` (full name; see ds_changed_blocks). */
typedef int (*zvol_changed_fn)(void *arg, uint64_t off, uint64_t len);
int zvol_changed(struct zvol *zv, const char *since, zvol_changed_fn fn, void *arg,
                 struct err_msg *em);

/* Space a thick volume reserves: volsize times copies plus its indirect blocks. */
uint64_t zvol_thick_reservation(uint64_t volsize, uint32_t volblocksize, unsigned copies);

#endif
