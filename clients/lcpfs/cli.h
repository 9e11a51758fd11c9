/* SPDX-License-Identifier: MIT */
/*
 * cli: the `lcpfs` admin command — shared pieces of its verbs: the call to the daemon, option
 * parsing helpers, and table/JSON output in the manner of zfs(8).
 *
 * Exit status: 0 success, 1 the daemon refused or failed the operation (message on stderr),
 * 2 usage error, 3 the daemon cannot be reached.
 */
#ifndef LCPFS_CLIENTS_CLI_H
#define LCPFS_CLIENTS_CLI_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2, CLI_UNREACHABLE = 3 };

struct cli {
    const char *socket; /* admin socket path */
    const char *prog;   /* "lcpfs" */
    bool json;          /* -j */
};

/* Sends {"verb", "args"} (steals args) and waits for the answer. On success returns CLI_OK and
 * the result in *result (new reference, may be JSON null); else prints the daemon's error and
 * returns CLI_FAILED, or CLI_UNREACHABLE. */
int cli_call(struct cli *c, const char *verb, json_t *args, json_t **result);

/* Prints "lcpfs: message" to stderr and returns CLI_USAGE. */
int cli_usage(struct cli *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A table of string cells printed like zfs list: aligned with a header, or with -H
 * tab-separated and no header. */
struct table {
    const char **cols; /* header names */
    size_t ncols;
    char ***rows;
    size_t nrows, cap;
};
void table_init(struct table *t, const char **cols, size_t ncols);
/* Adds a row of ncols cells (copied). */
void table_add(struct table *t, const char *const *cells);
void table_print(const struct table *t, bool scripted);
void table_free(struct table *t);

/* Formats a byte count like zfs (16K, 1.50G) or exact with parsable. */
void fmt_bytes(uint64_t v, bool parsable, char *buf, size_t len);
/* Splits "a,b,c" into a NULL-terminated array of new strings. */
char **split_commas(const char *s, size_t *n);
void free_strv(char **v);
/* Parses "name=value" into a props object entry; CLI_USAGE on a missing '='. */
int props_add_assignment(struct cli *c, json_t *props, const char *assignment);
/* An object keyed by each element's "name" (new reference; the array is borrowed). */
json_t *by_name(json_t *array);
/* Prints JSON output with the output_version header ZFS 2.3 uses. Steals body. */
void print_json(const char *command, const char *key, json_t *body);

/* The verbs (ds_cmds.c, pool_cmds.c). argv[0] is the verb. */
int cmd_create(struct cli *c, int argc, char **argv);
int cmd_destroy(struct cli *c, int argc, char **argv);
int cmd_snapshot(struct cli *c, int argc, char **argv);
int cmd_clone(struct cli *c, int argc, char **argv);
int cmd_rollback(struct cli *c, int argc, char **argv);
int cmd_promote(struct cli *c, int argc, char **argv);
int cmd_rename(struct cli *c, int argc, char **argv);
int cmd_hold(struct cli *c, int argc, char **argv);
int cmd_release(struct cli *c, int argc, char **argv);
int cmd_holds(struct cli *c, int argc, char **argv);
int cmd_bookmark(struct cli *c, int argc, char **argv);
int cmd_list(struct cli *c, int argc, char **argv);
int cmd_get(struct cli *c, int argc, char **argv);
int cmd_set(struct cli *c, int argc, char **argv);
int cmd_inherit(struct cli *c, int argc, char **argv);
int cmd_exports(struct cli *c, int argc, char **argv);
int cmd_pool(struct cli *c, int argc, char **argv);

#endif
