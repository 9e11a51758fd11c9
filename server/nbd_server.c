/* SPDX-License-Identifier: MIT */
/*
 * nbd_server: listeners, and each session's state machine on the loop thread (the states and
 * invariants are in nbd_session.h; the work runs in nbd_ops.c on workers).
 */
#include "server/nbd_server.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "common/err.h"
#include "common/log.h"
#include "core/zvol.h"
#include "server/nbd_session.h"
#include "server/srv.h"
#include "server/tls.h"

struct nbd_server {
    struct srv *srv;
    struct evconnlistener *listeners[16];
    size_t nlisteners;
    char *unix_path;
    SSL_CTX *tls; /* NULL when TLS is off */
    /* Sessions live on several loops (srv_loop.c): the list and the count are under lock. A
     * connection counts from its accept (on the main loop) to its session's release. */
    pthread_mutex_t lock;
    struct nbd_session *sessions;
    unsigned nsessions;
    bool shutting_down; /* set on the main loop, read on any (atomic) */
};

/* Kills the sessions of one loop (nbd_server_shutdown), run on that loop. */
struct loop_kill {
    struct nbd_server *ns;
    struct srv_loop *loop;
};

static void on_read(struct bufferevent *bev, void *arg);
static void on_write(struct bufferevent *bev, void *arg);
static void on_event(struct bufferevent *bev, short what, void *arg);
static void pump(struct nbd_session *s);

/* ---- session lifetime ------------------------------------------------------------------------ */

static void
session_free(struct nbd_session *s)
{
    struct nbd_server *ns = s->ns;
    pthread_mutex_lock(&ns->lock);
    if (s->prev)
        s->prev->next = s->next;
    else
        ns->sessions = s->next;
    if (s->next)
        s->next->prev = s->prev;
    ns->nsessions--;
    pthread_mutex_unlock(&ns->lock);
    if (s->registered)
        exports_unregister(s->srv, &s->user);
    zvol_close(s->zv);
    if (s->sp != NULL)
        srv_pool_unpin(s->srv, s->sp);
    if (s->deadline != NULL)
        event_free(s->deadline);
    if (s->bev != NULL)
        bufferevent_free(s->bev);
    free(s->opt_data);
    nbd_payload_free(&s->payload);
    free(s->opt_reply.p);
    log_debug(
        "nbd %s: closed (reads: %llu on the loop thread, %llu on workers; writes: %llu, %llu)",
        s->peer, (unsigned long long)s->reads_loop, (unsigned long long)s->reads_worker,
        (unsigned long long)s->writes_loop, (unsigned long long)s->writes_worker);
    free(s);
}

static void
reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    session_free(arg);
}

/* A dead session is freed once nothing is in flight and its replies are out — from a fresh
 * loop callback, never under the caller (who may still be looking at the session). */
static void
session_maybe_free(struct nbd_session *s)
{
    if (s->state != S_DEAD || s->inflight > 0 || s->free_scheduled)
        return;
    if (!s->peer_gone && s->bev != NULL && evbuffer_get_length(bufferevent_get_output(s->bev)) > 0)
        return; /* on_write calls again when drained */
    s->free_scheduled = true;
    if (event_base_once(s->loop->base, -1, EV_TIMEOUT, reap, s, &(struct timeval){ 0, 0 }) != 0)
        log_err("nbd %s: cannot schedule the session's release (leaked)", s->peer);
}

/* Stops reading; the session is freed once nothing is in flight and replies are sent. */
static void
session_kill(struct nbd_session *s, const char *why)
{
    if (s->state != S_DEAD && why != NULL)
        log_info("nbd %s: disconnecting: %s", s->peer, why);
    s->state = S_DEAD;
    if (s->bev != NULL)
        bufferevent_disable(s->bev, EV_READ);
    session_maybe_free(s);
}

static void
kick_session(struct export_user *u)
{
    struct nbd_session *s = (struct nbd_session *)((char *)u - offsetof(struct nbd_session, user));
    session_kill(s, "forced off by an admin operation");
}

static void
send_bytes(struct nbd_session *s, const void *p, size_t len)
{
    if (s->bev != NULL && len > 0 && !s->peer_gone)
        evbuffer_add(bufferevent_get_output(s->bev), p, len);
}

/* Backpressure: stop reading while too much is in flight or queued for the client. */
static void
flow(struct nbd_session *s)
{
    if (s->state == S_DEAD || s->bev == NULL)
        return;
    /* Replies queued, and the data of reads still running (each may hold 32 MiB). */
    size_t queued = evbuffer_get_length(bufferevent_get_output(s->bev)) + s->reading_bytes;
    bool pause = s->inflight >= NBD_SRV_MAX_INFLIGHT || queued >= NBD_SRV_MAX_BUFFERED;
    if (pause && !s->read_paused) {
        bufferevent_disable(s->bev, EV_READ);
        s->read_paused = true;
    } else if (!pause && s->read_paused) {
        s->read_paused = false;
        bufferevent_enable(s->bev, EV_READ);
        pump(s);
    }
}

/* ---- options ------------------------------------------------------------------------------- */

static void
opt_reply_error(struct nbd_session *s, uint32_t type, const char *msg)
{
    uint8_t buf[NBD_REP_HEADER_LEN + 128];
    size_t l = strlen(msg);
    if (l > 128)
        l = 128;
    int n = nbd_rep_error_encode(buf, sizeof(buf), s->oh.opt, type, msg, l);
    if (n > 0)
        send_bytes(s, buf, (size_t)n);
}

static void
enter_tx(struct nbd_session *s)
{
    s->state = S_TX_HDR;
    snprintf(s->user.volume, sizeof(s->user.volume), "%s", s->ex.volume);
    s->user.kick = kick_session;
    s->user.base = s->loop->base;
    exports_register(s->srv, &s->user);
    s->registered = true;
    /* Transmission: idle clients are fine (no deadline). */
    bufferevent_set_timeouts(s->bev, NULL, NULL);
    if (s->deadline != NULL)
        evtimer_del(s->deadline);
    log_info("nbd %s: serving '%s' (%s%s%s)", s->peer, s->ex.volume,
             s->ex.readonly ? "read-only" : "read-write", s->structured ? ", structured" : "",
             s->tls_active ? ", TLS" : "");
}

static void
opt_done(struct workq_job *job)
{
    struct nbd_session *s =
        (struct nbd_session *)((char *)job - offsetof(struct nbd_session, opt_job));
    s->inflight--;
    free(s->opt_data);
    s->opt_data = NULL;
    if (s->state == S_DEAD) {
        session_kill(s, NULL);
        return;
    }
    if (s->opt_reply.err != 0) {
        session_kill(s, "out of memory building an option reply");
        return;
    }
    send_bytes(s, s->opt_reply.p, s->opt_reply.len);
    s->opt_reply.len = 0;
    switch (s->opt_outcome) {
    case OPT_CLOSE:
        session_kill(s, "export refused");
        return;
    case OPT_ENTER_TX:
        enter_tx(s);
        break;
    default:
        s->state = S_OPT_HDR;
    }
    pump(s);
}

static void
tls_upgrade(struct nbd_session *s)
{
    SSL *ssl = SSL_new(s->ns->tls);
    struct bufferevent *tb =
        ssl ? bufferevent_openssl_filter_new(s->loop->base, s->bev, ssl, BUFFEREVENT_SSL_ACCEPTING,
                                             BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS)
            : NULL;
    if (tb == NULL) {
        if (ssl)
            SSL_free(ssl);
        session_kill(s, "cannot start TLS");
        return;
    }
    s->bev = tb;
    s->state = S_TLS;
    bufferevent_setcb(tb, on_read, on_write, on_event, s);
    bufferevent_enable(tb, EV_READ | EV_WRITE);
    struct timeval tv = { NBD_SRV_HANDSHAKE_SECS, 0 };
    bufferevent_set_timeouts(tb, &tv, NULL);
}

/* An option header and payload are in: handle the cheap ones here, the rest on a worker. */
static void
handle_option(struct nbd_session *s)
{
    uint32_t opt = s->oh.opt;
    enum config_tls mode = s->srv->cfg->nbd.tls;
    if (opt == NBD_OPT_ABORT) {
        uint8_t buf[NBD_REP_HEADER_LEN];
        int n = nbd_rep_ack_encode(buf, sizeof(buf), opt);
        send_bytes(s, buf, (size_t)n);
        session_kill(s, NULL);
        return;
    }
    if (opt == NBD_OPT_STARTTLS) {
        if (s->oh.len != 0)
            opt_reply_error(s, NBD_REP_ERR_INVALID, "STARTTLS takes no data");
        else if (s->tls_active)
            opt_reply_error(s, NBD_REP_ERR_INVALID, "TLS is already active");
        else if (s->ns->tls == NULL)
            opt_reply_error(s, NBD_REP_ERR_POLICY, "TLS is not configured on this server");
        else {
            uint8_t buf[NBD_REP_HEADER_LEN];
            int n = nbd_rep_ack_encode(buf, sizeof(buf), opt);
            send_bytes(s, buf, (size_t)n);
            tls_upgrade(s);
            return;
        }
        s->state = S_OPT_HDR;
        return;
    }
    if (mode == CONFIG_TLS_REQUIRE && !s->tls_active) {
        if (opt == NBD_OPT_EXPORT_NAME) {
            session_kill(s, "plaintext EXPORT_NAME refused: TLS is required");
            return;
        }
        opt_reply_error(s, NBD_REP_ERR_TLS_REQD, "TLS is required: use STARTTLS");
        s->state = S_OPT_HDR;
        return;
    }
    s->state = S_OPT_BUSY;
    s->inflight++;
    s->opt_job.fn = nbd_opt_work;
    s->opt_job.done = opt_done;
    workq_submit(s->loop->wq, &s->opt_job);
}

/* ---- transmission -------------------------------------------------------------------------- */

static void
batch_release(struct piece_batch *b)
{
    for (size_t i = 0; i < b->n; i++)
        obj_piece_release(&b->p[i]);
    free(b);
}

static void
req_free(struct nbd_req *q)
{
    if (q->pieces != NULL)
        batch_release(q->pieces);
    nbd_payload_free(&q->pl);
    free(q->reply.p);
    free(q);
}

/* evbuffer cleanup of one sent piece: the batch goes when its last piece is out. */
static void
piece_sent(const void *data, size_t len, void *arg)
{
    (void)data;
    (void)len;
    struct piece_batch *b = arg;
    if (--b->refs == 0)
        batch_release(b);
}

static void
reply_error(struct nbd_session *s, const struct nbd_request *r, uint32_t err)
{
    uint8_t buf[64];
    int n;
    if (s->structured && r->type != NBD_CMD_FLUSH) {
        const char *msg = nbd_wire_err_name(err);
        n = nbd_chunk_error_encode(buf, sizeof(buf), NBD_REPLY_FLAG_DONE, r->cookie, err, msg,
                                   strlen(msg));
    } else {
        n = nbd_simple_reply_encode(buf, sizeof(buf), err, r->cookie);
    }
    if (n > 0)
        send_bytes(s, buf, (size_t)n);
}

/* The reply to a request that succeeded with nothing to return. */
static void
reply_ok(struct nbd_session *s, const struct nbd_request *r)
{
    uint8_t hdr[NBD_CHUNK_HEADER_LEN];
    int n = s->structured ? nbd_chunk_none_encode(hdr, sizeof(hdr), r->cookie)
                          : nbd_simple_reply_encode(hdr, sizeof(hdr), 0, r->cookie);
    send_bytes(s, hdr, (size_t)n);
}

/* The reply to a READ whose data is in b (taken: released once sent). */
static void
send_read_reply(struct nbd_session *s, const struct nbd_request *r, struct piece_batch *b)
{
    uint8_t hdr[32];
    int n = s->structured && r->length > 0
                ? nbd_chunk_offset_data_encode(hdr, sizeof(hdr), NBD_REPLY_FLAG_DONE, r->cookie,
                                               r->offset, r->length)
                : nbd_simple_reply_encode(hdr, sizeof(hdr), 0, r->cookie);
    if (s->structured && r->length == 0)
        n = nbd_chunk_none_encode(hdr, sizeof(hdr), r->cookie);
    send_bytes(s, hdr, (size_t)n);
    if (b == NULL)
        return;
    if (r->length == 0 || s->bev == NULL || n <= 0) {
        batch_release(b);
        return;
    }
    /* Each piece goes out by reference: no copy of the cached data. */
    struct evbuffer *out = bufferevent_get_output(s->bev);
    b->refs = (unsigned)b->n + 1;
    for (size_t i = 0; i < b->n; i++)
        if (evbuffer_add_reference(out, b->p[i].data, b->p[i].len, piece_sent, b) != 0)
            b->refs--; /* only on ENOMEM; the stream is then short and the client sees a
                          protocol error */
    if (--b->refs == 0)
        batch_release(b);
}

/*
 * A READ served on the loop thread when everything it needs is in memory (cache hits, no busy
 * lock): no hand-off to a worker and back. Returns false when a worker must do it.
 */
static bool
read_fast(struct nbd_session *s, const struct nbd_request *r)
{
    size_t max = r->length / zvol_blocksize(s->zv) + 2;
    if (r->length == 0 || max > 256)
        return false; /* large reads are worth a worker anyway */
    struct piece_batch *b = calloc(1, sizeof(*b) + max * sizeof(b->p[0]));
    if (b == NULL)
        return false;
    if (zvol_read_pieces_nowait(s->zv, r->offset, r->length, b->p, max, &b->n) != 0) {
        free(b);
        return false;
    }
    send_read_reply(s, r, b);
    return true;
}

static void
req_done(struct workq_job *job)
{
    struct nbd_req *q = (struct nbd_req *)job;
    struct nbd_session *s = q->s;
    const struct nbd_request *r = &q->r;
    s->inflight--;
    if (r->type == NBD_CMD_READ)
        s->reading_bytes -= r->length;
    if (r->type == NBD_CMD_WRITE)
        s->worker_writes--;
    if (!s->peer_gone) {
        if (q->werr != 0) {
            reply_error(s, r, q->werr);
        } else if (r->type == NBD_CMD_READ) {
            send_read_reply(s, r, q->pieces);
            q->pieces = NULL;
        } else if (r->type == NBD_CMD_BLOCK_STATUS) {
            send_bytes(s, q->reply.p, q->reply.len);
        } else {
            reply_ok(s, r);
        }
    }
    req_free(q);
    if (s->state == S_DEAD) {
        session_kill(s, NULL);
        return;
    }
    flow(s);
}

static void
submit_request(struct nbd_session *s, struct nbd_req *q)
{
    s->inflight++;
    if (q->r.type == NBD_CMD_READ)
        s->reading_bytes += q->r.length;
    q->s = s;
    q->job.fn = nbd_req_work;
    q->job.done = req_done;
    workq_submit(s->loop->wq, &q->job);
    flow(s);
}

/*
 * A WRITE done on the loop thread when it can be without waiting (zvol_write_blocks with
 * ZVOL_NOWAIT: whole blocks, no busy lock, below the write throttle): the blocks received are
 * adopted as they are, and the reply goes out at once, with no hand-off to a worker and back.
 * Returns false, the payload untouched, when a worker must do it.
 */
static bool
write_fast(struct nbd_session *s, const struct nbd_request *r, struct nbd_payload *pl)
{
    /* Not past a WRITE a worker still has: a later write to the same blocks would land first.
     * (NBD lets a server reorder requests in flight, but clients are better served in order.) */
    if (s->worker_writes > 0)
        return false;
    unsigned flags = ZVOL_NOWAIT | ((r->flags & NBD_CMD_FLAG_FUA) ? ZVOL_FUA : 0);
    int rc = nbd_payload_write(pl, s->zv, r->offset, flags);
    if (rc == -EWOULDBLOCK)
        return false;
    nbd_payload_free(pl);
    if (rc != 0 && rc != -ENOSPC && rc != -EDQUOT)
        log_warn("nbd %s: WRITE at %llu+%u on '%s': %s", s->peer, (unsigned long long)r->offset,
                 r->length, s->ex.volume, err_str(rc));
    if (rc != 0)
        reply_error(s, r, nbd_errno_to_wire(rc));
    else
        reply_ok(s, r);
    return true;
}

/* A request header (and WRITE payload, taken) is in. */
static void
handle_request(struct nbd_session *s, const struct nbd_request *r, struct nbd_payload *pl)
{
    struct nbd_payload none = { 0 };
    if (pl == NULL)
        pl = &none;
    if (r->type == NBD_CMD_DISC) {
        nbd_payload_free(pl);
        session_kill(s, NULL); /* replies to requests in flight still go out */
        return;
    }
    uint32_t err = nbd_request_check(r, &s->facts);
    if (err != 0) {
        nbd_payload_free(pl);
        log_debug("nbd %s: %s refused: %s", s->peer, nbd_cmd_name(r->type), nbd_wire_err_name(err));
        reply_error(s, r, err);
        return;
    }
    if (r->type == NBD_CMD_READ && !s->peer_gone && read_fast(s, r)) {
        s->reads_loop++;
        flow(s);
        return;
    }
    if (r->type == NBD_CMD_WRITE && write_fast(s, r, pl)) {
        s->writes_loop++;
        flow(s);
        return;
    }
    struct nbd_req *q = calloc(1, sizeof(*q));
    if (q == NULL) {
        nbd_payload_free(pl);
        reply_error(s, r, NBD_ENOMEM);
        return;
    }
    if (r->type == NBD_CMD_READ)
        s->reads_worker++;
    if (r->type == NBD_CMD_WRITE) {
        s->writes_worker++;
        s->worker_writes++;
    }
    q->r = *r;
    q->pl = *pl; /* moved */
    *pl = (struct nbd_payload){ 0 };
    submit_request(s, q);
}

/* ---- the read state machine ---------------------------------------------------------------- */

/* Fills the WRITE payload of a plain (non-TLS) session (nbd_payload_fill). Returns true once it
 * is complete; false to wait for more bytes (or when the session died). */
static bool
payload_fill(struct nbd_session *s, struct evbuffer *in)
{
    int rc = nbd_payload_fill(&s->payload, in, bufferevent_getfd(s->bev));
    if (rc == -ENOMEM) {
        session_kill(s, "out of memory");
    } else if (rc < 0) {
        s->peer_gone = true;
        session_kill(s, "the client went away in the middle of a request");
    }
    return rc > 0;
}

static void
pump(struct nbd_session *s)
{
    while (s->bev != NULL && !s->read_paused) {
        struct evbuffer *in = bufferevent_get_input(s->bev);
        size_t avail = evbuffer_get_length(in);
        switch (s->state) {
        case S_FLAGS: {
            if (avail < NBD_CLIENT_FLAGS_LEN)
                return;
            uint8_t b[NBD_CLIENT_FLAGS_LEN];
            evbuffer_remove(in, b, sizeof(b));
            uint32_t cflags;
            if (nbd_client_flags_decode(b, sizeof(b), &cflags) != 0) {
                session_kill(s, "unknown client flags");
                return;
            }
            s->no_zeroes = (cflags & NBD_FLAG_C_NO_ZEROES) != 0;
            s->state = S_OPT_HDR;
            break;
        }
        case S_OPT_HDR: {
            if (avail < NBD_OPT_HEADER_LEN)
                return;
            uint8_t b[NBD_OPT_HEADER_LEN];
            evbuffer_remove(in, b, sizeof(b));
            int rc = nbd_opt_header_decode(b, sizeof(b), NBD_SRV_OPT_MAX, &s->oh);
            if (rc == -EPROTO) {
                session_kill(s, "bad option magic");
                return;
            }
            if (rc == -E2BIG) {
                if (s->oh.opt == NBD_OPT_EXPORT_NAME) {
                    session_kill(s, "export name too long");
                    return;
                }
                s->state = S_OPT_SKIP;
                break;
            }
            s->state = S_OPT_DATA;
            break;
        }
        case S_OPT_SKIP: {
            size_t n = avail < s->oh.len ? avail : s->oh.len;
            evbuffer_drain(in, n);
            s->oh.len -= (uint32_t)n;
            if (s->oh.len > 0)
                return;
            opt_reply_error(s, NBD_REP_ERR_TOO_BIG, "option too long");
            s->state = S_OPT_HDR;
            break;
        }
        case S_OPT_DATA: {
            if (avail < s->oh.len)
                return;
            free(s->opt_data);
            s->opt_data = malloc(s->oh.len ? s->oh.len : 1);
            if (s->opt_data == NULL) {
                session_kill(s, "out of memory");
                return;
            }
            evbuffer_remove(in, s->opt_data, s->oh.len);
            handle_option(s);
            if (s->state == S_OPT_BUSY || s->state == S_TLS || s->state == S_DEAD)
                return;
            break;
        }
        case S_TX_HDR: {
            if (avail < NBD_REQUEST_LEN)
                return;
            uint8_t b[NBD_REQUEST_LEN];
            evbuffer_remove(in, b, sizeof(b));
            if (nbd_request_decode(b, sizeof(b), &s->cur) != 0) {
                session_kill(s, "bad request magic");
                return;
            }
            uint32_t plen = nbd_request_payload_len(&s->cur);
            if (plen > NBD_SRV_MAX_PAYLOAD) {
                session_kill(s, "write payload over the maximum");
                return;
            }
            if (plen == 0) {
                handle_request(s, &s->cur, NULL);
                if (s->state == S_DEAD)
                    return;
                break;
            }
            if (nbd_payload_init(&s->payload, s->zv, s->cur.offset, plen) != 0) {
                session_kill(s, "out of memory");
                return;
            }
            s->state = S_TX_DATA;
            break;
        }
        case S_TX_DATA: {
            if (!s->tls_active) {
                if (!payload_fill(s, in))
                    return;
            } else {
                uint32_t rest = s->payload.len - s->payload.got;
                if (avail < rest) {
                    /* Ask libevent for the rest at once instead of trickling callbacks. */
                    bufferevent_setwatermark(s->bev, EV_READ, rest, 0);
                    return;
                }
                bufferevent_setwatermark(s->bev, EV_READ, 0, 0);
                if (nbd_payload_take(&s->payload, in) != 0) {
                    session_kill(s, "out of memory");
                    return;
                }
            }
            struct nbd_payload pl = s->payload;
            s->payload = (struct nbd_payload){ 0 };
            s->state = S_TX_HDR;
            handle_request(s, &s->cur, &pl);
            if (s->state == S_DEAD)
                return;
            break;
        }
        default:
            return; /* OPT_BUSY, TLS, DEAD: input waits */
        }
    }
}

static void
on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    pump(arg);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct nbd_session *s = arg;
    if (s->state == S_DEAD) {
        session_maybe_free(s);
        return;
    }
    flow(s);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct nbd_session *s = arg;
    if (what & BEV_EVENT_CONNECTED) { /* TLS handshake done */
        if (s->state == S_TLS) {
            s->tls_active = true;
            s->state = S_OPT_HDR;
            log_debug("nbd %s: TLS established", s->peer);
            pump(s);
        }
        return;
    }
    const char *why = (what & BEV_EVENT_TIMEOUT) ? "negotiation timed out"
                      : (what & BEV_EVENT_EOF)   ? NULL
                                                 : "connection error";
    if ((what & BEV_EVENT_EOF) && s->bev != NULL &&
        (s->inflight > 0 || s->state == S_TX_DATA || s->state == S_OPT_DATA ||
         evbuffer_get_length(bufferevent_get_input(s->bev)) > 0))
        why = "the client went away in the middle of a request";
    if ((what & BEV_EVENT_ERROR) && s->state == S_TLS) {
        unsigned long e = bufferevent_get_openssl_error(s->bev);
        char msg[160];
        ERR_error_string_n(e, msg, sizeof(msg));
        log_info("nbd %s: TLS handshake failed: %s", s->peer, e ? msg : "peer closed");
        why = NULL;
    }
    s->peer_gone = true; /* nothing more can be sent */
    session_kill(s, why);
}

/* ---- listeners ----------------------------------------------------------------------------- */

static void
peer_name(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%u", host, ntohs(in->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in->sin6_addr, host, sizeof(host));
        snprintf(buf, len, "[%s]:%u", host, ntohs(in->sin6_port));
    } else {
        snprintf(buf, len, "unix");
    }
}

/* The whole negotiation must finish in time, however slowly the bytes trickle in. */
static void
on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct nbd_session *s = arg;
    if (s->state != S_TX_HDR && s->state != S_TX_DATA && s->state != S_DEAD)
        session_kill(s, "negotiation did not finish in time");
}

/* Gives a connection that will not become a session back (its count included). */
static void
drop_connection(struct nbd_server *ns, evutil_socket_t fd)
{
    evutil_closesocket(fd);
    pthread_mutex_lock(&ns->lock);
    ns->nsessions--;
    pthread_mutex_unlock(&ns->lock);
}

/* Starts the session of an accepted connection, on its loop's thread (invariant 1, srv_loop.c). */
static void
session_start(struct nbd_server *ns, struct srv_loop *loop, evutil_socket_t fd,
              const struct sockaddr *sa)
{
    if (__atomic_load_n(&ns->shutting_down, __ATOMIC_ACQUIRE)) {
        drop_connection(ns, fd); /* handed over while the server began to stop */
        return;
    }
    if (sa->sa_family != AF_UNIX) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    /* A send buffer that holds several 1 MiB replies: the loop thread writes them in fewer,
     * larger calls and is woken less often (the default is ~200 KiB for a unix socket, and TCP
     * autotuning starts small). The kernel caps it at net.core.wmem_max; a failure is harmless. */
    int sndbuf = NBD_SRV_SNDBUF;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
    struct nbd_session *s = calloc(1, sizeof(*s));
    struct bufferevent *bev =
        bufferevent_socket_new(loop->base, fd, BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS);
    if (s == NULL || bev == NULL) {
        free(s);
        if (bev) {
            bufferevent_free(bev); /* closes fd */
            fd = -1;
        }
        if (fd >= 0)
            evutil_closesocket(fd);
        pthread_mutex_lock(&ns->lock);
        ns->nsessions--;
        pthread_mutex_unlock(&ns->lock);
        return;
    }
    s->ns = ns;
    s->srv = ns->srv;
    s->loop = loop;
    s->bev = bev;
    s->state = S_FLAGS;
    peer_name(sa, s->peer, sizeof(s->peer));
    pthread_mutex_lock(&ns->lock);
    s->next = ns->sessions;
    if (ns->sessions)
        ns->sessions->prev = s;
    ns->sessions = s;
    pthread_mutex_unlock(&ns->lock);
    bufferevent_setcb(bev, on_read, on_write, on_event, s);
    /* libevent writes at most 16 KiB per call by default: 64 system calls (and as many
     * wake-ups of the peer) per 1 MiB READ reply. (Its reads stay at 4 KiB whatever this says:
     * WRITE payloads are read by payload_fill.) */
    bufferevent_set_max_single_read(bev, NBD_SRV_IO_CHUNK);
    bufferevent_set_max_single_write(bev, NBD_SRV_IO_CHUNK);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    struct timeval tv = { NBD_SRV_HANDSHAKE_SECS, 0 };
    bufferevent_set_timeouts(bev, &tv, NULL);
    s->deadline = evtimer_new(loop->base, on_deadline, s);
    if (s->deadline == NULL || evtimer_add(s->deadline, &tv) != 0) {
        session_kill(s, "cannot arm the negotiation deadline");
        return;
    }
    uint8_t greet[NBD_GREETING_LEN];
    int n = nbd_greeting_encode(greet, sizeof(greet));
    send_bytes(s, greet, (size_t)n);
    log_debug("nbd %s: connected", s->peer);
}

/* A connection on its way from the main loop to another. */
struct handover {
    struct nbd_server *ns;
    struct srv_loop *loop;
    evutil_socket_t fd;
    struct sockaddr_storage peer;
};

static void
on_handover(evutil_socket_t unused, short what, void *arg)
{
    (void)unused;
    (void)what;
    struct handover *h = arg;
    session_start(h->ns, h->loop, h->fd, (const struct sockaddr *)&h->peer);
    free(h);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)l;
    struct nbd_server *ns = arg;
    pthread_mutex_lock(&ns->lock);
    bool full = ns->nsessions >= NBD_SRV_MAX_SESSIONS;
    if (!ns->shutting_down && !full)
        ns->nsessions++;
    pthread_mutex_unlock(&ns->lock);
    if (ns->shutting_down || full) {
        log_warn("nbd: refusing a connection: %s",
                 ns->shutting_down ? "shutting down" : "too many connections");
        evutil_closesocket(fd);
        return;
    }
    struct srv_loop *loop = srv_pick_loop(ns->srv);
    if (loop == &ns->srv->loops[0]) {
        session_start(ns, loop, fd, sa);
        return;
    }
    struct handover *h = calloc(1, sizeof(*h));
    if (h == NULL || salen < 0 || (size_t)salen > sizeof(h->peer)) {
        free(h);
        drop_connection(ns, fd);
        return;
    }
    *h = (struct handover){ .ns = ns, .loop = loop, .fd = fd };
    memcpy(&h->peer, sa, (size_t)salen);
    if (event_base_once(loop->base, -1, EV_TIMEOUT, on_handover, h, &(struct timeval){ 0, 0 }) !=
        0) {
        free(h);
        drop_connection(ns, fd);
    }
}

static int
add_listener(struct nbd_server *ns, struct sockaddr *sa, socklen_t len, const char *what,
             struct err_msg *em)
{
    if (ns->nlisteners == sizeof(ns->listeners) / sizeof(ns->listeners[0]))
        return err_msg_set(em, -ENOSPC, "too many NBD listeners");
    struct evconnlistener *l = evconnlistener_new_bind(
        ns->srv->base, on_accept, ns,
        LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE, 128, sa, (int)len);
    if (l == NULL)
        return err_msg_set(em, -errno, "cannot listen on %s: %s", what, strerror(errno));
    ns->listeners[ns->nlisteners++] = l;
    log_info("nbd: listening on %s", what);
    return 0;
}

struct nbd_server *
nbd_server_start(struct srv *s, struct err_msg *em)
{
    const struct lcpfs_config *cfg = s->cfg;
    struct nbd_server *ns = calloc(1, sizeof(*ns));
    if (ns == NULL) {
        err_msg_set(em, -ENOMEM, "out of memory");
        return NULL;
    }
    ns->srv = s;
    pthread_mutex_init(&ns->lock, NULL);
    int rc = 0;
    if (cfg->nbd.tls != CONFIG_TLS_OFF) {
        ns->tls = tls_server_ctx(cfg, em);
        if (ns->tls == NULL)
            rc = -EINVAL;
    }
    for (size_t i = 0; rc == 0 && i < cfg->nbd.nlisten; i++) {
        const struct config_addr *a = &cfg->nbd.listen[i];
        struct addrinfo hints = { .ai_family = a->family,
                                  .ai_socktype = SOCK_STREAM,
                                  .ai_flags = AI_PASSIVE | AI_NUMERICSERV };
        struct addrinfo *res = NULL;
        char port[8], what[300];
        snprintf(port, sizeof(port), "%u", a->port);
        config_format_addr(a, what, sizeof(what));
        int g = getaddrinfo(a->host, port, &hints, &res);
        if (g != 0) {
            rc = err_msg_set(em, -EINVAL, "cannot resolve listen address %s: %s", what,
                             gai_strerror(g));
            break;
        }
        rc = add_listener(ns, res->ai_addr, res->ai_addrlen, what, em);
        freeaddrinfo(res);
    }
    if (rc == 0 && cfg->nbd.unix_socket != NULL) {
        struct sockaddr_un sun = { .sun_family = AF_UNIX };
        snprintf(sun.sun_path, sizeof(sun.sun_path), "%s", cfg->nbd.unix_socket);
        unlink(sun.sun_path);
        char what[sizeof(sun.sun_path) + 8];
        snprintf(what, sizeof(what), "unix:%s", sun.sun_path);
        rc = add_listener(ns, (struct sockaddr *)&sun, sizeof(sun), what, em);
        if (rc == 0)
            ns->unix_path = strdup(sun.sun_path);
    }
    if (rc != 0) {
        nbd_server_shutdown(ns);
        nbd_server_free(ns);
        return NULL;
    }
    return ns;
}

/* Kills one loop's sessions, on that loop (a session is touched only there). */
static void
kill_loop_sessions(evutil_socket_t unused, short what, void *arg)
{
    (void)unused;
    (void)what;
    struct loop_kill *k = arg;
    struct nbd_server *ns = k->ns;
    /* session_kill never frees (release is a later callback), so the list is stable here. */
    pthread_mutex_lock(&ns->lock);
    for (struct nbd_session *s = ns->sessions; s != NULL; s = s->next)
        if (s->loop == k->loop)
            session_kill(s, NULL);
    pthread_mutex_unlock(&ns->lock);
    free(k);
}

void
nbd_server_shutdown(struct nbd_server *ns)
{
    pthread_mutex_lock(&ns->lock);
    __atomic_store_n(&ns->shutting_down, true, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&ns->lock);
    for (size_t i = 0; i < ns->nlisteners; i++)
        evconnlistener_free(ns->listeners[i]);
    ns->nlisteners = 0;
    if (ns->unix_path != NULL)
        unlink(ns->unix_path);
    struct srv *srv = ns->srv;
    for (unsigned i = 0; i < srv->nloops; i++) {
        struct loop_kill *k = malloc(sizeof(*k));
        if (k == NULL) {
            log_err("nbd: out of memory stopping the sessions of loop %u", i);
            continue;
        }
        *k = (struct loop_kill){ .ns = ns, .loop = &srv->loops[i] };
        if (i == 0)
            kill_loop_sessions(-1, 0, k); /* this is the main loop */
        else if (event_base_once(k->loop->base, -1, EV_TIMEOUT, kill_loop_sessions, k,
                                 &(struct timeval){ 0, 0 }) != 0)
            free(k);
    }
}

unsigned
nbd_server_sessions(struct nbd_server *ns)
{
    pthread_mutex_lock(&ns->lock);
    unsigned n = ns->nsessions;
    pthread_mutex_unlock(&ns->lock);
    return n;
}

void
nbd_server_free(struct nbd_server *ns)
{
    if (ns == NULL)
        return;
    while (ns->sessions != NULL) /* only when the loop has stopped: no reap is pending */
        session_free(ns->sessions);
    if (ns->tls != NULL)
        SSL_CTX_free(ns->tls);
    pthread_mutex_destroy(&ns->lock);
    free(ns->unix_path);
    free(ns);
}
