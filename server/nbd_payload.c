/* SPDX-License-Identifier: MIT */
/*
 * nbd_payload: WRITE payloads received into volume blocks or a flat buffer (see nbd_payload.h).
 *
 * Invariants:
 *   1. Block mode: bs != 0, len == nblocks * bs, and byte i of the payload lives at
 *      blocks[i / bs][i % bs]; flat mode: bs == 0 and it lives at flat[i].
 *   2. Bytes [0, got) have been received; nothing past got is ever read by the volume code,
 *      which sees the payload only once got == len.
 *   3. Block mode: a block is allocated only when the bytes are about to arrive (at most
 *      READ_AHEAD past got), so a client that announces a large WRITE and stalls holds no more
 *      memory than it sent; once got == len every block is allocated. (Slab memory is faulted
 *      in when taken, unlike a large malloc, which only costs what is touched.)
 */
#include "server/nbd_payload.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include <event2/buffer.h>

#include "common/assert.h"
#include "core/zvol.h"

/* iovecs per readv: 64 blocks of the smallest size (4 KiB) are still 256 KiB per call. */
#define READ_IOVS  64
/* Block buffers allocated ahead of the bytes received (at least the block being filled). */
#define READ_AHEAD (1u << 20)

int
nbd_payload_init(struct nbd_payload *pl, const struct zvol *zv, uint64_t off, uint32_t len)
{
    *pl = (struct nbd_payload){ .len = len };
    uint32_t bs = zv != NULL ? zvol_blocksize(zv) : 0;
    if (bs == 0 || len == 0 || off % bs != 0 || len % bs != 0) {
        pl->flat = malloc(len ? len : 1);
        return pl->flat != NULL ? 0 : -ENOMEM;
    }
    pl->blocks = calloc(len / bs, sizeof(*pl->blocks));
    if (pl->blocks == NULL)
        return -ENOMEM;
    pl->zv = zv;
    pl->bs = bs;
    pl->nblocks = len / bs; /* allocated as the bytes come (invariant 3) */
    return 0;
}

/* Allocates the blocks from the one holding byte got up to READ_AHEAD bytes on. */
static int
alloc_ahead(struct nbd_payload *pl)
{
    if (pl->bs == 0)
        return 0;
    uint32_t first = pl->got / pl->bs;
    uint32_t last = (uint32_t)(((uint64_t)pl->got + READ_AHEAD - 1) / pl->bs);
    if (last >= pl->nblocks)
        last = pl->nblocks - 1;
    for (uint32_t i = first; i <= last; i++) {
        if (pl->blocks[i] == NULL && (pl->blocks[i] = zvol_block_alloc(pl->zv)) == NULL)
            return -ENOMEM;
    }
    return 0;
}

void
nbd_payload_free(struct nbd_payload *pl)
{
    for (uint32_t i = 0; i < pl->nblocks; i++)
        zvol_block_free(pl->blocks[i]); /* NULL for blocks not reached */
    free(pl->blocks);
    free(pl->flat);
    *pl = (struct nbd_payload){ 0 };
}

/* Where byte `at` goes, and how many may follow it contiguously; NULL if its block is not
 * allocated yet. */
static uint8_t *
cursor(const struct nbd_payload *pl, uint32_t at, size_t *room)
{
    if (pl->bs == 0) {
        *room = pl->len - at;
        return pl->flat + at;
    }
    *room = pl->bs - at % pl->bs;
    uint8_t *block = pl->blocks[at / pl->bs];
    return block != NULL ? block + at % pl->bs : NULL;
}

int
nbd_payload_take(struct nbd_payload *pl, struct evbuffer *in)
{
    while (pl->got < pl->len && evbuffer_get_length(in) > 0) {
        if (alloc_ahead(pl) != 0)
            return -ENOMEM;
        size_t room;
        uint8_t *at = cursor(pl, pl->got, &room);
        int n = evbuffer_remove(in, at, room);
        if (n <= 0)
            break;
        pl->got += (uint32_t)n;
    }
    return 0;
}

/*
 * libevent 2.1 reads at most 4 KiB per system call (EVBUFFER_MAX_READ, plus a FIONREAD each
 * time), which made a 1 MiB payload cost 512 system calls on the loop thread, and a copy. Reading
 * the socket here is safe: in is empty when we do, so the stream order is kept, and libevent only
 * reads again from its next read event.
 */
int
nbd_payload_fill(struct nbd_payload *pl, struct evbuffer *in, int fd)
{
    int rc = nbd_payload_take(pl, in);
    if (rc != 0)
        return rc;
    while (pl->got < pl->len) {
        if (alloc_ahead(pl) != 0)
            return -ENOMEM;
        struct iovec iov[READ_IOVS];
        int niov = 0;
        for (uint32_t at = pl->got; at < pl->len && niov < READ_IOVS; niov++) {
            size_t room;
            iov[niov].iov_base = cursor(pl, at, &room);
            if (iov[niov].iov_base == NULL)
                break; /* not allocated yet: the next round */
            iov[niov].iov_len = room;
            at += (uint32_t)room;
        }
        ssize_t n = readv(fd, iov, niov);
        if (n > 0) {
            pl->got += (uint32_t)n;
            continue;
        }
        if (n == 0)
            return -EPIPE;
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN) /* EWOULDBLOCK is the same on Linux */
            return 0;
        return -errno;
    }
    return 1;
}

int
nbd_payload_write(struct nbd_payload *pl, struct zvol *zv, uint64_t off, unsigned flags)
{
    ASSERT(nbd_payload_complete(pl));
    if (pl->bs == 0) {
        if (flags & ZVOL_NOWAIT)
            return -EWOULDBLOCK;
        return zvol_write(zv, off, pl->len, pl->flat, flags);
    }
    int rc = zvol_write_blocks(zv, off, pl->blocks, pl->nblocks, flags);
    if (rc != -EWOULDBLOCK)
        pl->nblocks = 0; /* taken over (or freed) by the volume */
    return rc;
}
