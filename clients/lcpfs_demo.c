/* SPDX-License-Identifier: MIT */
/*
 * lcpfs-demo: the engine's demo until the lcpfsd daemon exists. Creates (or imports) pool 'tank'
 * on a sparse file in the data folder, reads back every object earlier runs wrote, writes a new
 * object of mixed compressible and random data, commits, reads it back, prints what happened and
 * exports the pool.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include <getopt.h>

#include "common/log.h"
#include "core/objset.h"
#include "core/pool.h"

#define DEMO_BYTES (64u << 20)
#define CHUNK      (1u << 20)

static double
now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Deterministic content: object id and offset decide every byte; half text-like, half random. */
static void
fill(uint8_t *buf, size_t len, uint64_t obj, uint64_t off)
{
    uint64_t s = obj * 0x9e3779b97f4a7c15ull ^ off;
    bool text = (off / CHUNK) % 2 == 0;
    for (size_t i = 0; i < len; i++) {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        buf[i] = text ? (uint8_t)("lcpfs checksummed copy-on-write "[(off + i) % 32]) : (uint8_t)s;
    }
}

static int
check_object(struct objset *os, uint64_t obj, uint8_t *buf, uint8_t *want)
{
    struct obj_info info;
    int rc = obj_stat(os, obj, &info);
    if (rc != 0)
        return rc;
    for (uint64_t off = 0; off < info.size; off += CHUNK) {
        size_t n = info.size - off < CHUNK ? (size_t)(info.size - off) : CHUNK;
        if ((rc = obj_read(os, obj, off, n, buf)) != 0)
            return rc;
        fill(want, n, obj, off);
        if (memcmp(buf, want, n) != 0)
            return -EILSEQ;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    const char *dir = "./lcpfs-data";
    static const struct option longopts[] = { { "data-dir", required_argument, NULL, 'd' },
                                              { "help", no_argument, NULL, 'h' },
                                              { NULL, 0, NULL, 0 } };
    int c;
    while ((c = getopt_long(argc, argv, "d:h", longopts, NULL)) != -1) {
        if (c == 'd') {
            dir = optarg;
        } else {
            printf("usage: lcpfs-demo [--data-dir DIR]\n");
            return c == 'h' ? 0 : 2;
        }
    }
    log_set_prefix("lcpfs-demo");
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "lcpfs-demo: cannot create '%s': %s\n", dir, strerror(errno));
        return 1;
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/tank.vdev", dir);
    const char *paths[1] = { path };
    struct pool *p = NULL;
    struct err_msg em = { 0 };
    struct stat st;
    int rc;
    if (stat(path, &st) != 0) {
        struct pool_opts o = { .create_files = true, .create_size = 16ull << 30 };
        rc = pool_create("tank", paths, 1, &o, &p, &em);
    } else {
        rc = pool_import(paths, 1, NULL, &p, &em);
    }
    if (rc != 0) {
        fprintf(stderr, "lcpfs-demo: %s\n", em.text[0] ? em.text : err_str(rc));
        return 1;
    }
    struct objset *os = pool_root_objset(p);
    uint8_t *buf = malloc(CHUNK), *want = malloc(CHUNK);
    if (buf == NULL || want == NULL)
        return 1;

    unsigned old = 0;
    for (uint64_t obj = 0; obj_next(os, obj + 1, &obj) == 0;) {
        rc = check_object(os, obj, buf, want);
        printf("object %llu from an earlier run: %s\n", (unsigned long long)obj,
               rc == 0 ? "intact" : err_str(rc));
        old++;
        if (rc != 0)
            goto fail;
    }

    struct tx tx;
    uint64_t obj;
    struct obj_create_opts co = { .type = OT_PLAIN, .blocksize = 128 * 1024 };
    if ((rc = tx_assign(p, 0, &tx)) != 0)
        goto fail;
    rc = obj_create(os, &tx, &co, &obj);
    tx_commit(&tx);
    if (rc != 0)
        goto fail;
    double t0 = now_s();
    for (uint64_t off = 0; off < DEMO_BYTES; off += CHUNK) {
        fill(buf, CHUNK, obj, off);
        if ((rc = tx_assign(p, CHUNK, &tx)) != 0)
            goto fail;
        rc = obj_write(os, &tx, obj, off, CHUNK, buf);
        tx_commit(&tx);
        if (rc != 0)
            goto fail;
    }
    uint64_t txg;
    if ((rc = pool_sync(p, &txg)) != 0)
        goto fail;
    double t1 = now_s();
    if ((rc = check_object(os, obj, buf, want)) != 0)
        goto fail;
    double t2 = now_s();

    struct pool_stats ps;
    pool_get_stats(p, &ps);
    struct obj_info info;
    obj_stat(os, obj, &info);
    printf("wrote object %llu: %u MiB in %.2f s (%.0f MiB/s, committed in txg %llu)\n",
           (unsigned long long)obj, DEMO_BYTES >> 20, t1 - t0, (DEMO_BYTES >> 20) / (t1 - t0),
           (unsigned long long)txg);
    printf("read it back and compared: %.2f s; stored in %.1f MiB (lz4, xxh3)\n", t2 - t1,
           (double)info.used_bytes / 1048576.0);
    printf("pool 'tank': %u object(s), size %.1f GiB, allocated %.1f MiB, free %.1f GiB\n", old + 1,
           (double)ps.size / 1073741824.0, (double)ps.allocated / 1048576.0,
           (double)ps.free / 1073741824.0);
    free(buf);
    free(want);
    rc = pool_export(p);
    if (rc != 0) {
        fprintf(stderr, "lcpfs-demo: export failed: %s\n", err_str(rc));
        return 1;
    }
    printf("exported; verifying with lcpfs-check:\n");
    fflush(stdout);
    return 0;
fail:
    fprintf(stderr, "lcpfs-demo: %s\n", err_str(rc));
    pool_close(p);
    return 1;
}
