/* SPDX-License-Identifier: MIT */
/*
 * lcpfs-check: the offline pool verifier. Imports read-only, walks every reachable block,
 * verifies checksums, allocation exactness and birth order (core/verify.h), prints each
 * violation and a one-line summary; exits 1 on any violation, 2 when the pool cannot be read.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <getopt.h>

#include "common/log.h"
#include "core/verify.h"

static void
print_violation(void *arg, const char *msg)
{
    unsigned long *shown = arg;
    if (++*shown <= 1000)
        printf("error: %s\n", msg);
    else if (*shown == 1001)
        printf("error: (further violations not shown)\n");
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: lcpfs-check [-T txg] [-q] DEVICE...\n"
               "  Verifies an LCPFS pool offline (read-only).\n"
               "  -T txg   verify the newest uberblock at or before txg (rewind)\n"
               "  -q       print only the summary\n");
}

int
main(int argc, char **argv)
{
    struct verify_opts opts = { 0 };
    bool quiet = false;
    int c;
    log_set_prefix("lcpfs-check");
    while ((c = getopt(argc, argv, "T:qh")) != -1) {
        switch (c) {
        case 'T':
            opts.rewind_txg = strtoull(optarg, NULL, 0);
            break;
        case 'q':
            quiet = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind >= argc) {
        usage(stderr);
        return 2;
    }
    if (quiet)
        log_set_level(LOG_LEVEL_ERR);
    struct verify_report r;
    struct err_msg em = { 0 };
    unsigned long shown = 0;
    int rc = verify_pool((const char *const *)&argv[optind], (size_t)(argc - optind), &opts, &r,
                         quiet ? NULL : print_violation, &shown, &em);
    if (rc != 0) {
        fprintf(stderr, "lcpfs-check: cannot import: %s\n", em.text[0] ? em.text : err_str(rc));
        return 2;
    }
    printf("%s: txg %llu, %llu object sets, %llu objects, %llu blocks (%llu embedded), "
           "%.1f MiB logical, %.1f MiB allocated; %llu errors (checksum %llu, io %llu, "
           "structure %llu, birth %llu, fill %llu, devices with recoverable damage %llu; "
           "leaked %llu B, overlap %llu B, free-but-reachable %llu B)\n",
           r.errors ? "FAIL" : "OK", (unsigned long long)r.txg, (unsigned long long)r.objsets,
           (unsigned long long)r.objects, (unsigned long long)r.blocks,
           (unsigned long long)r.embedded, (double)r.lsize_bytes / 1048576.0,
           (double)r.allocated_bytes / 1048576.0, (unsigned long long)r.errors,
           (unsigned long long)r.cksum_errors, (unsigned long long)r.io_errors,
           (unsigned long long)r.structure_errors, (unsigned long long)r.birth_errors,
           (unsigned long long)r.fill_errors, (unsigned long long)r.damaged_pieces,
           (unsigned long long)r.leaked_bytes, (unsigned long long)r.overlap_bytes,
           (unsigned long long)r.free_but_reachable_bytes);
    return r.errors ? 1 : 0;
}
