/* SPDX-License-Identifier: MIT */
/*
 * admin: the daemon's admin API on a unix socket, used by the `lcpfs` CLI.
 *
 * Wire format: newline-delimited JSON. Each request is one line
 *   {"verb": "create", "args": {"name": "tank/vm1", "volume": true, "props": {"volsize": "4G"}}}
 * and gets exactly one response line, in order:
 *   {"ok": true, "result": ...}           or
 *   {"ok": false, "errno": 17, "error": "dataset 'tank/vm1' already exists"}
 * A connection may send many requests; they run one at a time on a worker thread (verbs block
 * until their change is durable). Requests are at most ADMIN_LINE_MAX bytes; a longer line, or
 * one that is not a JSON object, gets an error response and the connection is closed.
 *
 * The socket is created with mode 0600 in the data folder: whoever can open it administers the
 * daemon (like the ZFS device node).
 */
#ifndef LCPFS_SERVER_ADMIN_H
#define LCPFS_SERVER_ADMIN_H

#include <jansson.h>

#include "common/err.h"

#define ADMIN_LINE_MAX (1u << 20)

struct srv;
struct admin;

/* Listens on path (replacing a stale socket). Returns NULL with a message in em. */
struct admin *admin_start(struct srv *s, const char *path, struct err_msg *em);
/* Stops listening and closes every connection. Call with no request running (after draining
 * the worker queue). NULL ok. */
void admin_stop(struct admin *a);

/* Runs one request (worker thread). *result is a new reference on success. */
int admin_dispatch(struct srv *s, json_t *req, json_t **result, struct err_msg *em);

/* admin_pool.c: pool verbs. */
int admin_pool_list(struct srv *s, json_t *args, json_t **result, struct err_msg *em);
int admin_pool_status(struct srv *s, json_t *args, json_t **result, struct err_msg *em);
int admin_pool_create(struct srv *s, json_t *args, json_t **result, struct err_msg *em);
int admin_pool_import(struct srv *s, json_t *args, json_t **result, struct err_msg *em);
int admin_pool_export(struct srv *s, json_t *args, json_t **result, struct err_msg *em);
int admin_pool_add(struct srv *s, json_t *args, json_t **result, struct err_msg *em);
/* Starts ({name}) or cancels ({name, stop: true}) a background scrub; returns at once. */
int admin_pool_scrub(struct srv *s, json_t *args, json_t **result, struct err_msg *em);
/* {name, device}: device is a path or a decimal guid. online and replace ({name, device, new})
 * start a background resilver and return {"resilver": true}. clear: {name, device?}. */
int admin_pool_offline(struct srv *s, json_t *args, json_t **result, struct err_msg *em);
int admin_pool_online(struct srv *s, json_t *args, json_t **result, struct err_msg *em);
int admin_pool_replace(struct srv *s, json_t *args, json_t **result, struct err_msg *em);
int admin_pool_clear(struct srv *s, json_t *args, json_t **result, struct err_msg *em);
int admin_pool_attach(struct srv *s, json_t *args, json_t **result, struct err_msg *em);
int admin_pool_detach(struct srv *s, json_t *args, json_t **result, struct err_msg *em);

/* exports.c: the NBD export table as the admin API sees it. */
int admin_exports_list(struct srv *s, json_t *args, json_t **result, struct err_msg *em);
/* -EBUSY when dataset `name` (or a dataset below it) is exported or in use by a client and
 * force is not set; with force, disconnects those clients first. */
int admin_export_guard(struct srv *s, const char *name, bool force, struct err_msg *em);

#endif
