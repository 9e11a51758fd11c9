/* SPDX-License-Identifier: MIT */
/*
 * config: the key table, the record of where each section and key was set, error collection,
 * and applying one `key = value` to a section under the layer rules of config.h. Values are
 * checked one by one here; reading text and overrides is config_file.c, the rules that involve
 * several keys (and path resolution) are config_validate.c.
 */
#include "config/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/err.h"
#include "config/config_impl.h"

#define CFG_OFF(f)  offsetof(struct lcpfs_config, f)
#define POOL_OFF(f) offsetof(struct config_pool, f)
#define EXP_OFF(f)  offsetof(struct config_export, f)

const struct key_def config_keys[] = {
    { SEC_SERVER, "data-dir", VT_DATADIR, CFG_OFF(server.data_dir), 0 },
    { SEC_SERVER, "admin-socket", VT_PATH, CFG_OFF(server.admin_socket), 0 },
    { SEC_SERVER, "log", VT_LOG, CFG_OFF(server.log), 0 },
    { SEC_SERVER, "log-level", VT_LOGLEVEL, CFG_OFF(server.log_level), 0 },
    { SEC_NBD, "listen", VT_ADDRS, CFG_OFF(nbd.listen), CFG_OFF(nbd.nlisten) },
    { SEC_NBD, "unix", VT_PATH, CFG_OFF(nbd.unix_socket), 0 },
    { SEC_NBD, "tls", VT_TLS, CFG_OFF(nbd.tls), 0 },
    { SEC_NBD, "tls-cert", VT_PATH, CFG_OFF(nbd.tls_cert), 0 },
    { SEC_NBD, "tls-key", VT_PATH, CFG_OFF(nbd.tls_key), 0 },
    { SEC_NBD, "tls-ca", VT_PATH, CFG_OFF(nbd.tls_ca), 0 },
    { SEC_NBD, "tls-verify-peer", VT_BOOL, CFG_OFF(nbd.tls_verify_peer), 0 },
    { SEC_NBD, "tls-psk-file", VT_PATH, CFG_OFF(nbd.tls_psk_file), 0 },
    { SEC_NBD, "default-export", VT_EXPNAME, CFG_OFF(nbd.default_export), 0 },
    { SEC_POOL, "vdevs", VT_WORDS, POOL_OFF(vdevs), POOL_OFF(nvdevs) },
    { SEC_POOL, "create-size", VT_SIZE, POOL_OFF(create_size), 0 },
    { SEC_POOL, "default-volume", VT_RELVOL, POOL_OFF(default_volume), 0 },
    { SEC_POOL, "default-volume-size", VT_SIZE, POOL_OFF(default_volume_size), 0 },
    { SEC_POOL, "direct-io", VT_DIRECTIO, POOL_OFF(direct_io), 0 },
    { SEC_EXPORT, "volume", VT_VOLUME, EXP_OFF(volume), 0 },
    { SEC_EXPORT, "readonly", VT_BOOL, EXP_OFF(readonly), 0 },
    { SEC_EXPORT, "description", VT_TEXT, EXP_OFF(description), 0 },
    { SEC_EXPORT, "tls", VT_TLS_OPT, EXP_OFF(tls), EXP_OFF(tls_set) },
    { SEC_NONE, NULL, VT_TEXT, 0, 0 },
};

/* ---- errors --------------------------------------------------------------------------------- */

void
config_errs_push(struct parse *ps, char *msg)
{
    ps->nerr++;
    if (msg == NULL) {
        ps->nomem = true;
        return;
    }
    if (ps->errs != NULL && ps->errs->n < CONFIG_MAX_ERRORS) {
        ps->errs->msg[ps->errs->n++] = msg;
        return;
    }
    if (ps->errs != NULL)
        ps->errs->dropped++;
    free(msg);
}

void
config_err(struct parse *ps, const struct origin *at, const char *what, const char *fmt, ...)
{
    char body[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(body, sizeof(body), fmt, ap);
    va_end(ap);
    char *msg = NULL;
    int r;
    switch (at->layer) {
    case LAYER_FILE:
        r = asprintf(&msg, "%s:%d: %s", ps->path, at->line, body);
        break;
    case LAYER_OVERRIDE:
        r = asprintf(&msg, "-o %s: %s", ps->ovr[at->ovr], body);
        break;
    default:
        r = what ? asprintf(&msg, "built-in default %s: %s", what, body)
                 : asprintf(&msg, "built-in default: %s", body);
        break;
    }
    config_errs_push(ps, r < 0 ? NULL : msg);
}

void
config_errors_free(struct config_errors *errs)
{
    if (errs == NULL)
        return;
    for (size_t i = 0; i < errs->n; i++)
        free(errs->msg[i]);
    memset(errs, 0, sizeof(*errs));
}

void
config_errors_print(const struct config_errors *errs, FILE *out)
{
    for (size_t i = 0; i < errs->n; i++)
        fprintf(out, "%s\n", errs->msg[i]);
    if (errs->dropped)
        fprintf(out, "%zu more error%s not shown\n", errs->dropped, errs->dropped == 1 ? "" : "s");
}

/* ---- sections and the record of what was set ------------------------------------------------ */

const char *
config_sec_name(enum sec_type sec)
{
    switch (sec) {
    case SEC_SERVER:
        return "server";
    case SEC_NBD:
        return "nbd";
    case SEC_POOL:
        return "pool";
    case SEC_EXPORT:
        return "nbd-export";
    default:
        return "";
    }
}

static bool
same_name(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

struct seen *
config_seen_find(struct parse *ps, enum sec_type sec, const char *name, const char *key)
{
    for (size_t i = ps->nseen; i-- > 0;) {
        struct seen *s = &ps->seen[i];
        if (s->sec == sec && same_name(s->name, name) && same_name(s->key, key))
            return s;
    }
    return NULL;
}

/* The record of (sec, name, key), created empty if missing; NULL only when memory runs out. */
struct seen *
config_seen_get(struct parse *ps, enum sec_type sec, const char *name, const char *key)
{
    struct seen *s = config_seen_find(ps, sec, name, key);
    if (s != NULL)
        return s;
    if (ps->nseen == ps->capseen) {
        size_t cap = ps->capseen ? ps->capseen * 2 : 32;
        struct seen *v = realloc(ps->seen, cap * sizeof(*v));
        if (v == NULL)
            return NULL;
        ps->seen = v;
        ps->capseen = cap;
    }
    char *copy = NULL;
    if (name != NULL && (copy = strdup(name)) == NULL)
        return NULL;
    s = &ps->seen[ps->nseen++];
    *s = (struct seen){ .sec = sec, .name = copy, .key = key, .at = ps->at };
    return s;
}

static void
free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void
free_addrs(struct config_addr *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].host);
    free(v);
}

static void
pool_free(struct config_pool *p)
{
    free(p->name);
    free_strv(p->vdevs, p->nvdevs);
    free(p->default_volume);
}

static void
export_free(struct config_export *e)
{
    free(e->name);
    free(e->volume);
    free(e->description);
}

void
config_free(struct lcpfs_config *cfg)
{
    if (cfg == NULL)
        return;
    free(cfg->server.data_dir);
    free(cfg->server.admin_socket);
    free_addrs(cfg->nbd.listen, cfg->nbd.nlisten);
    free(cfg->nbd.unix_socket);
    free(cfg->nbd.tls_cert);
    free(cfg->nbd.tls_key);
    free(cfg->nbd.tls_ca);
    free(cfg->nbd.tls_psk_file);
    free(cfg->nbd.default_export);
    for (size_t i = 0; i < cfg->npools; i++)
        pool_free(&cfg->pools[i]);
    free(cfg->pools);
    for (size_t i = 0; i < cfg->nexports; i++)
        export_free(&cfg->exports[i]);
    free(cfg->exports);
    memset(cfg, 0, sizeof(*cfg));
}

/*
 * Layers rule 2: the file names a pool or export, so the embedded pool and export go, and with
 * them the embedded default-export (unless the file set it already).
 */
static void
drop_default_sections(struct parse *ps)
{
    struct lcpfs_config *cfg = ps->cfg;
    for (size_t i = 0; i < cfg->npools; i++)
        pool_free(&cfg->pools[i]);
    free(cfg->pools);
    cfg->pools = NULL;
    cfg->npools = 0;
    for (size_t i = 0; i < cfg->nexports; i++)
        export_free(&cfg->exports[i]);
    free(cfg->exports);
    cfg->exports = NULL;
    cfg->nexports = 0;
    struct seen *de = config_seen_find(ps, SEC_NBD, NULL, "default-export");
    bool drop_de = de != NULL && de->at.layer == LAYER_DEFAULT;
    if (drop_de) {
        free(cfg->nbd.default_export);
        cfg->nbd.default_export = NULL;
    }
    size_t j = 0;
    for (size_t i = 0; i < ps->nseen; i++) {
        struct seen *s = &ps->seen[i];
        if (s->sec == SEC_POOL || s->sec == SEC_EXPORT || (drop_de && s == de)) {
            free(s->name);
            free(s->elem);
        } else
            ps->seen[j++] = *s;
    }
    ps->nseen = j;
    ps->dropped_defaults = true;
}

/* The struct a pool or export section fills, created if missing. NULL = out of memory. */
void *
config_section_base(struct parse *ps, enum sec_type sec, const char *name)
{
    struct lcpfs_config *cfg = ps->cfg;
    if (sec == SEC_SERVER || sec == SEC_NBD)
        return cfg;
    if (sec == SEC_POOL) {
        for (size_t i = 0; i < cfg->npools; i++)
            if (strcmp(cfg->pools[i].name, name) == 0)
                return &cfg->pools[i];
        struct config_pool *v = realloc(cfg->pools, (cfg->npools + 1) * sizeof(*v));
        if (v == NULL)
            return NULL;
        cfg->pools = v;
        struct config_pool *p = &v[cfg->npools];
        *p = (struct config_pool){ .name = strdup(name) };
        if (p->name == NULL)
            return NULL;
        cfg->npools++;
        return p;
    }
    for (size_t i = 0; i < cfg->nexports; i++)
        if (strcmp(cfg->exports[i].name, name) == 0)
            return &cfg->exports[i];
    struct config_export *v = realloc(cfg->exports, (cfg->nexports + 1) * sizeof(*v));
    if (v == NULL)
        return NULL;
    cfg->exports = v;
    struct config_export *e = &v[cfg->nexports];
    *e = (struct config_export){ .name = strdup(name) };
    if (e->name == NULL)
        return NULL;
    cfg->nexports++;
    return e;
}

enum sec_type
config_sec_lookup(const char *s, size_t len)
{
    for (enum sec_type t = SEC_SERVER; t <= SEC_EXPORT; t++)
        if (strlen(config_sec_name(t)) == len && memcmp(config_sec_name(t), s, len) == 0)
            return t;
    return SEC_NONE;
}

/* The closest section type to a misspelt one, or SEC_NONE. */
static enum sec_type
sec_suggest(const char *s)
{
    enum sec_type best = SEC_NONE;
    size_t bestd = 3;
    for (enum sec_type t = SEC_SERVER; t <= SEC_EXPORT; t++) {
        size_t d = config_edit_distance(s, config_sec_name(t));
        if (d < bestd && d * 2 < strlen(config_sec_name(t))) {
            best = t;
            bestd = d;
        }
    }
    return best;
}

/*
 * Checks a section type and name (from a header or an override; dotted selects the override
 * spelling in messages). Returns true when usable; otherwise the error is reported.
 */
bool
config_section_check(struct parse *ps, const char *type, size_t typelen, const char *name,
                     bool dotted)
{
    enum sec_type t = config_sec_lookup(type, typelen);
    const char *sep = dotted ? "." : " ";
    if (t == SEC_NONE) {
        char word[64];
        snprintf(word, sizeof(word), "%.*s", (int)(typelen < 60 ? typelen : 60), type);
        enum sec_type sug = sec_suggest(word);
        const char *o = dotted ? "'" : "[", *c = dotted ? "'" : "]";
        if (sug != SEC_NONE)
            config_err(ps, &ps->at, NULL, "unknown section %s%s%s (did you mean %s%s%s?)", o, word,
                       c, o, config_sec_name(sug), c);
        else
            config_err(ps, &ps->at, NULL,
                       "unknown section %s%s%s (sections: server, nbd, pool%sNAME, "
                       "nbd-export%sNAME)",
                       o, word, c, sep, sep);
        return false;
    }
    if ((t == SEC_SERVER || t == SEC_NBD) && name != NULL) {
        config_err(ps, &ps->at, NULL, "section '%s' takes no name", config_sec_name(t));
        return false;
    }
    if ((t == SEC_POOL || t == SEC_EXPORT) && name == NULL) {
        config_err(ps, &ps->at, NULL, "section '%s' needs a name: %s%s%sNAME%s", config_sec_name(t),
                   dotted ? "" : "[", config_sec_name(t), sep, dotted ? ".KEY=VALUE" : "]");
        return false;
    }
    if (t == SEC_POOL && !config_pool_name_ok(name)) {
        config_err(ps, &ps->at, NULL,
                   "invalid pool name '%s' (1 to %d characters of A-Z a-z 0-9 _ . : -)", name,
                   CONFIG_POOL_NAME_MAX);
        return false;
    }
    if (t == SEC_EXPORT && !config_export_name_ok(name)) {
        config_err(ps, &ps->at, NULL,
                   "invalid export name '%s' (1 to %d printable characters other than "
                   "space [ ] = ;)",
                   name, CONFIG_VALUE_MAX);
        return false;
    }
    return true;
}

/* A section header of the file or the embedded default: "[" text "]" with text trimmed. */
int
config_begin_section(struct parse *ps, const char *text, size_t len)
{
    free(ps->sec_name);
    ps->sec_name = NULL;
    ps->sec = SEC_NONE;
    ps->sec_ignore = true;
    ps->last_key = NULL;
    while (len > 0 && isspace((unsigned char)*text)) {
        text++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)text[len - 1]))
        len--;
    size_t typelen = 0;
    while (typelen < len && !isspace((unsigned char)text[typelen]))
        typelen++;
    size_t k = typelen;
    while (k < len && isspace((unsigned char)text[k]))
        k++;
    char *name = k < len ? strndup(text + k, len - k) : NULL;
    if (k < len && name == NULL)
        return -ENOMEM;
    if (typelen == 0) {
        config_err(ps, &ps->at, NULL, "empty section header");
        free(name);
        return 0;
    }
    if (!config_section_check(ps, text, typelen, name, false)) {
        free(name);
        return 0;
    }
    enum sec_type t = config_sec_lookup(text, typelen);
    struct seen *prev = config_seen_find(ps, t, name, NULL);
    if (prev != NULL && prev->at.layer == ps->at.layer) {
        if (name != NULL)
            config_err(ps, &ps->at, NULL, "duplicate section [%s %s] (first at line %d)",
                       config_sec_name(t), name, prev->at.line);
        else
            config_err(ps, &ps->at, NULL, "duplicate section [%s] (first at line %d)",
                       config_sec_name(t), prev->at.line);
        free(name);
        return 0;
    }
    if ((t == SEC_POOL || t == SEC_EXPORT) && ps->at.layer == LAYER_FILE && !ps->dropped_defaults)
        drop_default_sections(ps);
    struct seen *s = config_seen_get(ps, t, name, NULL);
    if (s == NULL || config_section_base(ps, t, name) == NULL) {
        free(name);
        return -ENOMEM;
    }
    s->at = ps->at;
    ps->sec = t;
    ps->sec_name = name;
    ps->sec_ignore = false;
    return 0;
}

/* ---- keys and values ------------------------------------------------------------------------ */

const struct key_def *
config_key_lookup(enum sec_type sec, const char *name)
{
    for (const struct key_def *k = config_keys; k->name != NULL; k++)
        if (k->sec == sec && strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

void
config_unknown_key(struct parse *ps, enum sec_type sec, const char *secname, const char *key)
{
    char where[CONFIG_VALUE_MAX + 32];
    if (secname != NULL)
        snprintf(where, sizeof(where), "[%s %s]", config_sec_name(sec), secname);
    else
        snprintf(where, sizeof(where), "[%s]", config_sec_name(sec));
    const struct key_def *best = NULL;
    size_t bestd = 3;
    for (const struct key_def *k = config_keys; k->name != NULL; k++) {
        if (k->sec != sec)
            continue;
        size_t d = config_edit_distance(key, k->name);
        if (d < bestd && d * 2 < strlen(k->name)) {
            best = k;
            bestd = d;
        }
    }
    if (best != NULL) {
        config_err(ps, &ps->at, NULL, "unknown key '%s' in %s (did you mean '%s'?)", key, where,
                   best->name);
        return;
    }
    for (const struct key_def *k = config_keys; k->name != NULL; k++) {
        if (k->sec != sec && strcmp(k->name, key) == 0) {
            bool named = k->sec == SEC_POOL || k->sec == SEC_EXPORT;
            config_err(ps, &ps->at, NULL, "unknown key '%s' in %s ('%s' belongs in [%s%s])", key,
                       where, key, config_sec_name(k->sec), named ? " NAME" : "");
            return;
        }
    }
    config_err(ps, &ps->at, NULL, "unknown key '%s' in %s", key, where);
}

/* The field at offset off of a section struct (see struct key_def). */
static void *
field(void *base, size_t off)
{
    return (char *)base + off;
}

static bool
is_list(const struct key_def *k)
{
    return k->type == VT_ADDRS || k->type == VT_WORDS;
}

/* Splits value into words at spaces and commas. *out owned (free_strv). 0 or -ENOMEM. */
static int
split_words(const char *value, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    const char *s = value;
    while (*s) {
        while (*s && (isspace((unsigned char)*s) || *s == ','))
            s++;
        size_t len = 0;
        while (s[len] && !isspace((unsigned char)s[len]) && s[len] != ',')
            len++;
        if (len == 0)
            break;
        char **v = realloc(*out, (*n + 1) * sizeof(*v));
        if (v == NULL || (v[*n] = strndup(s, len)) == NULL) {
            if (v != NULL)
                *out = v;
            free_strv(*out, *n);
            *out = NULL;
            *n = 0;
            return -ENOMEM;
        }
        *out = v;
        (*n)++;
        s += len;
    }
    return 0;
}

/* Appends the words of value to a list key (parsing addresses). 0, 1 (reported) or -ENOMEM. */
static int
list_append(struct parse *ps, const struct key_def *k, void *base, const char *value)
{
    char **words;
    size_t nw;
    int rc = split_words(value, &words, &nw);
    if (rc != 0)
        return rc;
    size_t *count = (size_t *)field(base, k->off_n);
    if (k->type == VT_WORDS) {
        char ***list = (char ***)field(base, k->off);
        char **v = realloc(*list, (*count + nw + 1) * sizeof(*v));
        if (v == NULL) {
            free_strv(words, nw);
            return -ENOMEM;
        }
        memcpy(v + *count, words, nw * sizeof(*v));
        *list = v;
        *count += nw;
        free(words);
        return 0;
    }
    struct config_addr **list = (struct config_addr **)field(base, k->off);
    struct config_addr *v = realloc(*list, (*count + nw + 1) * sizeof(*v));
    if (v == NULL) {
        free_strv(words, nw);
        return -ENOMEM;
    }
    *list = v;
    size_t added = 0;
    bool bad = false;
    for (size_t i = 0; i < nw && rc == 0; i++) {
        char why[128];
        int r =
            config_parse_addr(words[i], CONFIG_DEFAULT_PORT, &v[*count + added], why, sizeof(why));
        if (r == -ENOMEM)
            rc = r;
        else if (r != 0) {
            config_err(ps, &ps->at, NULL, "invalid address '%s' for '%s': %s", words[i], k->name,
                       why);
            bad = true;
        } else
            added++;
    }
    if (bad || rc != 0) {
        for (size_t i = 0; i < added; i++)
            free(v[*count + i].host);
        added = 0;
    }
    *count += added;
    free_strv(words, nw);
    return rc != 0 ? rc : bad ? 1 : 0;
}

static void
list_clear(const struct key_def *k, void *base)
{
    size_t *count = (size_t *)field(base, k->off_n);
    if (k->type == VT_WORDS) {
        char ***list = (char ***)field(base, k->off);
        free_strv(*list, *count);
        *list = NULL;
    } else {
        struct config_addr **list = (struct config_addr **)field(base, k->off);
        free_addrs(*list, *count);
        *list = NULL;
    }
    *count = 0;
}

/* Frees the first n elements of a list and moves the rest down. */
static void
list_drop_front(const struct key_def *k, void *base, size_t n)
{
    size_t *count = field(base, k->off_n);
    if (k->type == VT_WORDS) {
        char **list = *(char ***)field(base, k->off);
        for (size_t i = 0; i < n; i++)
            free(list[i]);
        memmove(list, list + n, (*count - n) * sizeof(*list));
    } else {
        struct config_addr *list = *(struct config_addr **)field(base, k->off);
        for (size_t i = 0; i < n; i++)
            free(list[i].host);
        memmove(list, list + n, (*count - n) * sizeof(*list));
    }
    *count -= n;
}

struct enum_name {
    const char *name;
    int value;
};

static const struct enum_name tls_names[] = { { "off", CONFIG_TLS_OFF },
                                              { "on", CONFIG_TLS_ON },
                                              { "require", CONFIG_TLS_REQUIRE },
                                              { NULL, 0 } };
static const struct enum_name log_names[] = { { "stderr", CONFIG_LOG_STDERR },
                                              { "syslog", CONFIG_LOG_SYSLOG },
                                              { NULL, 0 } };
static const struct enum_name direct_io_names[] = { { "writes", CONFIG_DIRECT_IO_WRITES },
                                                    { "off", CONFIG_DIRECT_IO_OFF },
                                                    { "on", CONFIG_DIRECT_IO_ON },
                                                    { NULL, 0 } };
static const struct enum_name level_names[] = { { "err", LOG_LEVEL_ERR },
                                                { "warn", LOG_LEVEL_WARN },
                                                { "info", LOG_LEVEL_INFO },
                                                { "debug", LOG_LEVEL_DEBUG },
                                                { NULL, 0 } };

static bool enum_parse(const struct enum_name *t, const char *s, int *out);

int
config_parse_direct_io(const char *s, enum config_direct_io *out)
{
    int iv;
    if (s == NULL || !enum_parse(direct_io_names, s, &iv))
        return -EINVAL;
    *out = (enum config_direct_io)iv;
    return 0;
}

static bool
enum_parse(const struct enum_name *t, const char *s, int *out)
{
    for (; t->name != NULL; t++) {
        if (strcasecmp(t->name, s) == 0) {
            *out = t->value;
            return true;
        }
    }
    return false;
}

/* Replaces an owned string field with a copy of value (NULL when empty and allowed). */
static int
set_string(void *base, const struct key_def *k, const char *value)
{
    char **slot = field(base, k->off);
    char *copy = NULL;
    if (*value != '\0' && (copy = strdup(value)) == NULL)
        return -ENOMEM;
    free(*slot);
    *slot = copy;
    return 0;
}

/* Parses and stores one scalar value. 0, 1 (reported) or -ENOMEM. */
static int
set_scalar(struct parse *ps, const struct key_def *k, void *base, const char *value)
{
    const struct origin *at = &ps->at;
    int iv;
    switch (k->type) {
    case VT_DATADIR:
    case VT_VOLUME:
        if (*value == '\0') {
            config_err(ps, at, NULL, "'%s' must not be empty", k->name);
            return 1;
        }
        if (k->type == VT_VOLUME) {
            char why[128];
            if (!config_volume_name_ok(value, why, sizeof(why))) {
                config_err(ps, at, NULL, "invalid volume '%s': %s", value, why);
                return 1;
            }
        }
        return set_string(base, k, value);
    case VT_PATH:
        return set_string(base, k, value);
    case VT_TEXT:
        if (config_has_comment_start(value)) {
            config_err(ps, at, NULL, "value of '%s' cannot start with ';'", k->name);
            return 1;
        }
        return set_string(base, k, value);
    case VT_EXPNAME:
        if (*value != '\0' && !config_export_name_ok(value)) {
            config_err(ps, at, NULL,
                       "invalid export name '%s' (1 to %d printable characters other than "
                       "space [ ] = ;)",
                       value, CONFIG_VALUE_MAX);
            return 1;
        }
        return set_string(base, k, value);
    case VT_RELVOL:
        if (*value != '\0' && !config_dataset_path_ok(value)) {
            config_err(ps, at, NULL,
                       "invalid volume name '%s' (components of A-Z a-z 0-9 _ . : - separated "
                       "by '/')",
                       value);
            return 1;
        }
        return set_string(base, k, value);
    case VT_BOOL:
        if (config_parse_bool(value, (bool *)field(base, k->off)) != 0) {
            config_err(ps, at, NULL,
                       "invalid boolean '%s' for '%s' (use yes/no, on/off, true/false or 1/0)",
                       value, k->name);
            return 1;
        }
        return 0;
    case VT_SIZE: {
        int r = config_parse_size(value, (uint64_t *)field(base, k->off));
        if (r == -ERANGE)
            config_err(ps, at, NULL, "size '%s' for '%s' does not fit in 64 bits", value, k->name);
        else if (r != 0)
            config_err(ps, at, NULL,
                       "invalid size '%s' for '%s' (an integer with an optional K, M, G or T "
                       "suffix)",
                       value, k->name);
        return r != 0;
    }
    case VT_TLS_OPT:
        if (*value == '\0') {
            *(bool *)field(base, k->off_n) = false;
            *(enum config_tls *)field(base, k->off) = CONFIG_TLS_OFF;
            return 0;
        }
        __attribute__((fallthrough));
    case VT_TLS:
        if (!enum_parse(tls_names, value, &iv)) {
            config_err(ps, at, NULL, "invalid value '%s' for '%s' (use off, on or require)%s",
                       value, k->name, k->type == VT_TLS_OPT ? ", or leave empty" : "");
            return 1;
        }
        *(enum config_tls *)field(base, k->off) = (enum config_tls)iv;
        if (k->type == VT_TLS_OPT)
            *(bool *)field(base, k->off_n) = true;
        return 0;
    case VT_LOG:
        if (!enum_parse(log_names, value, &iv)) {
            config_err(ps, at, NULL, "invalid value '%s' for '%s' (use stderr or syslog)", value,
                       k->name);
            return 1;
        }
        *(enum config_log *)field(base, k->off) = (enum config_log)iv;
        return 0;
    case VT_DIRECTIO:
        if (!enum_parse(direct_io_names, value, &iv)) {
            config_err(ps, at, NULL, "invalid value '%s' for '%s' (use writes, off or on)", value,
                       k->name);
            return 1;
        }
        *(enum config_direct_io *)field(base, k->off) = (enum config_direct_io)iv;
        return 0;
    case VT_LOGLEVEL:
        if (!enum_parse(level_names, value, &iv)) {
            config_err(ps, at, NULL, "invalid value '%s' for '%s' (use err, warn, info or debug)",
                       value, k->name);
            return 1;
        }
        *(enum log_level *)field(base, k->off) = (enum log_level)iv;
        return 0;
    default:
        BUG("list key in set_scalar");
    }
}

/*
 * Applies `key = value` (OP_SET) or `key += value` / a continuation (OP_APPEND) to a section,
 * following the layer rules. 0 (applied or reported) or -ENOMEM; ps->last_key says which.
 */
int
config_apply_key(struct parse *ps, enum sec_type sec, const char *secname, const struct key_def *k,
                 const char *value, enum config_op op)
{
    ps->last_key = NULL;
    struct seen *s = config_seen_find(ps, sec, secname, k->name);
    if (!is_list(k) && op == OP_APPEND) {
        config_err(ps, &ps->at, NULL, "'%s' takes a single value: use '=', not '+='", k->name);
        return 0;
    }
    if (!is_list(k) && s != NULL && s->at.layer == LAYER_FILE && ps->at.layer == LAYER_FILE) {
        config_err(ps, &ps->at, NULL, "duplicate key '%s' (first set at line %d)", k->name,
                   s->at.line);
        return 0;
    }
    void *base = config_section_base(ps, sec, secname);
    if (base == NULL)
        return -ENOMEM;
    int rc;
    bool assigned = false; /* the list was replaced (or emptied) */
    size_t before = is_list(k) ? *(size_t *)field(base, k->off_n) : 0;
    if (!is_list(k)) {
        rc = set_scalar(ps, k, base, value);
    } else if (op == OP_SET && *value == '\0') {
        list_clear(k, base);
        rc = 0;
        assigned = true;
    } else {
        bool first = op == OP_SET && !(s != NULL && s->at.layer == ps->at.layer && s->list_set);
        if (first) {
            /* Append, then drop the inherited elements: a bad value leaves them intact. */
            size_t oldn = *(size_t *)field(base, k->off_n);
            rc = list_append(ps, k, base, value);
            if (rc == 0)
                list_drop_front(k, base, oldn);
            assigned = rc == 0;
        } else {
            rc = list_append(ps, k, base, value);
        }
    }
    if (rc < 0)
        return rc;
    if ((s = config_seen_get(ps, sec, secname, k->name)) == NULL)
        return -ENOMEM;
    if (s->at.layer != ps->at.layer)
        s->list_set = false;
    s->at = ps->at;
    s->list_set |= assigned;
    s->bad = rc != 0;
    if (is_list(k)) {
        /* One origin per element, so a bad element is reported where it was written. */
        size_t now = *(size_t *)field(base, k->off_n);
        size_t keep = assigned ? 0 : before;
        struct origin *v = realloc(s->elem, (now + 1) * sizeof(*v));
        if (v == NULL)
            return -ENOMEM;
        s->elem = v;
        for (size_t i = keep < s->nelem ? keep : s->nelem; i < now; i++)
            v[i] = ps->at;
        s->nelem = now;
    }
    if (rc == 0)
        ps->last_key = k;
    return 0;
}

/* A `name = value` line of the file or embedded default (name as inih split it). */
int
config_file_key(struct parse *ps, const char *rawname, const char *value)
{
    char name[CONFIG_LINE_MAX + 1];
    snprintf(name, sizeof(name), "%s", rawname);
    size_t len = strlen(name);
    enum config_op op = OP_SET;
    if (len > 0 && name[len - 1] == '+') {
        op = OP_APPEND;
        name[--len] = '\0';
        while (len > 0 && isspace((unsigned char)name[len - 1]))
            name[--len] = '\0';
    }
    ps->last_key = NULL;
    if (ps->sec_ignore)
        return 0;
    if (ps->sec == SEC_NONE) {
        config_err(ps, &ps->at, NULL, "key '%s' is outside any section (put a [section] above it)",
                   name);
        return 0;
    }
    const struct key_def *k = config_key_lookup(ps->sec, name);
    if (k == NULL) {
        config_unknown_key(ps, ps->sec, ps->sec_name, name);
        return 0;
    }
    return config_apply_key(ps, ps->sec, ps->sec_name, k, value, op);
}

/* An indented line continuing the key above it. */
int
config_file_continuation(struct parse *ps, const char *value)
{
    const struct key_def *k = ps->last_key;
    if (k == NULL)
        return 0; /* the key line was wrong and already reported */
    if (!is_list(k)) {
        config_err(ps, &ps->at, NULL,
                   "'%s' takes a single value; only lists (listen, vdevs) continue on indented "
                   "lines",
                   k->name);
        ps->last_key = NULL;
        return 0;
    }
    return config_apply_key(ps, ps->sec, ps->sec_name, k, value, OP_APPEND);
}
