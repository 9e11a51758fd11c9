/* SPDX-License-Identifier: MIT */
/*
 * nbd_payload: the bytes of one NBD WRITE on their way from the socket to the volume.
 *
 * A WRITE that covers whole volume blocks (the usual case: qemu, nbdcopy and fio write aligned)
 * is received straight into volume block buffers, which zvol_write_blocks then takes over as the
 * txg's dirty blocks: the payload is copied once, by the kernel, from the socket into the
 * memory it will be stored from. Any other WRITE is received into one flat buffer and copied
 * into the volume by zvol_write. Loop thread only, except nbd_payload_write (any thread).
 */
#ifndef LCPFS_SERVER_NBD_PAYLOAD_H
#define LCPFS_SERVER_NBD_PAYLOAD_H

#include <stdbool.h>
#include <stdint.h>

struct evbuffer;
struct zvol;

struct nbd_payload {
    uint32_t len;          /* bytes expected */
    uint32_t got;          /* bytes received so far */
    uint32_t bs;           /* block mode: the volume's block size; 0 in flat mode */
    uint32_t nblocks;      /* block mode: len / bs buffers in blocks (0 once written) */
    uint8_t **blocks;      /* block mode: from zvol_block_alloc as the bytes arrive (NULL before) */
    const struct zvol *zv; /* block mode: whose blocks */
    uint8_t *flat;         /* flat mode: len bytes */
};

/* Prepares *pl for a payload of len bytes written at off of zv (NULL: flat). 0 or -ENOMEM. */
int nbd_payload_init(struct nbd_payload *pl, const struct zvol *zv, uint64_t off, uint32_t len);
/* Frees the buffers not yet handed to the volume and zeroes *pl. */
void nbd_payload_free(struct nbd_payload *pl);

static inline bool
nbd_payload_complete(const struct nbd_payload *pl)
{
    return pl->got == pl->len;
}

/* Moves what the payload still lacks, or all there is, from in. 0, or -ENOMEM. */
int nbd_payload_take(struct nbd_payload *pl, struct evbuffer *in);

/*
 * Fills the payload of a plain socket: first from in (what libevent has buffered), then straight
 * from the non-blocking socket fd into the payload's buffers. Returns 1 when complete, 0 when the
 * socket has no more for now, -EPIPE when the peer closed it, -ENOMEM, or another negative errno.
 */
int nbd_payload_fill(struct nbd_payload *pl, struct evbuffer *in, int fd);

/*
 * Writes the complete payload at off of zv (flags: ZVOL_FUA, ZVOL_NOWAIT). With ZVOL_NOWAIT only
 * a block-mode payload is tried (others return -EWOULDBLOCK); after -EWOULDBLOCK the payload is
 * unchanged, after any other result its blocks belong to the volume (or were freed).
 */
int nbd_payload_write(struct nbd_payload *pl, struct zvol *zv, uint64_t off, unsigned flags);

#endif
