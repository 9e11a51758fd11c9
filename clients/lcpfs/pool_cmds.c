/* SPDX-License-Identifier: MIT */
/*
 * pool_cmds: `lcpfs pool create|import|export|list|status|add`, output in the shape of
 * zpool(8) (list table, status tree with READ WRITE CKSUM and an errors: line).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <getopt.h>

#include "clients/lcpfs/cli.h"
#include "core/props.h"

/* The daemon may run elsewhere in the file system: send absolute paths. */
static json_t *
abs_paths(char **v, int n)
{
    json_t *arr = json_array();
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        cwd[0] = 0;
    for (int i = 0; i < n; i++) {
        char buf[PATH_MAX * 2];
        if (v[i][0] == '/')
            snprintf(buf, sizeof(buf), "%s", v[i]);
        else
            snprintf(buf, sizeof(buf), "%s/%s", cwd, v[i]);
        json_array_append_new(arr, json_string(buf));
    }
    return arr;
}

static int
pool_create(struct cli *c, int argc, char **argv)
{
    const char *size = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "s:")) != -1) {
        if (opt != 's')
            return CLI_USAGE;
        size = optarg;
    }
    if (optind + 2 > argc)
        return cli_usage(c, "pool create takes a name and at least one device or file");
    json_t *args = json_object();
    json_object_set_new(args, "name", json_string(argv[optind]));
    json_object_set_new(args, "vdevs", abs_paths(argv + optind + 1, argc - optind - 1));
    if (size != NULL) {
        uint64_t bytes;
        char err[128];
        if (props_parse(PROP_VOLSIZE, size, &bytes, err, sizeof(err)) != 0) {
            json_decref(args);
            return cli_usage(c, "-s %s: %s", size, err);
        }
        json_object_set_new(args, "size", json_integer((json_int_t)bytes));
    }
    json_t *r;
    int rc = cli_call(c, "pool.create", args, &r);
    json_decref(r);
    return rc;
}

static int
pool_import(struct cli *c, int argc, char **argv)
{
    bool ro = false;
    int opt;
    while ((opt = getopt(argc, argv, "r")) != -1) {
        if (opt != 'r')
            return CLI_USAGE;
        ro = true;
    }
    if (optind >= argc)
        return cli_usage(c, "pool import takes the pool's devices or files");
    json_t *args = json_object(), *r;
    json_object_set_new(args, "vdevs", abs_paths(argv + optind, argc - optind));
    json_object_set_new(args, "readonly", json_boolean(ro));
    int rc = cli_call(c, "pool.import", args, &r);
    if (rc == CLI_OK && json_is_string(r))
        printf("imported pool '%s'\n", json_string_value(r));
    json_decref(r);
    return rc;
}

static int
pool_export(struct cli *c, int argc, char **argv)
{
    bool force = false;
    int opt;
    while ((opt = getopt(argc, argv, "f")) != -1) {
        if (opt != 'f')
            return CLI_USAGE;
        force = true;
    }
    if (optind + 1 != argc)
        return cli_usage(c, "pool export takes one pool");
    json_t *args = json_object(), *r;
    json_object_set_new(args, "name", json_string(argv[optind]));
    json_object_set_new(args, "force", json_boolean(force));
    int rc = cli_call(c, "pool.export", args, &r);
    json_decref(r);
    return rc;
}

static int
pool_add(struct cli *c, int argc, char **argv)
{
    if (argc < 3)
        return cli_usage(c, "pool add takes a pool and at least one device or file");
    json_t *args = json_object(), *r;
    json_object_set_new(args, "name", json_string(argv[1]));
    json_object_set_new(args, "vdevs", abs_paths(argv + 2, argc - 2));
    int rc = cli_call(c, "pool.add", args, &r);
    json_decref(r);
    return rc;
}

static uint64_t
num(json_t *o, const char *key)
{
    return (uint64_t)json_integer_value(json_object_get(o, key));
}

static int
pool_list(struct cli *c, int argc, char **argv)
{
    bool scripted = false, parsable = false;
    int opt;
    while ((opt = getopt(argc, argv, "Hpj")) != -1) {
        if (opt == 'H')
            scripted = true;
        else if (opt == 'p')
            parsable = true;
        else if (opt == 'j')
            c->json = true;
        else
            return CLI_USAGE;
    }
    json_t *args = json_object(), *r;
    if (optind < argc)
        json_object_set_new(args, "name", json_string(argv[optind]));
    int rc = cli_call(c, "pool.list", args, &r);
    if (rc != CLI_OK)
        return rc;
    if (c->json) {
        print_json("lcpfs pool list", "pools", by_name(r));
        json_decref(r);
        return CLI_OK;
    }
    const char *cols[] = { "NAME", "SIZE", "ALLOC", "FREE", "FRAG", "HEALTH" };
    struct table t;
    table_init(&t, cols, 6);
    size_t k;
    json_t *o;
    json_array_foreach(r, k, o)
    {
        char size[32], alloc[32], fr[32], frag[16];
        fmt_bytes(num(o, "size"), parsable, size, sizeof(size));
        fmt_bytes(num(o, "allocated"), parsable, alloc, sizeof(alloc));
        fmt_bytes(num(o, "free"), parsable, fr, sizeof(fr));
        snprintf(frag, sizeof(frag), parsable ? "%llu" : "%llu%%",
                 (unsigned long long)num(o, "fragmentation"));
        const char *row[] = { json_string_value(json_object_get(o, "name")), size, alloc, fr, frag,
                              json_string_value(json_object_get(o, "state")) };
        table_add(&t, row);
    }
    table_print(&t, scripted);
    table_free(&t);
    json_decref(r);
    return CLI_OK;
}

static void
status_line(const char *name, int indent, const char *state, json_t *o)
{
    printf("\t%*s%-*s  %-8s %5llu %5llu %5llu\n", indent, "", 30 - indent, name, state,
           (unsigned long long)num(o, "read_errors"), (unsigned long long)num(o, "write_errors"),
           (unsigned long long)num(o, "checksum_errors"));
}

static int
pool_status(struct cli *c, int argc, char **argv)
{
    bool verbose = false, only_bad = false;
    int opt;
    while ((opt = getopt(argc, argv, "vxj")) != -1) {
        if (opt == 'v')
            verbose = true;
        else if (opt == 'x')
            only_bad = true;
        else if (opt == 'j')
            c->json = true;
        else
            return CLI_USAGE;
    }
    json_t *args = json_object(), *r;
    if (optind < argc)
        json_object_set_new(args, "name", json_string(argv[optind]));
    int rc = cli_call(c, "pool.status", args, &r);
    if (rc != CLI_OK)
        return rc;
    if (c->json) {
        print_json("lcpfs pool status", "pools", by_name(r));
        json_decref(r);
        return CLI_OK;
    }
    size_t k, shown = 0;
    json_t *o;
    json_array_foreach(r, k, o)
    {
        const char *state = json_string_value(json_object_get(o, "state"));
        uint64_t errs = num(o, "data_errors");
        bool bad = errs > 0 || strcmp(state, "ONLINE") != 0 || num(o, "read_errors") > 0 ||
                   num(o, "write_errors") > 0 || num(o, "checksum_errors") > 0;
        if (only_bad && !bad)
            continue;
        if (shown++ > 0)
            printf("\n");
        printf("  pool: %s\n state: %s\n", json_string_value(json_object_get(o, "name")), state);
        if (errs > 0)
            printf("status: One or more blocks could not be read from any copy.\n"
                   "action: Restore the files or volumes named below from backup.\n");
        printf("  scan: none requested\nconfig:\n\n");
        printf("\t%-30s  %-8s %5s %5s %5s\n", "NAME", "STATE", "READ", "WRITE", "CKSUM");
        status_line(json_string_value(json_object_get(o, "name")), 0, state, o);
        size_t vi;
        json_t *v;
        json_array_foreach(json_object_get(o, "vdevs"), vi, v)
            status_line(json_string_value(json_object_get(v, "name")), 2,
                        json_string_value(json_object_get(v, "state")), v);
        if (errs == 0) {
            printf("\nerrors: No known data errors\n");
        } else if (!verbose) {
            printf("\nerrors: %llu data errors, use '-v' for a list\n", (unsigned long long)errs);
        } else {
            printf("\nerrors: Permanent errors have been detected in the following:\n\n");
            size_t ei;
            json_t *e;
            json_array_foreach(json_object_get(o, "errors"), ei, e)
                printf("        %s: object %llu, level %lld, block %llu (%s)\n",
                       json_string_value(json_object_get(e, "dataset")),
                       (unsigned long long)num(e, "object"),
                       (long long)json_integer_value(json_object_get(e, "level")),
                       (unsigned long long)num(e, "block"),
                       json_string_value(json_object_get(e, "error")));
        }
    }
    if (only_bad && shown == 0)
        printf("all pools are healthy\n");
    json_decref(r);
    return CLI_OK;
}

int
cmd_pool(struct cli *c, int argc, char **argv)
{
    if (argc < 2)
        return cli_usage(c, "pool needs a verb: create, import, export, list, status, add");
    static const struct {
        const char *name;
        int (*fn)(struct cli *c, int argc, char **argv);
    } sub[] = { { "create", pool_create }, { "import", pool_import }, { "export", pool_export },
                { "list", pool_list },     { "status", pool_status }, { "add", pool_add } };
    for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++)
        if (strcmp(argv[1], sub[i].name) == 0) {
            optind = 1;
            return sub[i].fn(c, argc - 1, argv + 1);
        }
    return cli_usage(c, "unknown pool verb '%s'", argv[1]);
}
