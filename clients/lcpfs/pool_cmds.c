/* SPDX-License-Identifier: MIT */
/*
 * pool_cmds: `lcpfs pool create|import|export|list|status|add|scrub|offline|online|replace|
 * clear`, output in the shape of zpool(8) (list table, status tree with READ WRITE CKSUM, scan:,
 * status:/action: and errors: lines).
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <getopt.h>

#include "clients/lcpfs/cli.h"
#include "core/pool.h"
#include "core/props.h"

/* The daemon may run elsewhere in the file system: send absolute paths. */
static json_t *
abs_path(const char *v)
{
    char cwd[PATH_MAX], buf[PATH_MAX * 2];
    if (v[0] == '/')
        return json_string(v);
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        cwd[0] = 0;
    snprintf(buf, sizeof(buf), "%s/%s", cwd, v);
    return json_string(buf);
}

/* A layout in zpool's words: keywords (mirror, raidz2, ...) as written, devices made absolute. */
static json_t *
abs_paths(char **v, int n)
{
    json_t *arr = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(arr,
                              pool_layout_is_keyword(v[i]) ? json_string(v[i]) : abs_path(v[i]));
    return arr;
}

/* A device argument: a decimal guid as is, else an absolute path. */
static json_t *
device_arg(const char *v)
{
    size_t digits = strspn(v, "0123456789");
    if (digits > 0 && v[digits] == 0)
        return json_string(v);
    return abs_path(v);
}

/* `-o direct-io=writes|off|on` of pool create and import, the only pool option so far: into
 * args. 0, or a usage error for anything else. */
static int
pool_option(struct cli *c, json_t *args, const char *kv)
{
    static const char key[] = "direct-io=";
    if (strncmp(kv, key, sizeof(key) - 1) != 0)
        return cli_usage(c, "-o %s: the pool option is direct-io=writes|off|on", kv);
    json_object_set_new(args, "direct-io", json_string(kv + sizeof(key) - 1));
    return 0;
}

static int
pool_cmd_create(struct cli *c, int argc, char **argv)
{
    const char *size = NULL;
    json_t *args = json_object();
    int opt;
    while ((opt = getopt(argc, argv, "s:o:")) != -1) {
        int rc = opt == 's'   ? (size = optarg, 0)
                 : opt == 'o' ? pool_option(c, args, optarg)
                              : CLI_USAGE;
        if (rc != 0) {
            json_decref(args);
            return rc;
        }
    }
    if (optind + 2 > argc) {
        json_decref(args);
        return cli_usage(c, "pool create takes a name and at least one device or file");
    }
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
pool_cmd_import(struct cli *c, int argc, char **argv)
{
    bool ro = false;
    json_t *args = json_object(), *r;
    int opt;
    while ((opt = getopt(argc, argv, "ro:")) != -1) {
        int rc = opt == 'r'   ? (ro = true, 0)
                 : opt == 'o' ? pool_option(c, args, optarg)
                              : CLI_USAGE;
        if (rc != 0) {
            json_decref(args);
            return rc;
        }
    }
    if (optind >= argc) {
        json_decref(args);
        return cli_usage(c, "pool import takes the pool's devices or files");
    }
    json_object_set_new(args, "vdevs", abs_paths(argv + optind, argc - optind));
    json_object_set_new(args, "readonly", json_boolean(ro));
    int rc = cli_call(c, "pool.import", args, &r);
    if (rc == CLI_OK && json_is_string(r))
        printf("imported pool '%s'\n", json_string_value(r));
    json_decref(r);
    return rc;
}

static int
pool_cmd_export(struct cli *c, int argc, char **argv)
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
pool_cmd_add(struct cli *c, int argc, char **argv)
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
pool_cmd_list(struct cli *c, int argc, char **argv)
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

/* Longest "indent + name" of the tree, for the NAME column. */
static int
name_width(json_t *pool)
{
    int w = (int)strlen(json_string_value(json_object_get(pool, "name")));
    size_t i, j;
    json_t *v, *ch;
    json_array_foreach(json_object_get(pool, "vdevs"), i, v)
    {
        int l = 2 + (int)strlen(json_string_value(json_object_get(v, "name")));
        w = l > w ? l : w;
        json_array_foreach(json_object_get(v, "children"), j, ch)
        {
            l = 4 + (int)strlen(json_string_value(json_object_get(ch, "name")));
            w = l > w ? l : w;
        }
    }
    return w < 30 ? 30 : w;
}

static void
status_line(const char *name, int width, int indent, const char *state, json_t *o)
{
    printf("\t%*s%-*s  %-8s %5llu %5llu %5llu\n", indent, "", width - indent, name, state,
           (unsigned long long)num(o, "read_errors"), (unsigned long long)num(o, "write_errors"),
           (unsigned long long)num(o, "checksum_errors"));
}

static const char *
str(json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v != NULL ? v : "";
}

/* "Tue Jan  2 10:00:00 2024", like zpool. */
static void
fmt_date(uint64_t t, char *buf, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (localtime_r(&tt, &tm) == NULL || strftime(buf, len, "%a %b %e %H:%M:%S %Y", &tm) == 0)
        snprintf(buf, len, "%llu", (unsigned long long)t);
}

/* "00:00:03", or "2 days 01:00:00". */
static void
fmt_duration(uint64_t s, char *buf, size_t len)
{
    uint64_t d = s / 86400;
    s %= 86400;
    if (d > 0)
        snprintf(buf, len, "%llu days %02llu:%02llu:%02llu", (unsigned long long)d,
                 (unsigned long long)(s / 3600), (unsigned long long)(s / 60 % 60),
                 (unsigned long long)(s % 60));
    else
        snprintf(buf, len, "%02llu:%02llu:%02llu", (unsigned long long)(s / 3600),
                 (unsigned long long)(s / 60 % 60), (unsigned long long)(s % 60));
}

/* The scan: line. */
static void
print_scan(json_t *sc)
{
    const char *fn = str(sc, "function"), *state = str(sc, "state");
    bool resilver = strcmp(fn, "resilver") == 0;
    char date[64], dur[64], a[32], b[32], c[32];
    printf("  scan: ");
    if (sc == NULL || strcmp(state, "none") == 0 || state[0] == 0) {
        printf("none requested\n");
        return;
    }
    if (strcmp(state, "scanning") == 0) {
        uint64_t examined = num(sc, "examined"), total = num(sc, "to_examine");
        unsigned pct = total > 0 ? (unsigned)(examined * 100 / total) : 0;
        fmt_date(num(sc, "start_time"), date, sizeof(date));
        fmt_bytes(examined, false, a, sizeof(a));
        fmt_bytes(num(sc, "rate"), false, b, sizeof(b));
        fmt_bytes(total, false, c, sizeof(c));
        fmt_duration(num(sc, "eta"), dur, sizeof(dur));
        printf("%s in progress since %s\n", resilver ? "resilver" : "scrub", date);
        printf("\t%s / %s scanned at %s/s, %u%% done, %s to go\n", a, c, b, pct > 100 ? 100 : pct,
               dur);
        return;
    }
    fmt_date(num(sc, "end_time"), date, sizeof(date));
    uint64_t start = num(sc, "start_time"), end = num(sc, "end_time");
    fmt_duration(end > start ? end - start : 0, dur, sizeof(dur));
    fmt_bytes(num(sc, "repaired"), false, a, sizeof(a));
    unsigned long long errs = (unsigned long long)num(sc, "errors");
    if (strcmp(state, "finished") == 0)
        printf("%s %s in %s with %llu errors on %s\n", resilver ? "resilvered" : "scrub repaired",
               a, dur, errs, date);
    else if (strcmp(state, "canceled") == 0)
        printf("%s canceled on %s\n", resilver ? "resilver" : "scrub", date);
    else
        printf("%s failed on %s after %s with %llu errors\n", resilver ? "resilver" : "scrub", date,
               dur, errs);
}

/* The worst leaf condition of the tree, for the status:/action: lines. */
struct tree_health {
    bool offline, unavail, faulted, errors;
};

static void
leaf_health(json_t *v, struct tree_health *h)
{
    const char *st = str(v, "state");
    h->offline |= strcmp(st, "OFFLINE") == 0;
    h->unavail |= strcmp(st, "UNAVAIL") == 0;
    h->faulted |= strcmp(st, "FAULTED") == 0 || strcmp(st, "REMOVED") == 0;
    h->errors |= num(v, "read_errors") + num(v, "write_errors") + num(v, "checksum_errors") > 0;
}

/* zpool's status:/action: explanation of the first problem found. */
static void
print_explanation(json_t *o, const char *state, uint64_t data_errors)
{
    struct tree_health h = { 0 };
    size_t i, j;
    json_t *v, *ch;
    json_array_foreach(json_object_get(o, "vdevs"), i, v)
    {
        if (json_object_get(v, "children") == NULL)
            leaf_health(v, &h);
        json_array_foreach(json_object_get(v, "children"), j, ch) leaf_health(ch, &h);
    }
    json_t *sc = json_object_get(o, "scan");
    bool resilvering =
        strcmp(str(sc, "state"), "scanning") == 0 && strcmp(str(sc, "function"), "resilver") == 0;
    if (strcmp(state, "SUSPENDED") == 0)
        printf("status: The pool is suspended: a commit could not be written to enough devices.\n"
               "action: Make the devices available, then export the pool and import it "
               "again.\n");
    else if (strcmp(state, "UNAVAIL") == 0)
        printf("status: One or more devices could not be used and there are insufficient\n"
               "\treplicas for the pool to continue functioning.\n"
               "action: Attach the missing devices and bring them back with 'lcpfs pool "
               "online'.\n");
    else if (resilvering)
        printf("status: One or more devices is currently being resilvered.  The pool will\n"
               "\tcontinue to function, possibly in a degraded state.\n"
               "action: Wait for the resilver to complete.\n");
    else if (h.faulted)
        printf("status: One or more devices are faulted or were removed.  Sufficient replicas\n"
               "\texist for the pool to continue functioning in a degraded state.\n"
               "action: Replace the device with 'lcpfs pool replace', or use 'lcpfs pool "
               "clear'\n\tto mark it repaired.\n");
    else if (h.unavail)
        printf("status: One or more devices could not be opened.  Sufficient replicas exist "
               "for\n\tthe pool to continue functioning in a degraded state.\n"
               "action: Attach the missing device and online it using 'lcpfs pool online',\n"
               "\tor replace it with 'lcpfs pool replace'.\n");
    else if (h.offline)
        printf("status: One or more devices has been taken offline by the administrator.\n"
               "\tSufficient replicas exist for the pool to continue functioning in a\n"
               "\tdegraded state.\n"
               "action: Online the device using 'lcpfs pool online' or replace the device "
               "with\n\t'lcpfs pool replace'.\n");
    else if (data_errors > 0)
        printf("status: One or more blocks could not be read from any copy.\n"
               "action: Restore the files or volumes named below from backup.\n");
    else if (h.errors)
        printf("status: One or more devices has experienced an unrecoverable error.  An\n"
               "\tattempt was made to correct the error.  Applications are unaffected.\n"
               "action: Determine if the device needs to be replaced, and clear the errors\n"
               "\tusing 'lcpfs pool clear' or replace the device with 'lcpfs pool replace'.\n");
}

static bool
pool_unhealthy(json_t *o)
{
    if (strcmp(str(o, "state"), "ONLINE") != 0 || num(o, "data_errors") > 0 ||
        num(o, "read_errors") > 0 || num(o, "write_errors") > 0 || num(o, "checksum_errors") > 0)
        return true;
    size_t i, j;
    json_t *v, *ch;
    json_array_foreach(json_object_get(o, "vdevs"), i, v)
    {
        if (strcmp(str(v, "state"), "ONLINE") != 0)
            return true;
        json_array_foreach(json_object_get(v, "children"), j, ch)
        {
            if (strcmp(str(ch, "state"), "ONLINE") != 0)
                return true;
        }
    }
    return false;
}

static void
print_pool_status(json_t *o, bool verbose)
{
    const char *state = str(o, "state");
    uint64_t errs = num(o, "data_errors");
    printf("  pool: %s\n state: %s\n", str(o, "name"), state);
    print_explanation(o, state, errs);
    print_scan(json_object_get(o, "scan"));
    printf("config:\n\n");
    int w = name_width(o);
    printf("\t%-*s  %-8s %5s %5s %5s\n", w, "NAME", "STATE", "READ", "WRITE", "CKSUM");
    status_line(str(o, "name"), w, 0, state, o);
    size_t vi, ci;
    json_t *v, *ch;
    json_array_foreach(json_object_get(o, "vdevs"), vi, v)
    {
        status_line(str(v, "name"), w, 2, str(v, "state"), v);
        json_array_foreach(json_object_get(v, "children"), ci, ch)
            status_line(str(ch, "name"), w, 4, str(ch, "state"), ch);
    }
    if (errs == 0) {
        printf("\nerrors: No known data errors\n");
    } else if (!verbose) {
        printf("\nerrors: %llu data errors, use '-v' for a list\n", (unsigned long long)errs);
    } else {
        printf("\nerrors: Permanent errors have been detected in the following:\n\n");
        size_t ei;
        json_t *e;
        json_array_foreach(json_object_get(o, "errors"), ei, e)
            printf("        %s: object %llu, level %lld, block %llu (%s)\n", str(e, "dataset"),
                   (unsigned long long)num(e, "object"),
                   (long long)json_integer_value(json_object_get(e, "level")),
                   (unsigned long long)num(e, "block"), str(e, "error"));
    }
}

static int
pool_cmd_status(struct cli *c, int argc, char **argv)
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
    if (only_bad) {
        /* -x: only the pools with a problem, in text and JSON alike. */
        json_t *bad = json_array();
        size_t k;
        json_t *o;
        json_array_foreach(r, k, o)
        {
            if (pool_unhealthy(o))
                json_array_append(bad, o);
        }
        json_decref(r);
        r = bad;
    }
    if (c->json) {
        print_json("lcpfs pool status", "pools", by_name(r));
        json_decref(r);
        return CLI_OK;
    }
    size_t k;
    json_t *o;
    json_array_foreach(r, k, o)
    {
        if (k > 0)
            printf("\n");
        print_pool_status(o, verbose);
    }
    if (only_bad && json_array_size(r) == 0) {
        if (optind < argc)
            printf("pool '%s' is healthy\n", argv[optind]);
        else
            printf("all pools are healthy\n");
    }
    json_decref(r);
    return CLI_OK;
}

static int
pool_cmd_scrub(struct cli *c, int argc, char **argv)
{
    bool stop = false, pause = false;
    int opt;
    while ((opt = getopt(argc, argv, "sp")) != -1) {
        if (opt == 's')
            stop = true;
        else if (opt == 'p')
            pause = true;
        else
            return CLI_USAGE;
    }
    if (stop && pause)
        return cli_usage(c, "pool scrub takes -s (stop) or -p (pause), not both");
    if (optind >= argc)
        return cli_usage(c, "pool scrub takes at least one pool");
    int rc = CLI_OK;
    for (int i = optind; i < argc && rc == CLI_OK; i++) {
        json_t *args = json_object(), *r;
        json_object_set_new(args, "name", json_string(argv[i]));
        json_object_set_new(args, "stop", json_boolean(stop));
        json_object_set_new(args, "pause", json_boolean(pause));
        rc = cli_call(c, "pool.scrub", args, &r);
        json_decref(r);
    }
    return rc;
}

/* pool offline|online NAME DEVICE...: one call per device, stopping at the first failure. */
static int
pool_cmd_devices(struct cli *c, int argc, char **argv, const char *verb)
{
    if (argc < 3)
        return cli_usage(c, "pool %s takes a pool and at least one device", argv[0]);
    int rc = CLI_OK;
    for (int i = 2; i < argc && rc == CLI_OK; i++) {
        json_t *args = json_object(), *r;
        json_object_set_new(args, "name", json_string(argv[1]));
        json_object_set_new(args, "device", device_arg(argv[i]));
        rc = cli_call(c, verb, args, &r);
        json_decref(r);
    }
    return rc;
}

static int
pool_cmd_offline(struct cli *c, int argc, char **argv)
{
    return pool_cmd_devices(c, argc, argv, "pool.offline");
}

static int
pool_cmd_online(struct cli *c, int argc, char **argv)
{
    return pool_cmd_devices(c, argc, argv, "pool.online");
}

static int
pool_cmd_replace(struct cli *c, int argc, char **argv)
{
    if (argc != 4)
        return cli_usage(c, "pool replace takes a pool, the old device and the new one");
    json_t *args = json_object(), *r;
    json_object_set_new(args, "name", json_string(argv[1]));
    json_object_set_new(args, "device", device_arg(argv[2]));
    json_object_set_new(args, "new", abs_path(argv[3]));
    int rc = cli_call(c, "pool.replace", args, &r);
    json_decref(r);
    return rc;
}

/* pool attach NAME DEVICE NEW: NEW mirrors DEVICE. */
static int
pool_cmd_attach(struct cli *c, int argc, char **argv)
{
    if (argc != 4)
        return cli_usage(c, "pool attach takes a pool, a device in it and the new device");
    json_t *args = json_object(), *r;
    json_object_set_new(args, "name", json_string(argv[1]));
    json_object_set_new(args, "device", device_arg(argv[2]));
    json_object_set_new(args, "new", abs_path(argv[3]));
    int rc = cli_call(c, "pool.attach", args, &r);
    json_decref(r);
    return rc;
}

static int
pool_cmd_detach(struct cli *c, int argc, char **argv)
{
    return argc == 3 ? pool_cmd_devices(c, argc, argv, "pool.detach")
                     : cli_usage(c, "pool detach takes a pool and one device of a mirror");
}

static int
pool_cmd_clear(struct cli *c, int argc, char **argv)
{
    if (argc < 2 || argc > 3)
        return cli_usage(c, "pool clear takes a pool and optionally one device");
    json_t *args = json_object(), *r;
    json_object_set_new(args, "name", json_string(argv[1]));
    if (argc == 3)
        json_object_set_new(args, "device", device_arg(argv[2]));
    int rc = cli_call(c, "pool.clear", args, &r);
    json_decref(r);
    return rc;
}

int
cmd_pool(struct cli *c, int argc, char **argv)
{
    static const char verbs[] =
        "create, import, export, list, status, add, scrub, offline, online, replace, attach, "
        "detach, clear";
    if (argc < 2)
        return cli_usage(c, "pool needs a verb: %s", verbs);
    static const struct {
        const char *name;
        int (*fn)(struct cli *c, int argc, char **argv);
    } sub[] = { { "create", pool_cmd_create }, { "import", pool_cmd_import },
                { "export", pool_cmd_export }, { "list", pool_cmd_list },
                { "status", pool_cmd_status }, { "add", pool_cmd_add },
                { "scrub", pool_cmd_scrub },   { "offline", pool_cmd_offline },
                { "online", pool_cmd_online }, { "replace", pool_cmd_replace },
                { "attach", pool_cmd_attach }, { "detach", pool_cmd_detach },
                { "clear", pool_cmd_clear } };
    for (size_t i = 0; i < sizeof(sub) / sizeof(sub[0]); i++)
        if (strcmp(argv[1], sub[i].name) == 0) {
            optind = 1;
            return sub[i].fn(c, argc - 1, argv + 1);
        }
    return cli_usage(c, "unknown pool verb '%s' (%s)", argv[1], verbs);
}
