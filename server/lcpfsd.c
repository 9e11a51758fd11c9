/* SPDX-License-Identifier: MIT */
/*
 * lcpfsd: the daemon. Loads the configuration (or the embedded default), imports or creates the
 * configured pools and default volumes, starts the worker threads, the admin socket and the NBD
 * listeners, and runs the event loop.
 *
 * Signals: SIGTERM/SIGINT stop accepting, let sessions finish the requests in flight, drain the
 * workers, export every pool (a final commit) and exit 0. SIGHUP re-reads the configuration and
 * applies its export sections to new connections (pools and listeners need a restart; that is
 * logged). Configurations replaced by a reload stay allocated until exit, because workers may
 * still be reading them.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/thread.h>
#include <getopt.h>
#include <malloc.h>
#include <openssl/ssl.h>

#include "common/log.h"
#include "config/config.h"
#include "core/dsl.h"
#include "core/pool.h"
#include "server/admin.h"
#include "server/nbd_server.h"
#include "server/srv.h"
#include "server/workq.h"

struct daemon {
    struct srv srv;
    struct admin *admin;
    struct nbd_server *nbd;
    struct event *sig_term, *sig_int, *sig_hup, *drain_timer;
    const char *config_path;
    const char **overrides;
    size_t noverrides;
    struct lcpfs_config *retired[64];
    size_t nretired;
};

static void
usage(FILE *f)
{
    fprintf(f, "usage: lcpfsd [-c FILE] [-o section.key=value]... [--print-config]\n"
               "\n"
               "  -c, --config FILE       read FILE (default: the embedded configuration: a pool\n"
               "                          'tank' in ./lcpfs-data, volume tank/vol0 on NBD)\n"
               "  -o section.key=value    override one setting (repeatable; += appends to lists)\n"
               "      --print-config      print the effective configuration and exit\n"
               "  -h, --help              this help\n");
}

/* ---- pools --------------------------------------------------------------------------------- */

static bool
file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static int
open_pool(struct daemon *d, const struct config_pool *cp)
{
    struct err_msg em = { 0 };
    /* cp->vdevs is a layout in zpool's words ("mirror a b", "raidz2 a b c d"): pool_create
     * builds it, pool_import skips the keywords and finds the tree in the labels. */
    for (size_t i = 0; i < cp->nvdevs; i++)
        if (config_vdev_is_keyword(cp->vdevs[i]) && !pool_layout_is_keyword(cp->vdevs[i])) {
            log_err("pool '%s': '%s' vdevs are not supported yet", cp->name, cp->vdevs[i]);
            return -ENOTSUP;
        }
    size_t present = 0;
    for (size_t i = 0; i < cp->nvdevs; i++)
        present += file_exists(cp->vdevs[i]);
    enum vdev_direct direct = srv_vdev_direct(cp->direct_io);
    struct pool *p = NULL;
    int rc;
    if (present == 0 && cp->create_size > 0) {
        struct pool_opts po = { .create_files = true,
                                .create_size = cp->create_size,
                                .direct_io = direct };
        rc = pool_create(cp->name, (const char *const *)cp->vdevs, cp->nvdevs, &po, &p, &em);

    } else {
        struct pool_import_opts io = { .tuning.direct_io = direct };
        rc = pool_import((const char *const *)cp->vdevs, cp->nvdevs, &io, &p, &em);
        if (rc == 0 && strcmp(pool_name(p), cp->name) != 0) {
            log_err("pool '%s': the devices hold pool '%s'", cp->name, pool_name(p));
            pool_close(p);
            return -EINVAL;
        }
    }
    if (rc != 0) {
        log_err("pool '%s': %s", cp->name, em.text[0] ? em.text : err_str(rc));
        return rc;
    }
    rc = srv_pool_add(&d->srv, p, (const char *const *)cp->vdevs, cp->nvdevs);
    if (rc != 0) {
        log_err("pool '%s': %s", cp->name, err_str(rc));
        pool_close(p);
        return rc;
    }
    if (cp->default_volume != NULL) {
        char name[CONFIG_DATASET_NAME_MAX + 1], size[32];
        snprintf(name, sizeof(name), "%s/%s", cp->name, cp->default_volume);
        struct dsl_info in;
        if (dsl_stat(p, name, &in, &em) == -ENOENT) {
            snprintf(size, sizeof(size), "%llu", (unsigned long long)cp->default_volume_size);
            struct dsl_prop_set props[] = { { "volsize", size } };
            rc = dsl_create(p, name, DSL_KIND_VOL, props, 1, 0, &em);
            if (rc != 0) {
                log_err("cannot create default volume '%s': %s", name, em.text);
                return rc;
            }
            log_info("created volume '%s' (%llu MiB)", name,
                     (unsigned long long)(cp->default_volume_size >> 20));
        }
    }
    return 0;
}

static void
close_pools(struct srv *s)
{
    while (s->npools > 0) {
        struct err_msg em = { 0 };
        char name[POOL_NAME_MAX + 1];
        snprintf(name, sizeof(name), "%s", s->pools[s->npools - 1]->name);
        int rc = srv_pool_remove(s, name, s->pools[s->npools - 1]->users, &em);
        if (rc != 0)
            log_err("pool '%s': %s", name, em.text);
    }
}

/* ---- signals and shutdown ------------------------------------------------------------------ */

static void
check_drained(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct daemon *d = arg;
    unsigned pending = 0;
    for (unsigned i = 0; i < d->srv.nloops; i++)
        pending += workq_pending(d->srv.loops[i].wq);
    if (nbd_server_sessions(d->nbd) == 0 && pending == 0)
        event_base_loopbreak(d->srv.base);
}

static void
on_stop(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct daemon *d = arg;
    if (d->srv.stopping)
        return;
    log_info("%s: finishing requests in flight, then exporting pools",
             sig == SIGINT ? "SIGINT" : "SIGTERM");
    d->srv.stopping = true;
    nbd_server_shutdown(d->nbd);
    struct timeval tv = { 0, 20000 };
    d->drain_timer = event_new(d->srv.base, -1, EV_PERSIST, check_drained, d);
    event_add(d->drain_timer, &tv);
}

static void
on_hup(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct daemon *d = arg;
    struct lcpfs_config *cfg = calloc(1, sizeof(*cfg));
    struct config_errors errs;
    if (cfg == NULL || d->nretired == sizeof(d->retired) / sizeof(d->retired[0])) {
        log_err("SIGHUP: cannot reload the configuration (out of memory or too many reloads)");
        free(cfg);
        return;
    }
    int rc = config_load(cfg, d->config_path, d->overrides, d->noverrides, &errs);
    if (rc != 0) {
        log_err("SIGHUP: the configuration has errors; keeping the current one:");
        for (size_t i = 0; i < errs.n; i++)
            log_err("  %s", errs.msg[i]);
        config_errors_free(&errs);
        free(cfg);
        return;
    }
    config_errors_free(&errs);
    d->retired[d->nretired++] = d->srv.cfg;
    __atomic_store_n(&d->srv.cfg, cfg, __ATOMIC_RELEASE);
    log_info("SIGHUP: configuration reloaded: %zu export(s); pool and listener changes apply "
             "after a restart",
             cfg->nexports);
}

/* ---- main ---------------------------------------------------------------------------------- */

static int
load_config(struct daemon *d, struct lcpfs_config *cfg)
{
    struct config_errors errs;
    int rc = config_load(cfg, d->config_path, d->overrides, d->noverrides, &errs);
    if (rc != 0) {
        fprintf(stderr, "lcpfsd: the configuration has errors:\n");
        config_errors_print(&errs, stderr);
    }
    config_errors_free(&errs);
    return rc;
}

static void
print_connect_hint(const struct lcpfs_config *cfg, size_t npools)
{
    log_info("ready: %zu pool(s), %zu configured export(s)", npools, cfg->nexports);
    if (cfg->nexports == 0)
        return;
    const char *name = cfg->exports[0].name;
    if (cfg->nbd.nlisten > 0) {
        char addr[300];
        config_format_addr(&cfg->nbd.listen[0], addr, sizeof(addr));
        log_info("ready: connect with  nbdinfo nbd://%s/%s", addr, name);
    }
    if (cfg->nbd.unix_socket != NULL)
        log_info("ready: or over the unix socket:  nbdinfo 'nbd+unix:///%s?socket=%s'", name,
                 cfg->nbd.unix_socket);
    if (cfg->server.admin_socket != NULL)
        log_info("ready: administer with  lcpfs --socket %s list", cfg->server.admin_socket);
}

int
main(int argc, char **argv)
{
    static struct daemon d;
    static const struct option longopts[] = { { "config", required_argument, NULL, 'c' },
                                              { "print-config", no_argument, NULL, 'P' },
                                              { "help", no_argument, NULL, 'h' },
                                              { NULL, 0, NULL, 0 } };
    d.overrides = calloc((size_t)argc, sizeof(char *));
    bool print_config = false;
    int opt;
    while ((opt = getopt_long(argc, argv, "c:o:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            d.config_path = optarg;
            break;
        case 'o':
            d.overrides[d.noverrides++] = optarg;
            break;
        case 'P':
            print_config = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind != argc) {
        usage(stderr);
        return 2;
    }
    struct lcpfs_config *cfg = calloc(1, sizeof(*cfg));
    if (cfg == NULL || load_config(&d, cfg) != 0 || print_config) {
        int rc = cfg == NULL ? 2
                 : print_config && cfg->server.data_dir != NULL
                     ? (config_dump(cfg, stdout) == 0 ? 0 : 1)
                     : 2;
        config_free(cfg);
        free(cfg);
        free(d.overrides);
        return rc;
    }

    log_set_prefix("lcpfsd");
    log_set_level(cfg->server.log_level);
    if (cfg->server.log == CONFIG_LOG_SYSLOG)
        log_use_syslog(true);
    if (mkdir(cfg->server.data_dir, 0700) != 0 && errno != EEXIST) {
        log_err("cannot create data directory '%s': %s", cfg->server.data_dir, strerror(errno));
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Request payloads (up to 32 MiB) and block buffers come and go all the time: keep them in
     * the heap instead of an mmap/munmap (and page faults on fresh zeroed pages) per request. */
    mallopt(M_MMAP_THRESHOLD, 32 << 20); /* glibc's maximum; a larger value is refused */
    mallopt(M_TRIM_THRESHOLD, 256 << 20);
    evthread_use_pthreads();
    struct srv *s = &d.srv;
    s->cfg = cfg;
    pthread_mutex_init(&s->pools_lock, NULL);
    pthread_mutex_init(&s->users_lock, NULL);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    /* One loop per core (up to SRV_MAX_LOOPS), each with workers for the blocking core calls. */
    unsigned nloops = ncpu > 1 ? (unsigned)ncpu : 1;
    if (srv_loops_start(s, nloops, 4) != 0) {
        log_err("cannot start the event loops or worker threads");
        return 1;
    }
    int rc = 0;
    for (size_t i = 0; i < cfg->npools && rc == 0; i++)
        rc = open_pool(&d, &cfg->pools[i]);
    struct err_msg em = { 0 };
    if (rc == 0 && cfg->server.admin_socket != NULL &&
        (d.admin = admin_start(s, cfg->server.admin_socket, &em)) == NULL)
        rc = -EINVAL;
    if (rc == 0 && (d.nbd = nbd_server_start(s, &em)) == NULL)
        rc = -EINVAL;
    if (rc != 0) {
        if (em.text[0])
            log_err("%s", em.text);
        admin_stop(d.admin);
        nbd_server_free(d.nbd);
        srv_loops_free(s);
        close_pools(s);
        return 1;
    }
    d.sig_term = evsignal_new(s->base, SIGTERM, on_stop, &d);
    d.sig_int = evsignal_new(s->base, SIGINT, on_stop, &d);
    d.sig_hup = evsignal_new(s->base, SIGHUP, on_hup, &d);
    event_add(d.sig_term, NULL);
    event_add(d.sig_int, NULL);
    event_add(d.sig_hup, NULL);
    print_connect_hint(cfg, s->npools);

    event_base_dispatch(s->base);

    admin_stop(d.admin);
    srv_loops_halt(s);
    nbd_server_free(d.nbd);
    event_free(d.sig_term);
    event_free(d.sig_int);
    event_free(d.sig_hup);
    if (d.drain_timer)
        event_free(d.drain_timer);
    srv_loops_free(s);
    close_pools(s);
    config_free(s->cfg);
    free(s->cfg);
    for (size_t i = 0; i < d.nretired; i++) {
        config_free(d.retired[i]);
        free(d.retired[i]);
    }
    free(d.overrides);
    log_info("stopped");
    return 0;
}
