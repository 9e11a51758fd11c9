/* SPDX-License-Identifier: MIT */
/*
 * nbd_session: one NBD connection, shared by nbd_server.c (sockets, state machine, loop thread)
 * and nbd_ops.c (option and command work on worker threads, building reply bytes).
 *
 * State machine (loop thread):
 *
 *   FLAGS --4 bytes--> OPT_HDR --16--> OPT_DATA --len--> OPT_BUSY (worker) --reply--> OPT_HDR
 *                        |  \--too big--> OPT_SKIP --len--> (TOO_BIG reply) --> OPT_HDR
 *                        |--STARTTLS--> TLS (handshake) --> OPT_HDR
 *                        `--GO / EXPORT_NAME ok--> TX_HDR --28--> [TX_DATA --len-->] worker
 *   any state --protocol error, ABORT, DISC, peer gone--> DEAD (freed when nothing is in flight)
 *
 * Invariants:
 *   1. Only the session's loop thread (s->loop, srv_loop.c) touches the bufferevent and the
 *      state; a worker touches only its job and the session fields the job owns until its
 *      completion runs (zv is read-only then).
 *   2. A session is freed only on its loop thread, when it is DEAD and no job is in flight.
 *   3. At most one option job runs at a time (options are sequential); transmission requests
 *      may run concurrently and complete in any order (NBD allows out-of-order replies).
 */
#ifndef LCPFS_SERVER_NBD_SESSION_H
#define LCPFS_SERVER_NBD_SESSION_H

#include <stdbool.h>
#include <stdint.h>

#include "core/objset.h"
#include "proto/nbd.h"
#include "server/exports.h"
#include "server/nbd_payload.h"
#include "server/nbd_server.h"
#include "server/workq.h"

struct bufferevent;
struct event;
struct zvol;
struct srv_pool;

enum sess_state {
    S_FLAGS,
    S_OPT_HDR,
    S_OPT_DATA,
    S_OPT_SKIP,
    S_OPT_BUSY,
    S_TLS,
    S_TX_HDR,
    S_TX_DATA,
    S_DEAD
};

/* A metadata context selected by SET_META_CONTEXT. */
struct meta_ctx {
    uint32_t id;
    bool dirty;                   /* qemu:dirty-bitmap:<snap> (else base:allocation) */
    char since[DSL_NAME_MAX + 1]; /* dirty: the snapshot or bookmark it is relative to */
    char name[DSL_NAME_MAX + 32]; /* the context name as negotiated */
};

/* Growable reply bytes built by a worker. */
struct rbuf {
    uint8_t *p;
    size_t len, cap;
    int err; /* -ENOMEM once an append failed */
};
uint8_t *rbuf_reserve(struct rbuf *b, size_t n); /* NULL (and err) on failure */
void rbuf_commit(struct rbuf *b, size_t n);

struct nbd_session {
    struct nbd_server *ns;
    struct srv *srv;
    struct srv_loop *loop; /* every callback of the session runs on this loop's thread */
    struct bufferevent *bev;
    char peer[80];
    enum sess_state state;
    bool no_zeroes, structured, tls_active;
    unsigned inflight; /* jobs running for this session */
    bool read_paused;
    bool peer_gone;                      /* EOF or error: replies are dropped */
    bool free_scheduled;                 /* a reap callback will free it */
    struct event *deadline;              /* negotiation must end by then (NBD_SRV_HANDSHAKE_SECS) */
    uint64_t reading_bytes;              /* data of READs in flight (backpressure) */
    uint64_t reads_loop, reads_worker;   /* READs served on the loop thread / by a worker */
    uint64_t writes_loop, writes_worker; /* WRITEs done on the loop thread / by a worker */
    uint32_t worker_writes;              /* WRITEs now on a worker (none: the loop may write) */
    /* option being handled */
    struct nbd_opt_header oh;
    struct workq_job opt_job;
    uint8_t *opt_data;
    struct rbuf opt_reply;
    enum { OPT_NEXT, OPT_ENTER_TX, OPT_CLOSE, OPT_STARTTLS } opt_outcome;
    /* metadata contexts selected for meta_export */
    char meta_export[DSL_NAME_MAX + 1];
    bool meta_set;
    struct meta_ctx meta[NBD_SRV_MAX_META];
    uint32_t nmeta;
    /* transmission */
    struct export_info ex;
    struct export_user user;
    bool registered;
    struct zvol *zv;
    struct srv_pool *sp;
    struct nbd_export_facts facts;
    struct nbd_request cur;     /* WRITE whose payload is awaited */
    struct nbd_payload payload; /* its bytes so far (plain sockets: read straight from the fd) */
    struct nbd_session *prev, *next;
};

/* A transmission request on its way through a worker. */
/* READ data lent by the volume, sent by reference; freed when the last piece has been sent. */
struct piece_batch {
    unsigned refs; /* pieces still referenced by the output buffer (loop thread) */
    size_t n;
    struct obj_piece p[];
};

struct nbd_req {
    struct workq_job job;
    struct nbd_session *s;
    struct nbd_request r;
    struct nbd_payload pl;      /* WRITE payload (in) */
    struct piece_batch *pieces; /* READ data (out) */
    uint32_t werr;              /* wire error (0 = success) */
    struct rbuf reply;          /* BLOCK_STATUS chunks */
};

/* nbd_ops.c: option work (worker) and transmission work (worker). */
void nbd_opt_work(struct workq_job *job);
void nbd_req_work(struct workq_job *job);
/* The transmission flags advertised for an export. */
uint16_t nbd_tflags(const struct nbd_session *s, bool readonly);

#endif
