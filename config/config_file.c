/* SPDX-License-Identifier: MIT */
/*
 * config_file: reading INI text (the embedded default and the file) through inih, the -o
 * overrides, and config_load, which runs the layers in order (config.h "Layers").
 *
 * inih does the INI dialect (key/value splitting, comments, continuation lines). It reports only
 * the first syntax error and gives the handler no line number, so it reads through our own
 * ini_reader (file_read_line), which numbers the lines, reports every malformed line itself, and
 * hands inih each line normalised ("name=value", " continuation", "[s]" or a blank line). Our
 * reader mirrors inih's one piece of state (whether a key line came since the last header, which
 * makes an indented line a continuation), so the handler knows what each call is.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <ini.h>

#include "common/assert.h"
#include "common/err.h"
#include "config/config.h"
#include "config/config_impl.h"

#define CONFIG_FILE_MAX (1u << 20) /* a config file larger than this is refused */

/*
 * The embedded default (config.h "Layers"), parsed like a file. config/lcpfsd.conf is this text
 * with documentation; test_config checks that the two load to equal configs.
 */
static const char embedded_ini[] = "[server]\n"
                                   "data-dir = ./lcpfs-data\n"
                                   "admin-socket = lcpfsd.sock\n"
                                   "log = stderr\n"
                                   "log-level = info\n"
                                   "[nbd]\n"
                                   "listen = 127.0.0.1:10809\n"
                                   "unix = nbd.sock\n"
                                   "tls = off\n"
                                   "tls-cert =\n"
                                   "tls-key =\n"
                                   "tls-ca =\n"
                                   "tls-verify-peer = no\n"
                                   "tls-psk-file =\n"
                                   "default-export = vol0\n"
                                   "[pool tank]\n"
                                   "vdevs = tank.vdev\n"
                                   "create-size = 16G\n"
                                   "default-volume = vol0\n"
                                   "default-volume-size = 4G\n"
                                   "[nbd-export vol0]\n"
                                   "volume = tank/vol0\n"
                                   "readonly = no\n"
                                   "description =\n"
                                   "tls =\n";

/* ---- the reader in front of inih ------------------------------------------------------------- */

enum line_kind { LINE_OTHER, LINE_KEY, LINE_CONT };

struct file_reader {
    struct parse *ps;
    const char *buf;
    size_t len, pos;
    int lineno;
    bool prev_key;       /* mirrors inih's prev_name: a key line since the last header */
    enum line_kind kind; /* of the line last handed to inih */
    int rc;              /* first -ENOMEM */
};

/* Where an inline comment (whitespace then ';') or one of stop starts in s[0..n), else n. */
static size_t
find_stop(const char *s, size_t n, const char *stop)
{
    for (size_t i = 0; i < n; i++) {
        if (s[i] == ';' && i > 0 && isspace((unsigned char)s[i - 1]))
            return i;
        if (stop != NULL && strchr(stop, s[i]) != NULL)
            return i;
    }
    return n;
}

static void
trim(const char **s, size_t *n)
{
    while (*n > 0 && isspace((unsigned char)**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n > 0 && isspace((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

/*
 * Classifies one line (p, n) and writes what inih should see into out (room for n + 2 bytes,
 * checked by the caller). Malformed lines are reported here and become blank lines.
 */
static void
classify_line(struct file_reader *rd, const char *p, size_t n, char *out)
{
    struct parse *ps = rd->ps;
    const char *q = p;
    size_t m = n;
    trim(&q, &m);
    strcpy(out, "\n");
    rd->kind = LINE_OTHER;
    if (m == 0 || *q == ';' || *q == '#')
        return;
    if (rd->prev_key && q > p) {
        m = find_stop(q, m, NULL);
        trim(&q, &m);
        sprintf(out, " %.*s\n", (int)m, q);
        rd->kind = LINE_CONT;
        return;
    }
    if (*q == '[') {
        size_t close = find_stop(q + 1, m - 1, "]") + 1;
        if (close >= m || q[close] != ']') {
            config_err(ps, &ps->at, NULL, "missing ']' in section header");
            ps->sec = SEC_NONE;
            ps->sec_ignore = true;
            ps->last_key = NULL;
            return;
        }
        const char *rest = q + close + 1;
        size_t rn = m - close - 1;
        trim(&rest, &rn);
        if (rn > 0 && *rest != ';' && *rest != '#') {
            config_err(ps, &ps->at, NULL, "unexpected text after ']'");
            ps->sec = SEC_NONE;
            ps->sec_ignore = true;
            ps->last_key = NULL;
            return;
        }
        int rc = config_begin_section(ps, q + 1, close - 1);
        if (rc != 0 && rd->rc == 0)
            rd->rc = rc;
        strcpy(out, "[s]\n");
        rd->prev_key = false;
        return;
    }
    size_t delim = find_stop(q, m, "=:");
    if (delim >= m || (q[delim] != '=' && q[delim] != ':')) {
        config_err(ps, &ps->at, NULL, "expected 'key = value', '[section]' or a comment");
        ps->last_key = NULL;
        return;
    }
    const char *name = q;
    size_t namelen = delim;
    trim(&name, &namelen);
    if (namelen == 0) {
        config_err(ps, &ps->at, NULL, "missing key before '%c'", q[delim]);
        ps->last_key = NULL;
        return;
    }
    const char *value = q + delim + 1;
    size_t vlen = find_stop(value, m - delim - 1, NULL);
    trim(&value, &vlen);
    sprintf(out, "%.*s=%.*s\n", (int)namelen, name, (int)vlen, value);
    rd->kind = LINE_KEY;
    rd->prev_key = true;
}

/* ini_reader: hands inih the next line, normalised (see the top of this file). */
static char *
file_read_line(char *out, int num, void *stream)
{
    struct file_reader *rd = stream;
    struct parse *ps = rd->ps;
    if (rd->pos >= rd->len)
        return NULL;
    const char *p = rd->buf + rd->pos;
    const char *nl = memchr(p, '\n', rd->len - rd->pos);
    size_t n = nl ? (size_t)(nl - p) : rd->len - rd->pos;
    rd->pos += n + (nl != NULL);
    ps->at.line = ++rd->lineno;
    if (n > 0 && p[n - 1] == '\r')
        n--;
    if (rd->lineno == 1 && n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3;
        n -= 3;
    }
    size_t max = num - 2 < CONFIG_LINE_MAX ? (size_t)num - 2 : CONFIG_LINE_MAX;
    rd->kind = LINE_OTHER;
    strcpy(out, "\n");
    size_t ctl = 0;
    while (ctl < n && ((unsigned char)p[ctl] >= 0x20 || p[ctl] == '\t') && p[ctl] != 0x7f)
        ctl++;
    if (ctl < n) {
        config_err(ps, &ps->at, NULL, "line contains a control character (0x%02x)",
                   (unsigned)(unsigned char)p[ctl]);
        ps->last_key = NULL;
    } else if (n > max) {
        config_err(ps, &ps->at, NULL, "line too long (%zu characters, at most %zu)", n, max);
        ps->last_key = NULL;
    } else {
        classify_line(rd, p, n, out);
    }
    return out;
}

static int
on_ini_pair(void *user, const char *section, const char *name, const char *value)
{
    struct file_reader *rd = user;
    (void)section; /* our own section state (config_begin_section) is authoritative */
    int rc = 0;
    if (rd->kind == LINE_KEY)
        rc = config_file_key(rd->ps, name, value);
    else if (rd->kind == LINE_CONT)
        rc = config_file_continuation(rd->ps, value);
    if (rc != 0 && rd->rc == 0)
        rd->rc = rc;
    return 1;
}

/* Parses INI text as layer `layer`. 0 or -ENOMEM (errors in the text go to ps). */
static int
parse_text(struct parse *ps, const char *buf, size_t len, enum layer layer)
{
    struct file_reader rd = { .ps = ps, .buf = buf, .len = len };
    ps->at = (struct origin){ .layer = layer };
    ps->sec = SEC_NONE;
    ps->sec_ignore = false;
    ps->last_key = NULL;
    free(ps->sec_name);
    ps->sec_name = NULL;
    int r = ini_parse_stream(file_read_line, &rd, on_ini_pair, &rd);
    if (r < 0 && rd.rc == 0)
        rd.rc = -ENOMEM;
    else if (r > 0) {
        /* Our reader hands inih only well-formed lines; disagreeing means a dialect change. */
        struct origin at = { .layer = layer, .line = r };
        config_err(ps, &at, NULL, "syntax error");
    }
    free(ps->sec_name);
    ps->sec_name = NULL;
    return rd.rc;
}

/* Reads fd to the end into a malloc'd buffer. 0, -EFBIG (over CONFIG_FILE_MAX), or -errno. */
static int
slurp(int fd, char **out, size_t *len)
{
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (buf == NULL)
        return -ENOMEM;
    for (;;) {
        if (n == cap) {
            char *b = realloc(buf, cap * 2);
            if (b == NULL) {
                free(buf);
                return -ENOMEM;
            }
            buf = b;
            cap *= 2;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 || n + (size_t)r > CONFIG_FILE_MAX) {
            int rc = r < 0 ? -errno : -EFBIG;
            free(buf);
            return rc;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    *out = buf;
    *len = n;
    return 0;
}

/* Reads the whole file. 0, -ENOMEM, or a negative errno with one message recorded. */
static int
read_file(struct parse *ps, const char *path, char **out, size_t *len)
{
    *out = NULL;
    int rc;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0)
        rc = -errno;
    else if (S_ISDIR(st.st_mode))
        rc = -EISDIR;
    else
        rc = slurp(fd, out, len);
    if (fd >= 0)
        close(fd);
    if (rc == 0 || rc == -ENOMEM)
        return rc;
    char *msg = NULL;
    int r = rc == -EFBIG
                ? asprintf(&msg, "%s: cannot read: larger than %u bytes", path, CONFIG_FILE_MAX)
                : asprintf(&msg, "%s: cannot read: %s", path, err_str(rc));
    config_errs_push(ps, r < 0 ? NULL : msg);
    return rc;
}

/* ---- overrides ------------------------------------------------------------------------------ */

/* `section.key=value` or `section.key+=value`. 0 or -ENOMEM (errors go to ps). */
static int
apply_override(struct parse *ps, size_t i)
{
    const char *s = ps->ovr[i];
    ps->at = (struct origin){ .layer = LAYER_OVERRIDE, .ovr = i };
    const char *eq = strchr(s, '=');
    const char *dot = eq ? memrchr(s, '.', (size_t)(eq - s)) : NULL;
    if (eq == NULL || dot == NULL || dot == s) {
        config_err(ps, &ps->at, NULL, "expected section.key=value");
        return 0;
    }
    enum config_op op = eq > s && eq[-1] == '+' ? OP_APPEND : OP_SET;
    const char *keyp = dot + 1;
    size_t keylen = (size_t)(eq - keyp) - (op == OP_APPEND);
    trim(&keyp, &keylen);
    const char *typep = s;
    size_t seclen = (size_t)(dot - s);
    trim(&typep, &seclen);
    const char *tdot = memchr(typep, '.', seclen);
    size_t typelen = tdot ? (size_t)(tdot - typep) : seclen;
    char *name = tdot ? strndup(tdot + 1, seclen - typelen - 1) : NULL;
    char *key = strndup(keyp, keylen);
    int rc = 0;
    if ((tdot != NULL && name == NULL) || key == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    if (!config_section_check(ps, typep, typelen, name, true))
        goto out;
    enum sec_type sec = config_sec_lookup(typep, typelen);
    const struct key_def *k = config_key_lookup(sec, key);
    if (k == NULL) {
        config_unknown_key(ps, sec, name, key);
        goto out;
    }
    const char *value = eq + 1;
    size_t vlen = strlen(value);
    trim(&value, &vlen);
    for (size_t j = 0; j < vlen; j++) {
        if (((unsigned char)value[j] < 0x20 && value[j] != '\t') || value[j] == 0x7f) {
            config_err(ps, &ps->at, NULL, "value contains a control character");
            goto out;
        }
    }
    char *v = strndup(value, vlen);
    if (v == NULL) {
        rc = -ENOMEM;
        goto out;
    }
    if (config_has_comment_start(v)) {
        config_err(ps, &ps->at, NULL,
                   "value starts with ';' or contains ' ;', which starts a comment in a file");
        free(v);
        goto out;
    }
    if (config_seen_find(ps, sec, name, NULL) == NULL) {
        struct seen *sn = config_seen_get(ps, sec, name, NULL);
        if (sn == NULL || config_section_base(ps, sec, name) == NULL) {
            free(v);
            rc = -ENOMEM;
            goto out;
        }
    }
    rc = config_apply_key(ps, sec, name, k, v, op);
    free(v);
out:
    free(name);
    free(key);
    return rc;
}

/* ---- load ----------------------------------------------------------------------------------- */

int
config_load(struct lcpfs_config *cfg, const char *path, const char *const *overrides, size_t n,
            struct config_errors *errs)
{
    memset(cfg, 0, sizeof(*cfg));
    if (errs != NULL)
        memset(errs, 0, sizeof(*errs));
    struct parse ps = { .cfg = cfg, .errs = errs, .path = path, .ovr = overrides };
    char *text = NULL;
    int rc = parse_text(&ps, embedded_ini, sizeof(embedded_ini) - 1, LAYER_DEFAULT);
    VERIFY(ps.nerr == 0 || ps.nomem); /* the embedded default is valid */
    if (rc == 0 && path != NULL) {
        size_t len = 0;
        rc = read_file(&ps, path, &text, &len);
        if (rc == 0)
            rc = parse_text(&ps, text, len, LAYER_FILE);
    }
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = apply_override(&ps, i);
    if (rc == 0)
        rc = config_validate(&ps);
    if (rc == 0 && ps.nomem)
        rc = -ENOMEM;
    if (rc == 0 && ps.nerr > 0)
        rc = -EINVAL;
    free(text);
    for (size_t i = 0; i < ps.nseen; i++) {
        free(ps.seen[i].name);
        free(ps.seen[i].elem);
    }
    free(ps.seen);
    free(ps.sec_name);
    if (rc != 0)
        config_free(cfg);
    return rc;
}

int
config_defaults(struct lcpfs_config *cfg)
{
    return config_load(cfg, NULL, NULL, 0, NULL);
}
