/* SPDX-License-Identifier: MIT */
/*
 * lcpfs: the admin command of lcpfsd, in the manner of zpool(8)/zfs(8). This file: global
 * options, the verb table, the call to the daemon and the output helpers shared by the verbs.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <getopt.h>

#include "clients/lcpfs/cli.h"
#include "core/props.h"

#define DEFAULT_SOCKET "./lcpfs-data/lcpfsd.sock"

int
cli_usage(struct cli *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", c->prog);
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    return CLI_USAGE;
}

/* Writes all of buf; -errno. */
static int
write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -errno;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Reads one line (the response) into a new string. */
static char *
read_line(int fd)
{
    size_t cap = 4096, len = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (len + 1 == cap) {
            char *nb = realloc(buf, cap * 2);
            if (nb == NULL)
                break;
            buf = nb;
            cap *= 2;
        }
        ssize_t n = read(fd, buf + len, cap - 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        len += (size_t)n;
        buf[len] = 0;
        char *nl = memchr(buf, '\n', len);
        if (nl != NULL) {
            *nl = 0;
            return buf;
        }
    }
    free(buf);
    return NULL;
}

int
cli_call(struct cli *c, const char *verb, json_t *args, json_t **result)
{
    *result = NULL;
    json_t *req = json_object();
    json_object_set_new(req, "verb", json_string(verb));
    json_object_set_new(req, "args", args ? args : json_object());
    char *line = json_dumps(req, JSON_COMPACT);
    json_decref(req);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un sun = { .sun_family = AF_UNIX };
    if (line == NULL || fd < 0 || strlen(c->socket) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "%s: cannot reach the daemon at '%s'\n", c->prog, c->socket);
        free(line);
        if (fd >= 0)
            close(fd);
        return CLI_UNREACHABLE;
    }
    strcpy(sun.sun_path, c->socket);
    if (connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0) {
        fprintf(stderr,
                "%s: cannot reach lcpfsd at '%s': %s (is it running? --socket or "
                "LCPFS_SOCKET select another)\n",
                c->prog, c->socket, strerror(errno));
        free(line);
        close(fd);
        return CLI_UNREACHABLE;
    }
    int rc = write_all(fd, line, strlen(line));
    if (rc == 0)
        rc = write_all(fd, "\n", 1);
    free(line);
    char *resp = rc == 0 ? read_line(fd) : NULL;
    close(fd);
    if (resp == NULL) {
        fprintf(stderr, "%s: the daemon closed the connection without an answer\n", c->prog);
        return CLI_UNREACHABLE;
    }
    json_error_t jerr;
    json_t *r = json_loads(resp, 0, &jerr);
    free(resp);
    if (r == NULL || !json_is_object(r)) {
        fprintf(stderr, "%s: bad answer from the daemon: %s\n", c->prog, jerr.text);
        json_decref(r);
        return CLI_FAILED;
    }
    if (!json_is_true(json_object_get(r, "ok"))) {
        const char *msg = json_string_value(json_object_get(r, "error"));
        fprintf(stderr, "%s: %s\n", c->prog, msg ? msg : "operation failed");
        json_decref(r);
        return CLI_FAILED;
    }
    *result = json_incref(json_object_get(r, "result"));
    json_decref(r);
    return CLI_OK;
}

/* ---- output helpers ------------------------------------------------------------------------ */

void
table_init(struct table *t, const char **cols, size_t ncols)
{
    memset(t, 0, sizeof(*t));
    t->cols = cols;
    t->ncols = ncols;
}

void
table_add(struct table *t, const char *const *cells)
{
    if (t->nrows == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 16;
        t->rows = realloc(t->rows, t->cap * sizeof(*t->rows));
        if (t->rows == NULL) {
            perror("lcpfs");
            exit(CLI_FAILED);
        }
    }
    char **row = calloc(t->ncols, sizeof(char *));
    for (size_t i = 0; row != NULL && i < t->ncols; i++)
        row[i] = strdup(cells[i] ? cells[i] : "-");
    t->rows[t->nrows++] = row;
}

/* One line: aligned columns (the last one not padded), or tab-separated. */
static void
print_row(const struct table *t, const size_t *width, const char *const *cells, bool scripted)
{
    for (size_t c = 0; c < t->ncols; c++) {
        bool last = c + 1 == t->ncols;
        if (scripted || last)
            printf("%s%s", cells[c], last ? "\n" : "\t");
        else
            printf("%-*s  ", (int)width[c], cells[c]);
    }
}

void
table_print(const struct table *t, bool scripted)
{
    size_t width[64] = { 0 };
    for (size_t c = 0; c < t->ncols && c < 64; c++) {
        width[c] = strlen(t->cols[c]);
        for (size_t r = 0; r < t->nrows; r++)
            if (strlen(t->rows[r][c]) > width[c])
                width[c] = strlen(t->rows[r][c]);
    }
    if (!scripted)
        print_row(t, width, t->cols, false);
    for (size_t r = 0; r < t->nrows; r++)
        print_row(t, width, (const char *const *)t->rows[r], scripted);
}

void
table_free(struct table *t)
{
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++)
            free(t->rows[r][c]);
        free(t->rows[r]);
    }
    free(t->rows);
}

void
fmt_bytes(uint64_t v, bool parsable, char *buf, size_t len)
{
    if (props_format(PROP_USED, v, parsable, buf, len) != 0)
        snprintf(buf, len, "%llu", (unsigned long long)v);
}

char **
split_commas(const char *s, size_t *n)
{
    size_t cnt = 1;
    for (const char *p = s; *p; p++)
        cnt += *p == ',';
    char **v = calloc(cnt + 1, sizeof(char *));
    char *copy = strdup(s);
    *n = 0;
    if (v == NULL || copy == NULL) {
        free(v);
        free(copy);
        return NULL;
    }
    char *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save))
        v[(*n)++] = strdup(tok);
    free(copy);
    return v;
}

void
free_strv(char **v)
{
    for (size_t i = 0; v != NULL && v[i] != NULL; i++)
        free(v[i]);
    free(v);
}

int
props_add_assignment(struct cli *c, json_t *props, const char *assignment)
{
    const char *eq = strchr(assignment, '=');
    if (eq == NULL || eq == assignment)
        return cli_usage(c, "'%s' is not a property assignment (name=value)", assignment);
    char name[300];
    snprintf(name, sizeof(name), "%.*s", (int)(eq - assignment), assignment);
    json_object_set_new(props, name, json_string(eq + 1));
    return CLI_OK;
}

json_t *
by_name(json_t *array)
{
    json_t *by = json_object();
    size_t k;
    json_t *o;
    json_array_foreach(array, k, o)
        json_object_set(by, json_string_value(json_object_get(o, "name")), o);
    return by;
}

void
print_json(const char *command, const char *key, json_t *body)
{
    json_t *o = json_object();
    json_t *ver = json_object();
    json_object_set_new(ver, "command", json_string(command));
    json_object_set_new(ver, "vers_major", json_integer(0));
    json_object_set_new(ver, "vers_minor", json_integer(1));
    json_object_set_new(o, "output_version", ver);
    json_object_set_new(o, key, body);
    char *s = json_dumps(o, JSON_INDENT(2));
    if (s != NULL)
        printf("%s\n", s);
    free(s);
    json_decref(o);
}

/* ---- main -------------------------------------------------------------------------------- */

static const struct {
    const char *name;
    int (*fn)(struct cli *c, int argc, char **argv);
    const char *usage;
} verbs[] = {
    { "pool", cmd_pool,
      "pool create [-s size] [-o direct-io=writes|off|on] name [mirror|raidz[1-3]] dev... | "
      "import [-r] [-o direct-io=...] dev... | export [-f] name | list [-H] [-p] [-j] [name] | "
      "status [-v] [-x] [-j] [name] | add name dev... | "
      "scrub [-s|-p] name | offline name dev... | online name dev... | replace name old new | "
      "attach name dev new | detach name dev | clear name [dev]" },
    { "create", cmd_create, "create [-p] [-s] [-V size] [-b blocksize] [-o prop=value]... name" },
    { "destroy", cmd_destroy, "destroy [-r] [-R] [-f] name" },
    { "snapshot", cmd_snapshot, "snapshot dataset@name..." },
    { "clone", cmd_clone, "clone [-o prop=value]... snapshot name" },
    { "rollback", cmd_rollback, "rollback [-r] snapshot" },
    { "promote", cmd_promote, "promote clone" },
    { "rename", cmd_rename, "rename [-f] from to" },
    { "hold", cmd_hold, "hold tag snapshot..." },
    { "release", cmd_release, "release tag snapshot..." },
    { "holds", cmd_holds, "holds [-H] snapshot..." },
    { "bookmark", cmd_bookmark, "bookmark snapshot|bookmark dataset#name" },
    { "list", cmd_list, "list [-H] [-p] [-j] [-r] [-o col,...] [-t type,...] [name...]" },
    { "get", cmd_get, "get [-H] [-p] [-j] [-o field,...] all|prop[,prop...] name..." },
    { "set", cmd_set, "set prop=value... name" },
    { "inherit", cmd_inherit, "inherit [-S] prop name..." },
    { "exports", cmd_exports, "exports [-H] [-j]" },
};

static void
usage_all(FILE *f)
{
    fprintf(f, "usage: lcpfs [--socket PATH] [-j] VERB ...\n\nverbs:\n");
    for (size_t i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
        fprintf(f, "  lcpfs %s\n", verbs[i].usage);
    fprintf(f, "\nThe daemon's admin socket: --socket, else $LCPFS_SOCKET, else %s.\n",
            DEFAULT_SOCKET);
}

int
main(int argc, char **argv)
{
    struct cli c = { .prog = "lcpfs" };
    c.socket = getenv("LCPFS_SOCKET");
    if (c.socket == NULL || *c.socket == 0)
        c.socket = DEFAULT_SOCKET;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (strcmp(argv[i], "--socket") == 0 && i + 1 < argc) {
            c.socket = argv[++i];
        } else if (strncmp(argv[i], "--socket=", 9) == 0) {
            c.socket = argv[i] + 9;
        } else if (strcmp(argv[i], "-j") == 0 || strcmp(argv[i], "--json") == 0) {
            c.json = true;
        } else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            usage_all(stdout);
            return CLI_OK;
        } else {
            usage_all(stderr);
            return cli_usage(&c, "unknown option '%s'", argv[i]);
        }
    }
    if (i == argc) {
        usage_all(stderr);
        return CLI_USAGE;
    }
    for (size_t v = 0; v < sizeof(verbs) / sizeof(verbs[0]); v++)
        if (strcmp(argv[i], verbs[v].name) == 0) {
            optind = 1;
            int rc = verbs[v].fn(&c, argc - i, argv + i);
            if (rc == CLI_USAGE)
                fprintf(stderr, "usage: lcpfs %s\n", verbs[v].usage);
            return rc;
        }
    usage_all(stderr);
    return cli_usage(&c, "unknown verb '%s'", argv[i]);
}
