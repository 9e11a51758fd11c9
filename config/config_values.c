/* SPDX-License-Identifier: MIT */
/*
 * config_values: the value grammar (booleans, sizes, addresses, names), the lookups the daemon
 * uses, equality, and the INI dump. Nothing here knows about layers or origins.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "config/config.h"
#include "config/config_impl.h"

/* ---- scalars ------------------------------------------------------------------------------- */

int
config_parse_bool(const char *s, bool *out)
{
    static const char *const yes[] = { "on", "yes", "true", "1" };
    static const char *const no[] = { "off", "no", "false", "0" };
    for (size_t i = 0; i < 4; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -EINVAL;
}

int
config_parse_size(const char *s, uint64_t *out)
{
    if (!isdigit((unsigned char)*s))
        return -EINVAL;
    uint64_t v = 0;
    bool overflow = false;
    for (; isdigit((unsigned char)*s); s++) {
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            overflow = true;
        else
            v = v * 10 + d;
    }
    unsigned shift = 0;
    if (*s != '\0') {
        const char *p = strchr("KMGT", toupper((unsigned char)*s));
        if (p == NULL || s[1] != '\0')
            return -EINVAL;
        shift = 10u * (unsigned)(p - "KMGT" + 1);
    }
    if (overflow || (shift > 0 && v > (UINT64_MAX >> shift)))
        return -ERANGE;
    *out = v << shift;
    return 0;
}

void
config_format_size(uint64_t bytes, char *buf, size_t len)
{
    static const char suffix[] = "TGMK";
    for (unsigned i = 0; i < 4 && bytes != 0; i++) {
        unsigned shift = 10u * (4 - i);
        if ((bytes & ((1ull << shift) - 1)) == 0) {
            snprintf(buf, len, "%llu%c", (unsigned long long)(bytes >> shift), suffix[i]);
            return;
        }
    }
    snprintf(buf, len, "%llu", (unsigned long long)bytes);
}

/* ---- addresses ------------------------------------------------------------------------------ */

/* RFC 1123 hostname: dot-separated labels of 1..63 [A-Za-z0-9-], no '-' at either end. */
static bool
hostname_ok(const char *h)
{
    size_t total = strlen(h);
    if (total == 0 || total > 253)
        return false;
    const char *label = h;
    for (;;) {
        size_t n = strcspn(label, ".");
        if (n == 0 || n > 63 || label[0] == '-' || label[n - 1] == '-')
            return false;
        for (size_t i = 0; i < n; i++)
            if (!isalnum((unsigned char)label[i]) && label[i] != '-')
                return false;
        if (label[n] == '\0')
            return true;
        label += n + 1;
    }
}

static bool
ipv6_ok(const char *h)
{
    char addr[INET6_ADDRSTRLEN + 1];
    const char *zone = strchr(h, '%');
    size_t n = zone ? (size_t)(zone - h) : strlen(h);
    if (n == 0 || n >= sizeof(addr))
        return false;
    memcpy(addr, h, n);
    addr[n] = '\0';
    struct in6_addr a;
    if (inet_pton(AF_INET6, addr, &a) != 1)
        return false;
    if (zone != NULL) {
        if (zone[1] == '\0')
            return false;
        for (const char *z = zone + 1; *z; z++)
            if (!isalnum((unsigned char)*z) && *z != '_' && *z != '.' && *z != '-')
                return false;
    }
    return true;
}

static int
parse_port(const char *p, uint16_t *port, char *why, size_t whylen)
{
    if (*p == '\0') {
        snprintf(why, whylen, "missing port after ':'");
        return -EINVAL;
    }
    unsigned long v = 0;
    for (const char *c = p; *c; c++) {
        if (!isdigit((unsigned char)*c) || v > 65535) {
            v = 0;
            break;
        }
        v = v * 10 + (unsigned long)(*c - '0');
    }
    if (v == 0 || v > 65535) {
        snprintf(why, whylen, "invalid port '%s' (1 to 65535)", p);
        return -EINVAL;
    }
    *port = (uint16_t)v;
    return 0;
}

int
config_parse_addr(const char *s, uint16_t default_port, struct config_addr *out, char *why,
                  size_t whylen)
{
    char scratch[128];
    if (why == NULL) {
        why = scratch;
        whylen = sizeof(scratch);
    }
    memset(out, 0, sizeof(*out));
    char host[256];
    const char *portp = NULL;
    int family;
    if (*s == '[') {
        const char *close = strchr(s, ']');
        if (close == NULL) {
            snprintf(why, whylen, "missing ']' after the IPv6 address");
            return -EINVAL;
        }
        if (close[1] != '\0' && close[1] != ':') {
            snprintf(why, whylen, "expected ':PORT' after ']'");
            return -EINVAL;
        }
        snprintf(host, sizeof(host), "%.*s", (int)(close - s - 1), s + 1);
        if (!ipv6_ok(host)) {
            snprintf(why, whylen, "invalid IPv6 address '%s'", host);
            return -EINVAL;
        }
        family = AF_INET6;
        portp = close[1] == ':' ? close + 2 : NULL;
    } else {
        const char *colon = strchr(s, ':');
        if (colon != NULL && strchr(colon + 1, ':') != NULL) {
            snprintf(why, whylen, "an IPv6 address needs brackets: [ADDRESS]:PORT");
            return -EINVAL;
        }
        size_t n = colon ? (size_t)(colon - s) : strlen(s);
        if (n == 0) {
            snprintf(why, whylen, "missing host");
            return -EINVAL;
        }
        if (n >= sizeof(host)) {
            snprintf(why, whylen, "host name too long");
            return -EINVAL;
        }
        memcpy(host, s, n);
        host[n] = '\0';
        portp = colon ? colon + 1 : NULL;
        if (strspn(host, "0123456789.") == n) {
            struct in_addr a;
            if (inet_pton(AF_INET, host, &a) != 1) {
                snprintf(why, whylen, "invalid IPv4 address '%s'", host);
                return -EINVAL;
            }
            family = AF_INET;
        } else if (hostname_ok(host)) {
            family = AF_UNSPEC;
        } else {
            snprintf(why, whylen, "invalid host name '%s'", host);
            return -EINVAL;
        }
    }
    uint16_t port = default_port;
    if (portp != NULL && parse_port(portp, &port, why, whylen) != 0)
        return -EINVAL;
    if ((out->host = strdup(host)) == NULL)
        return -ENOMEM;
    out->port = port;
    out->family = family;
    return 0;
}

void
config_format_addr(const struct config_addr *a, char *buf, size_t len)
{
    if (a->family == AF_INET6)
        snprintf(buf, len, "[%s]:%u", a->host, (unsigned)a->port);
    else
        snprintf(buf, len, "%s:%u", a->host, (unsigned)a->port);
}

/* ---- names ---------------------------------------------------------------------------------- */

bool
config_component_ok(const char *s, size_t len)
{
    if (len == 0 || len > 255)
        return false;
    if ((len == 1 && s[0] == '.') || (len == 2 && s[0] == '.' && s[1] == '.'))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)s[i]) && !strchr("_.:-", s[i]))
            return false;
    return true;
}

bool
config_pool_name_ok(const char *s)
{
    size_t n = strlen(s);
    return n <= CONFIG_POOL_NAME_MAX && config_component_ok(s, n);
}

bool
config_export_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > CONFIG_VALUE_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c == 0x7f || strchr("[]=;", c) != NULL)
            return false;
    }
    return true;
}

static bool
path_ok(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (;;) {
        const char *slash = memchr(s, '/', n);
        size_t c = slash ? (size_t)(slash - s) : n;
        if (!config_component_ok(s, c))
            return false;
        if (slash == NULL)
            return true;
        s += c + 1;
        n -= c + 1;
    }
}

bool
config_dataset_path_ok(const char *s)
{
    size_t n = strlen(s);
    return n <= CONFIG_DATASET_NAME_MAX && path_ok(s, n);
}

bool
config_volume_name_ok(const char *s, char *why, size_t whylen)
{
    size_t n = strlen(s);
    const char *at = strchr(s, '@');
    size_t head = at ? (size_t)(at - s) : n;
    const char *slash = memchr(s, '/', head);
    if (slash == NULL) {
        snprintf(why, whylen, "must be POOL/NAME (for example tank/vol0)");
        return false;
    }
    size_t plen = (size_t)(slash - s);
    if (plen > CONFIG_POOL_NAME_MAX || !config_component_ok(s, plen)) {
        snprintf(why, whylen, "invalid pool name '%.*s'", (int)plen, s);
        return false;
    }
    if (!path_ok(slash + 1, head - plen - 1)) {
        snprintf(why, whylen, "invalid name (components of A-Z a-z 0-9 _ . : - separated by '/')");
        return false;
    }
    if (at != NULL && !config_component_ok(at + 1, strlen(at + 1))) {
        snprintf(why, whylen, "invalid snapshot name '%s'", at + 1);
        return false;
    }
    if (n > CONFIG_DATASET_NAME_MAX) {
        snprintf(why, whylen, "longer than %d bytes", CONFIG_DATASET_NAME_MAX);
        return false;
    }
    return true;
}

bool
config_has_comment_start(const char *s)
{
    if (s[0] == ';')
        return true; /* written after "key = ", it would follow a space */
    for (size_t i = 1; s[0] && s[i]; i++)
        if (s[i] == ';' && isspace((unsigned char)s[i - 1]))
            return true;
    return false;
}

size_t
config_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return SIZE_MAX;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (up + 1 < best)
                best = up + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

/* ---- lookups -------------------------------------------------------------------------------- */

const struct config_pool *
config_find_pool(const struct lcpfs_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->npools; i++)
        if (strcmp(cfg->pools[i].name, name) == 0)
            return &cfg->pools[i];
    return NULL;
}

const struct config_export *
config_find_export(const struct lcpfs_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nexports; i++)
        if (strcmp(cfg->exports[i].name, name) == 0)
            return &cfg->exports[i];
    return NULL;
}

enum config_tls
config_export_tls(const struct lcpfs_config *cfg, const struct config_export *e)
{
    return e->tls_set ? e->tls : cfg->nbd.tls;
}

bool
config_vdev_is_keyword(const char *word)
{
    static const char *const kw[] = { "mirror", "raidz", "raidz1", "raidz2",
                                      "raidz3", "spare", "log",    "cache" };
    for (size_t i = 0; i < sizeof(kw) / sizeof(kw[0]); i++)
        if (strcmp(word, kw[i]) == 0)
            return true;
    return false;
}

const char *
config_direct_io_name(enum config_direct_io d)
{
    return d == CONFIG_DIRECT_IO_ON ? "on" : d == CONFIG_DIRECT_IO_OFF ? "off" : "writes";
}

const char *
config_tls_name(enum config_tls t)
{
    return t == CONFIG_TLS_REQUIRE ? "require" : t == CONFIG_TLS_ON ? "on" : "off";
}

const char *
config_log_name(enum config_log l)
{
    return l == CONFIG_LOG_SYSLOG ? "syslog" : "stderr";
}

const char *
config_log_level_name(enum log_level l)
{
    switch (l) {
    case LOG_LEVEL_ERR:
        return "err";
    case LOG_LEVEL_WARN:
        return "warn";
    case LOG_LEVEL_DEBUG:
        return "debug";
    default:
        return "info";
    }
}

/* ---- equality ------------------------------------------------------------------------------- */

static bool
str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

bool
config_equal(const struct lcpfs_config *a, const struct lcpfs_config *b)
{
    if (!str_eq(a->server.data_dir, b->server.data_dir) ||
        !str_eq(a->server.admin_socket, b->server.admin_socket) || a->server.log != b->server.log ||
        a->server.log_level != b->server.log_level)
        return false;
    if (a->nbd.nlisten != b->nbd.nlisten || !str_eq(a->nbd.unix_socket, b->nbd.unix_socket) ||
        a->nbd.tls != b->nbd.tls || !str_eq(a->nbd.tls_cert, b->nbd.tls_cert) ||
        !str_eq(a->nbd.tls_key, b->nbd.tls_key) || !str_eq(a->nbd.tls_ca, b->nbd.tls_ca) ||
        a->nbd.tls_verify_peer != b->nbd.tls_verify_peer ||
        !str_eq(a->nbd.tls_psk_file, b->nbd.tls_psk_file) ||
        !str_eq(a->nbd.default_export, b->nbd.default_export))
        return false;
    for (size_t i = 0; i < a->nbd.nlisten; i++) {
        const struct config_addr *x = &a->nbd.listen[i], *y = &b->nbd.listen[i];
        if (!str_eq(x->host, y->host) || x->port != y->port || x->family != y->family)
            return false;
    }
    if (a->npools != b->npools || a->nexports != b->nexports)
        return false;
    for (size_t i = 0; i < a->npools; i++) {
        const struct config_pool *x = &a->pools[i], *y = &b->pools[i];
        if (!str_eq(x->name, y->name) || x->nvdevs != y->nvdevs ||
            x->create_size != y->create_size || !str_eq(x->default_volume, y->default_volume) ||
            x->default_volume_size != y->default_volume_size || x->direct_io != y->direct_io)
            return false;
        for (size_t j = 0; j < x->nvdevs; j++)
            if (!str_eq(x->vdevs[j], y->vdevs[j]))
                return false;
    }
    for (size_t i = 0; i < a->nexports; i++) {
        const struct config_export *x = &a->exports[i], *y = &b->exports[i];
        if (!str_eq(x->name, y->name) || !str_eq(x->volume, y->volume) ||
            x->readonly != y->readonly || !str_eq(x->description, y->description) ||
            x->tls_set != y->tls_set || (x->tls_set && x->tls != y->tls))
            return false;
    }
    return true;
}

/* ---- dump ----------------------------------------------------------------------------------- */

#define DUMP_WRAP 100 /* wrap list lines past this column (well under CONFIG_LINE_MAX) */

static void
dump_str(FILE *out, const char *key, const char *v)
{
    if (v != NULL)
        fprintf(out, "%s = %s\n", key, v);
    else
        fprintf(out, "%s =\n", key);
}

static void
dump_size(FILE *out, const char *key, uint64_t v)
{
    char buf[32];
    config_format_size(v, buf, sizeof(buf));
    fprintf(out, "%s = %s\n", key, buf);
}

/* A list, continued on indented lines when long. */
static void
dump_words(FILE *out, const char *key, const char *const *w, size_t n)
{
    size_t col = (size_t)fprintf(out, "%s =", key);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && col + 1 + strlen(w[i]) > DUMP_WRAP) {
            fprintf(out, "\n   ");
            col = 3;
        }
        col += (size_t)fprintf(out, " %s", w[i]);
    }
    fputc('\n', out);
}

int
config_dump(const struct lcpfs_config *cfg, FILE *out)
{
    fprintf(out, "# lcpfsd effective configuration\n\n[server]\n");
    dump_str(out, "data-dir", cfg->server.data_dir);
    dump_str(out, "admin-socket", cfg->server.admin_socket);
    dump_str(out, "log", config_log_name(cfg->server.log));
    dump_str(out, "log-level", config_log_level_name(cfg->server.log_level));

    fprintf(out, "\n[nbd]\n");
    char **addrs = calloc(cfg->nbd.nlisten + 1, sizeof(*addrs));
    if (addrs == NULL)
        return -ENOMEM;
    int rc = 0;
    for (size_t i = 0; i < cfg->nbd.nlisten; i++) {
        if ((addrs[i] = malloc(300)) == NULL) {
            rc = -ENOMEM;
            goto out;
        }
        config_format_addr(&cfg->nbd.listen[i], addrs[i], 300);
    }
    dump_words(out, "listen", (const char *const *)addrs, cfg->nbd.nlisten);
    dump_str(out, "unix", cfg->nbd.unix_socket);
    dump_str(out, "tls", config_tls_name(cfg->nbd.tls));
    dump_str(out, "tls-cert", cfg->nbd.tls_cert);
    dump_str(out, "tls-key", cfg->nbd.tls_key);
    dump_str(out, "tls-ca", cfg->nbd.tls_ca);
    dump_str(out, "tls-verify-peer", cfg->nbd.tls_verify_peer ? "yes" : "no");
    dump_str(out, "tls-psk-file", cfg->nbd.tls_psk_file);
    dump_str(out, "default-export", cfg->nbd.default_export);

    for (size_t i = 0; i < cfg->npools; i++) {
        const struct config_pool *p = &cfg->pools[i];
        fprintf(out, "\n[pool %s]\n", p->name);
        dump_words(out, "vdevs", (const char *const *)p->vdevs, p->nvdevs);
        dump_size(out, "create-size", p->create_size);
        dump_str(out, "default-volume", p->default_volume);
        dump_size(out, "default-volume-size", p->default_volume_size);
        dump_str(out, "direct-io", config_direct_io_name(p->direct_io));
    }
    for (size_t i = 0; i < cfg->nexports; i++) {
        const struct config_export *e = &cfg->exports[i];
        fprintf(out, "\n[nbd-export %s]\n", e->name);
        dump_str(out, "volume", e->volume);
        dump_str(out, "readonly", e->readonly ? "yes" : "no");
        dump_str(out, "description", e->description);
        dump_str(out, "tls", e->tls_set ? config_tls_name(e->tls) : NULL);
    }
    if (fflush(out) != 0 || ferror(out))
        rc = -EIO;
out:
    for (size_t i = 0; i < cfg->nbd.nlisten; i++)
        free(addrs[i]);
    free(addrs);
    return rc;
}
