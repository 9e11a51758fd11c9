/* SPDX-License-Identifier: MIT */
/*
 * ds_cmds: the dataset verbs of `lcpfs` (create, destroy, snapshot, clone, rollback, promote,
 * rename, holds, bookmarks, list, get, set, inherit) — argument parsing and output; the work is
 * done by the daemon (server/admin_verbs.c).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <getopt.h>

#include "clients/lcpfs/cli.h"
#include "core/props.h"

/* Runs a verb whose result is null; prints nothing on success. */
static int
simple(struct cli *c, const char *verb, json_t *args)
{
    json_t *r;
    int rc = cli_call(c, verb, args, &r);
    json_decref(r);
    return rc;
}

int
cmd_create(struct cli *c, int argc, char **argv)
{
    json_t *args = json_object(), *props = json_object();
    int opt, rc = CLI_OK;
    while (rc == CLI_OK && (opt = getopt(argc, argv, "psV:b:o:")) != -1) {
        switch (opt) {
        case 'p':
            json_object_set_new(args, "parents", json_true());
            break;
        case 's':
            json_object_set_new(args, "sparse", json_true());
            break;
        case 'V':
            json_object_set_new(args, "volume", json_true());
            json_object_set_new(props, "volsize", json_string(optarg));
            break;
        case 'b':
            json_object_set_new(props, "volblocksize", json_string(optarg));
            break;
        case 'o':
            rc = props_add_assignment(c, props, optarg);
            break;
        default:
            rc = CLI_USAGE;
        }
    }
    if (rc == CLI_OK && optind + 1 != argc)
        rc = cli_usage(c, "create takes one dataset name");
    if (rc == CLI_OK && json_object_get(args, "volume") == NULL &&
        json_object_get(props, "volblocksize") != NULL)
        rc = cli_usage(c, "-b applies to volumes (-V size)");
    if (rc != CLI_OK) {
        json_decref(args);
        json_decref(props);
        return rc;
    }
    json_object_set_new(args, "name", json_string(argv[optind]));
    json_object_set_new(args, "props", props);
    return simple(c, "create", args);
}

int
cmd_destroy(struct cli *c, int argc, char **argv)
{
    json_t *args = json_object();
    int opt;
    while ((opt = getopt(argc, argv, "rRf")) != -1) {
        const char *key = opt == 'r'   ? "recursive"
                          : opt == 'R' ? "clones"
                          : opt == 'f' ? "force"
                                       : NULL;
        if (key == NULL) {
            json_decref(args);
            return CLI_USAGE;
        }
        json_object_set_new(args, key, json_true());
    }
    if (optind + 1 != argc) {
        json_decref(args);
        return cli_usage(c, "destroy takes one name");
    }
    json_object_set_new(args, "name", json_string(argv[optind]));
    return simple(c, "destroy", args);
}

int
cmd_snapshot(struct cli *c, int argc, char **argv)
{
    if (argc < 2)
        return cli_usage(c, "snapshot needs at least one dataset@name");
    json_t *names = json_array();
    for (int i = 1; i < argc; i++) {
        if (strchr(argv[i], '@') == NULL) {
            json_decref(names);
            return cli_usage(c, "'%s' is not a snapshot name (dataset@name)", argv[i]);
        }
        json_array_append_new(names, json_string(argv[i]));
    }
    json_t *args = json_object();
    json_object_set_new(args, "names", names);
    return simple(c, "snapshot", args);
}

int
cmd_clone(struct cli *c, int argc, char **argv)
{
    json_t *props = json_object();
    int opt, rc = CLI_OK;
    while (rc == CLI_OK && (opt = getopt(argc, argv, "o:")) != -1)
        rc = opt == 'o' ? props_add_assignment(c, props, optarg) : CLI_USAGE;
    if (rc == CLI_OK && optind + 2 != argc)
        rc = cli_usage(c, "clone takes a snapshot and a new name");
    if (rc != CLI_OK) {
        json_decref(props);
        return rc;
    }
    json_t *args = json_object();
    json_object_set_new(args, "snapshot", json_string(argv[optind]));
    json_object_set_new(args, "name", json_string(argv[optind + 1]));
    json_object_set_new(args, "props", props);
    return simple(c, "clone", args);
}

int
cmd_rollback(struct cli *c, int argc, char **argv)
{
    bool r = false;
    int opt;
    while ((opt = getopt(argc, argv, "r")) != -1) {
        if (opt != 'r')
            return CLI_USAGE;
        r = true;
    }
    if (optind + 1 != argc)
        return cli_usage(c, "rollback takes one snapshot");
    json_t *args = json_object();
    json_object_set_new(args, "snapshot", json_string(argv[optind]));
    json_object_set_new(args, "recursive", json_boolean(r));
    return simple(c, "rollback", args);
}

int
cmd_promote(struct cli *c, int argc, char **argv)
{
    if (argc != 2)
        return cli_usage(c, "promote takes one clone");
    json_t *args = json_object();
    json_object_set_new(args, "name", json_string(argv[1]));
    return simple(c, "promote", args);
}

int
cmd_rename(struct cli *c, int argc, char **argv)
{
    bool force = false;
    int opt;
    while ((opt = getopt(argc, argv, "f")) != -1) {
        if (opt != 'f')
            return CLI_USAGE;
        force = true;
    }
    if (optind + 2 != argc)
        return cli_usage(c, "rename takes two names");
    json_t *args = json_object();
    json_object_set_new(args, "from", json_string(argv[optind]));
    json_object_set_new(args, "to", json_string(argv[optind + 1]));
    json_object_set_new(args, "force", json_boolean(force));
    return simple(c, "rename", args);
}

static int
hold_verb(struct cli *c, int argc, char **argv, const char *verb)
{
    if (argc < 3)
        return cli_usage(c, "%s takes a tag and at least one snapshot", verb);
    for (int i = 2; i < argc; i++) {
        json_t *args = json_object();
        json_object_set_new(args, "tag", json_string(argv[1]));
        json_object_set_new(args, "snapshot", json_string(argv[i]));
        int rc = simple(c, verb, args);
        if (rc != CLI_OK)
            return rc;
    }
    return CLI_OK;
}

int
cmd_hold(struct cli *c, int argc, char **argv)
{
    return hold_verb(c, argc, argv, "hold");
}

int
cmd_release(struct cli *c, int argc, char **argv)
{
    return hold_verb(c, argc, argv, "release");
}

static void
fmt_time(uint64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    localtime_r(&tt, &tm);
    strftime(buf, len, "%a %b %e %H:%M %Y", &tm);
}

int
cmd_holds(struct cli *c, int argc, char **argv)
{
    bool scripted = false;
    int opt;
    while ((opt = getopt(argc, argv, "H")) != -1) {
        if (opt != 'H')
            return CLI_USAGE;
        scripted = true;
    }
    if (optind >= argc)
        return cli_usage(c, "holds takes at least one snapshot");
    const char *cols[] = { "NAME", "TAG", "TIMESTAMP" };
    struct table t;
    table_init(&t, cols, 3);
    int rc = CLI_OK;
    for (int i = optind; i < argc && rc == CLI_OK; i++) {
        json_t *args = json_object(), *r;
        json_object_set_new(args, "snapshot", json_string(argv[i]));
        rc = cli_call(c, "holds", args, &r);
        size_t k;
        json_t *h;
        json_array_foreach(r, k, h)
        {
            char ts[64];
            fmt_time((uint64_t)json_integer_value(json_object_get(h, "time")), ts, sizeof(ts));
            const char *row[] = { argv[i], json_string_value(json_object_get(h, "tag")), ts };
            table_add(&t, row);
        }
        json_decref(r);
    }
    if (rc == CLI_OK)
        table_print(&t, scripted);
    table_free(&t);
    return rc;
}

int
cmd_bookmark(struct cli *c, int argc, char **argv)
{
    if (argc != 3)
        return cli_usage(c, "bookmark takes a snapshot (or bookmark) and a bookmark name");
    json_t *args = json_object();
    json_object_set_new(args, "source", json_string(argv[1]));
    json_object_set_new(args, "name", json_string(argv[2]));
    return simple(c, "bookmark", args);
}

/* ---- list ------------------------------------------------------------------------------------ */

struct column {
    const char *name;   /* -o name */
    const char *header; /* column header */
    const char *field;  /* JSON field of the list result */
    enum { COL_STR, COL_BYTES, COL_NUM, COL_RATIO, COL_TIME } kind;
};

static const struct column columns[] = {
    { "name", "NAME", "name", COL_STR },
    { "type", "TYPE", "type", COL_STR },
    { "used", "USED", "used", COL_BYTES },
    { "avail", "AVAIL", "available", COL_BYTES },
    { "available", "AVAIL", "available", COL_BYTES },
    { "refer", "REFER", "referenced", COL_BYTES },
    { "referenced", "REFER", "referenced", COL_BYTES },
    { "written", "WRITTEN", "written", COL_BYTES },
    { "usedds", "USEDDS", "usedbydataset", COL_BYTES },
    { "usedbydataset", "USEDDS", "usedbydataset", COL_BYTES },
    { "usedsnap", "USEDSNAP", "usedbysnapshots", COL_BYTES },
    { "usedbysnapshots", "USEDSNAP", "usedbysnapshots", COL_BYTES },
    { "usedchild", "USEDCHILD", "usedbychildren", COL_BYTES },
    { "usedbychildren", "USEDCHILD", "usedbychildren", COL_BYTES },
    { "usedrefreserv", "USEDREFRESERV", "usedbyrefreservation", COL_BYTES },
    { "usedbyrefreservation", "USEDREFRESERV", "usedbyrefreservation", COL_BYTES },
    { "lused", "LUSED", "logicalused", COL_BYTES },
    { "logicalused", "LUSED", "logicalused", COL_BYTES },
    { "lrefer", "LREFER", "logicalreferenced", COL_BYTES },
    { "logicalreferenced", "LREFER", "logicalreferenced", COL_BYTES },
    { "ratio", "RATIO", "compressratio", COL_RATIO },
    { "compressratio", "RATIO", "compressratio", COL_RATIO },
    { "volsize", "VOLSIZE", "volsize", COL_BYTES },
    { "volblocksize", "VOLBLOCK", "volblocksize", COL_BYTES },
    { "origin", "ORIGIN", "origin", COL_STR },
    { "creation", "CREATION", "creation", COL_TIME },
    { "createtxg", "CREATETXG", "createtxg", COL_NUM },
    { "guid", "GUID", "guid", COL_NUM },
    { "userrefs", "USERREFS", "userrefs", COL_NUM },
    { "clones", "CLONES", "clones", COL_NUM },
};

static const struct column *
find_column(const char *name)
{
    for (size_t i = 0; i < sizeof(columns) / sizeof(columns[0]); i++)
        if (strcmp(columns[i].name, name) == 0)
            return &columns[i];
    return NULL;
}

static void
cell(const struct column *col, json_t *o, bool parsable, char *buf, size_t len)
{
    json_t *v = json_object_get(o, col->field);
    const char *type = json_string_value(json_object_get(o, "type"));
    bool head = type != NULL && (!strcmp(type, "filesystem") || !strcmp(type, "volume"));
    if (!head && strcmp(col->field, "available") == 0)
        v = NULL; /* snapshots and bookmarks have no space of their own to fill */
    if (v == NULL || json_is_null(v)) {
        snprintf(buf, len, "-");
        return;
    }
    uint64_t n = (uint64_t)json_integer_value(v);
    switch (col->kind) {
    case COL_STR:
        snprintf(buf, len, "%s", json_string_value(v) ? json_string_value(v) : "-");
        break;
    case COL_BYTES:
        fmt_bytes(n, parsable, buf, len);
        break;
    case COL_RATIO:
        props_format(PROP_COMPRESSRATIO, n, parsable, buf, len);
        break;
    case COL_TIME:
        if (parsable)
            snprintf(buf, len, "%llu", (unsigned long long)n);
        else
            fmt_time(n, buf, len);
        break;
    default:
        snprintf(buf, len, "%llu", (unsigned long long)n);
    }
}

int
cmd_list(struct cli *c, int argc, char **argv)
{
    bool scripted = false, parsable = false, recursive = false;
    const char *cols_arg = "name,used,avail,refer", *types = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "HprjO:o:t:")) != -1) {
        switch (opt) {
        case 'H':
            scripted = true;
            break;
        case 'p':
            parsable = true;
            break;
        case 'r':
            recursive = true;
            break;
        case 'j':
            c->json = true;
            break;
        case 'o':
            cols_arg = optarg;
            break;
        case 't':
            types = optarg;
            break;
        default:
            return CLI_USAGE;
        }
    }
    size_t ncols;
    char **cnames = split_commas(cols_arg, &ncols);
    const struct column *cols[64];
    const char *headers[64];
    if (cnames == NULL || ncols == 0 || ncols > 64) {
        free_strv(cnames);
        return cli_usage(c, "bad column list '%s'", cols_arg);
    }
    for (size_t i = 0; i < ncols; i++) {
        cols[i] = find_column(cnames[i]);
        if (cols[i] == NULL) {
            int rc = cli_usage(c, "unknown column '%s'", cnames[i]);
            free_strv(cnames);
            return rc;
        }
        headers[i] = cols[i]->header;
    }
    json_t *tarr = NULL;
    if (types != NULL) {
        size_t nt;
        char **tv = split_commas(types, &nt);
        tarr = json_array();
        for (size_t i = 0; tv != NULL && i < nt; i++)
            json_array_append_new(tarr, json_string(tv[i]));
        free_strv(tv);
    }
    json_t *all = json_array();
    int rc = CLI_OK;
    for (int i = optind; rc == CLI_OK && i <= argc; i++) {
        if (i == argc && optind < argc)
            break;
        json_t *args = json_object(), *r = NULL;
        if (i < argc)
            json_object_set_new(args, "name", json_string(argv[i]));
        json_object_set_new(args, "recursive", json_boolean(recursive));
        if (tarr != NULL)
            json_object_set(args, "types", tarr);
        rc = cli_call(c, "list", args, &r);
        if (rc == CLI_OK)
            json_array_extend(all, r);
        json_decref(r);
    }
    json_decref(tarr);
    if (rc == CLI_OK && c->json) {
        print_json("lcpfs list", "datasets", by_name(all));
    } else if (rc == CLI_OK) {
        struct table t;
        table_init(&t, headers, ncols);
        size_t k;
        json_t *o;
        json_array_foreach(all, k, o)
        {
            char bufs[64][512];
            const char *row[64];
            for (size_t ci = 0; ci < ncols; ci++) {
                cell(cols[ci], o, parsable, bufs[ci], sizeof(bufs[ci]));
                row[ci] = bufs[ci];
            }
            table_add(&t, row);
        }
        table_print(&t, scripted);
        table_free(&t);
    }
    json_decref(all);
    free_strv(cnames);
    return rc;
}

/* ---- get / set / inherit --------------------------------------------------------------------- */

int
cmd_get(struct cli *c, int argc, char **argv)
{
    bool scripted = false, parsable = false;
    const char *fields = "name,property,value,source";
    int opt;
    while ((opt = getopt(argc, argv, "Hpjo:")) != -1) {
        switch (opt) {
        case 'H':
            scripted = true;
            break;
        case 'p':
            parsable = true;
            break;
        case 'j':
            c->json = true;
            break;
        case 'o':
            fields = optarg;
            break;
        default:
            return CLI_USAGE;
        }
    }
    if (optind + 2 > argc)
        return cli_usage(c, "get takes a property list (or all) and at least one name");
    size_t nf, np;
    char **fv = split_commas(fields, &nf);
    char **pv = split_commas(argv[optind], &np);
    const char *headers[4];
    int rc = CLI_OK;
    for (size_t i = 0; i < nf && rc == CLI_OK; i++) {
        if (i >= 4 || (strcmp(fv[i], "name") && strcmp(fv[i], "property") &&
                       strcmp(fv[i], "value") && strcmp(fv[i], "source")))
            rc = cli_usage(c, "unknown field '%s' (name, property, value, source)", fv[i]);
        else
            headers[i] = !strcmp(fv[i], "name")       ? "NAME"
                         : !strcmp(fv[i], "property") ? "PROPERTY"
                         : !strcmp(fv[i], "value")    ? "VALUE"
                                                      : "SOURCE";
    }
    json_t *all = json_array();
    for (int i = optind + 1; i < argc && rc == CLI_OK; i++) {
        json_t *args = json_object(), *props = json_array(), *r = NULL;
        for (size_t k = 0; k < np; k++)
            json_array_append_new(props, json_string(pv[k]));
        json_object_set_new(args, "name", json_string(argv[i]));
        json_object_set_new(args, "props", props);
        json_object_set_new(args, "parsable", json_boolean(parsable));
        rc = cli_call(c, "get", args, &r);
        if (rc == CLI_OK)
            json_array_extend(all, r);
        json_decref(r);
    }
    if (rc == CLI_OK && c->json) {
        print_json("lcpfs get", "properties", json_incref(all));
    } else if (rc == CLI_OK) {
        struct table t;
        table_init(&t, headers, nf);
        size_t k;
        json_t *o;
        json_array_foreach(all, k, o)
        {
            const char *row[4];
            for (size_t fi = 0; fi < nf; fi++)
                row[fi] = json_string_value(json_object_get(o, fv[fi]));
            table_add(&t, row);
        }
        table_print(&t, scripted);
        table_free(&t);
    }
    json_decref(all);
    free_strv(fv);
    free_strv(pv);
    return rc;
}

int
cmd_set(struct cli *c, int argc, char **argv)
{
    if (argc < 3)
        return cli_usage(c, "set takes prop=value... and a name");
    json_t *props = json_object();
    for (int i = 1; i < argc - 1; i++) {
        int rc = props_add_assignment(c, props, argv[i]);
        if (rc != CLI_OK) {
            json_decref(props);
            return rc;
        }
    }
    json_t *args = json_object();
    json_object_set_new(args, "name", json_string(argv[argc - 1]));
    json_object_set_new(args, "props", props);
    return simple(c, "set", args);
}

int
cmd_inherit(struct cli *c, int argc, char **argv)
{
    bool received = false;
    int opt;
    while ((opt = getopt(argc, argv, "S")) != -1) {
        if (opt != 'S')
            return CLI_USAGE;
        received = true;
    }
    if (optind + 2 > argc)
        return cli_usage(c, "inherit takes a property and at least one name");
    for (int i = optind + 1; i < argc; i++) {
        json_t *args = json_object();
        json_object_set_new(args, "name", json_string(argv[i]));
        json_object_set_new(args, "prop", json_string(argv[optind]));
        json_object_set_new(args, "received", json_boolean(received));
        int rc = simple(c, "inherit", args);
        if (rc != CLI_OK)
            return rc;
    }
    return CLI_OK;
}

int
cmd_exports(struct cli *c, int argc, char **argv)
{
    bool scripted = false;
    int opt;
    while ((opt = getopt(argc, argv, "Hj")) != -1) {
        if (opt == 'H')
            scripted = true;
        else if (opt == 'j')
            c->json = true;
        else
            return CLI_USAGE;
    }
    json_t *r;
    int rc = cli_call(c, "exports", json_object(), &r);
    if (rc != CLI_OK)
        return rc;
    if (c->json) {
        print_json("lcpfs exports", "exports", r);
        return CLI_OK;
    }
    const char *cols[] = { "EXPORT", "VOLUME", "READONLY", "CLIENTS", "DESCRIPTION" };
    struct table t;
    table_init(&t, cols, 5);
    size_t k;
    json_t *o;
    json_array_foreach(r, k, o)
    {
        char clients[32];
        snprintf(clients, sizeof(clients), "%lld",
                 (long long)json_integer_value(json_object_get(o, "clients")));
        const char *row[] = { json_string_value(json_object_get(o, "name")),
                              json_string_value(json_object_get(o, "volume")),
                              json_is_true(json_object_get(o, "readonly")) ? "yes" : "no", clients,
                              json_string_value(json_object_get(o, "description")) };
        table_add(&t, row);
    }
    table_print(&t, scripted);
    table_free(&t);
    json_decref(r);
    return CLI_OK;
}
