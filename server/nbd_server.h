/* SPDX-License-Identifier: MIT */
/*
 * nbd_server: NBD listeners (TCP and unix) and sessions — the fixed-newstyle handshake, option
 * haggling, STARTTLS, and transmission, driving the pure codec in proto/nbd.h and serving
 * volumes through core/zvol.h on worker threads.
 *
 * Limits that keep a hostile or broken client from hurting others: option payloads up to
 * NBD_SRV_OPT_MAX bytes (larger ones are skipped and refused), negotiation must finish within
 * NBD_SRV_HANDSHAKE_SECS, at most NBD_SRV_MAX_INFLIGHT requests and NBD_SRV_MAX_BUFFERED bytes of
 * replies per connection (reading pauses beyond that), requests up to NBD_SRV_MAX_PAYLOAD bytes,
 * and at most NBD_SRV_MAX_SESSIONS connections.
 */
#ifndef LCPFS_SERVER_NBD_SERVER_H
#define LCPFS_SERVER_NBD_SERVER_H

#include "common/err.h"

#define NBD_SRV_OPT_MAX        (64u * 1024)
#define NBD_SRV_HANDSHAKE_SECS 30
#define NBD_SRV_MAX_INFLIGHT   64
#define NBD_SRV_MAX_BUFFERED   (64u << 20)
#define NBD_SRV_MAX_PAYLOAD    (32u << 20)
#define NBD_SRV_MAX_SESSIONS   4096
#define NBD_SRV_IO_CHUNK       (4u << 20) /* bytes per socket write call, at most */
#define NBD_SRV_SNDBUF         (4 << 20)  /* SO_SNDBUF asked for each connection */
#define NBD_SRV_MAX_META       16         /* contexts one connection may select */

struct srv;
struct nbd_server;

/* Binds every configured listener and the unix socket. NULL with a message on failure. */
struct nbd_server *nbd_server_start(struct srv *s, struct err_msg *em);
/* Stops accepting; open sessions stop reading new requests, finish the ones in flight and
 * close. */
void nbd_server_shutdown(struct nbd_server *ns);
/* Number of connections accepted and not yet released (any thread). */
unsigned nbd_server_sessions(struct nbd_server *ns);
/* Frees the server; call when nbd_server_sessions() is 0. NULL ok. */
void nbd_server_free(struct nbd_server *ns);

#endif
