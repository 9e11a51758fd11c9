/* SPDX-License-Identifier: MIT */
/*
 * admin: the admin socket — connections, line framing, one request at a time per connection on
 * a worker (the protocol is in admin.h; the verbs in admin_verbs.c and admin_pool.c).
 *
 * Connection states: idle (reading) -> busy (a request runs on a worker; further input waits in
 * the buffer) -> idle. A peer that goes away while busy only marks the connection `closing`; it
 * is freed by the completion, which is the last thing that touches it.
 */
#include "server/admin.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "common/assert.h"
#include "common/log.h"
#include "server/srv.h"
#include "server/workq.h"

struct admin_conn {
    struct admin *a;
    struct bufferevent *bev;
    struct workq_job job;
    char *line;     /* request being run */
    char *response; /* its response line, set by the worker */
    bool busy, closing, close_after_write;
    struct admin_conn *prev, *next;
};

struct admin {
    struct srv *srv;
    struct evconnlistener *listener;
    char *path;
    struct admin_conn *conns;
};

static void
conn_free(struct admin_conn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->a->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    bufferevent_free(c->bev);
    free(c->line);
    free(c->response);
    free(c);
}

static char *
error_line(int rc, const char *msg)
{
    json_t *o = json_object();
    json_object_set_new(o, "ok", json_false());
    json_object_set_new(o, "errno", json_integer(-rc));
    json_object_set_new(o, "error", json_string(msg));
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* Worker: parse, dispatch, format. */
static void
run_request(struct workq_job *job)
{
    struct admin_conn *c = (struct admin_conn *)((char *)job - offsetof(struct admin_conn, job));
    json_error_t jerr;
    json_t *req = json_loads(c->line, 0, &jerr);
    struct err_msg em = { 0 };
    if (req == NULL || !json_is_object(req)) {
        c->response = error_line(-EINVAL, req ? "request is not a JSON object" : jerr.text);
        json_decref(req);
        return;
    }
    json_t *result = NULL;
    int rc = admin_dispatch(c->a->srv, req, &result, &em);
    if (rc != 0) {
        json_decref(result);
        c->response = error_line(rc, em.text);
    } else {
        json_t *o = json_object();
        json_object_set_new(o, "ok", json_true());
        json_object_set_new(o, "result", result ? result : json_null());
        c->response = json_dumps(o, JSON_COMPACT);
        json_decref(o);
    }
    json_decref(req);
}

static void process_input(struct admin_conn *c);

/* Loop: send the response, then the next request. */
static void
request_done(struct workq_job *job)
{
    struct admin_conn *c = (struct admin_conn *)((char *)job - offsetof(struct admin_conn, job));
    c->busy = false;
    free(c->line);
    c->line = NULL;
    if (c->closing) {
        conn_free(c);
        return;
    }
    const char *resp =
        c->response ? c->response : "{\"ok\":false,\"errno\":12,\"error\":\"out of memory\"}";
    struct evbuffer *out = bufferevent_get_output(c->bev);
    evbuffer_add(out, resp, strlen(resp));
    evbuffer_add(out, "\n", 1);
    free(c->response);
    c->response = NULL;
    process_input(c);
}

static void
process_input(struct admin_conn *c)
{
    if (c->busy || c->close_after_write)
        return;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t len;
    char *line = evbuffer_readln(in, &len, EVBUFFER_EOL_LF);
    if (line == NULL) {
        if (evbuffer_get_length(in) > ADMIN_LINE_MAX) {
            char *e = error_line(-E2BIG, "request line too long");
            struct evbuffer *out = bufferevent_get_output(c->bev);
            evbuffer_add(out, e, strlen(e));
            evbuffer_add(out, "\n", 1);
            free(e);
            c->close_after_write = true;
            bufferevent_disable(c->bev, EV_READ);
        }
        return;
    }
    if (len == 0) { /* blank line: ignore */
        free(line);
        process_input(c);
        return;
    }
    c->line = line;
    c->busy = true;
    c->job.fn = run_request;
    c->job.done = request_done;
    workq_submit(c->a->srv->wq, &c->job);
}

static void
on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    process_input(arg);
}

static void
on_write(struct bufferevent *bev, void *arg)
{
    struct admin_conn *c = arg;
    if (c->close_after_write && evbuffer_get_length(bufferevent_get_output(bev)) == 0)
        conn_free(c);
}

static void
on_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    struct admin_conn *c = arg;
    if (!(what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)))
        return;
    if (c->busy)
        c->closing = true; /* freed when the running request completes */
    else
        conn_free(c);
}

static void
on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int salen, void *arg)
{
    (void)l;
    (void)sa;
    (void)salen;
    struct admin *a = arg;
    struct admin_conn *c = calloc(1, sizeof(*c));
    struct bufferevent *bev = bufferevent_socket_new(a->srv->base, fd, BEV_OPT_CLOSE_ON_FREE);
    if (c == NULL || bev == NULL) {
        free(c);
        if (bev)
            bufferevent_free(bev);
        else
            evutil_closesocket(fd);
        return;
    }
    c->a = a;
    c->bev = bev;
    c->next = a->conns;
    if (a->conns)
        a->conns->prev = c;
    a->conns = c;
    bufferevent_setcb(bev, on_read, on_write, on_event, c);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}

struct admin *
admin_start(struct srv *s, const char *path, struct err_msg *em)
{
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (strlen(path) >= sizeof(sun.sun_path)) {
        err_msg_set(em, -ENAMETOOLONG, "admin socket path '%s' is too long", path);
        return NULL;
    }
    strcpy(sun.sun_path, path);
    struct admin *a = calloc(1, sizeof(*a));
    if (a == NULL || (a->path = strdup(path)) == NULL) {
        free(a);
        err_msg_set(em, -ENOMEM, "out of memory");
        return NULL;
    }
    a->srv = s;
    unlink(path); /* a stale socket of a previous run */
    mode_t old = umask(0077);
    a->listener = evconnlistener_new_bind(s->base, on_accept, a,
                                          LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, 16,
                                          (struct sockaddr *)&sun, sizeof(sun));
    umask(old);
    if (a->listener == NULL) {
        err_msg_set(em, -errno, "cannot listen on admin socket '%s': %s", path, strerror(errno));
        free(a->path);
        free(a);
        return NULL;
    }
    return a;
}

void
admin_stop(struct admin *a)
{
    if (a == NULL)
        return;
    evconnlistener_free(a->listener);
    unlink(a->path);
    while (a->conns != NULL) {
        ASSERT(!a->conns->busy); /* the daemon drains the worker queue first */
        conn_free(a->conns);
    }
    free(a->path);
    free(a);
}
