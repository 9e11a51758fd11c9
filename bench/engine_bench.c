/* SPDX-License-Identifier: MIT */
/*
 * lcpfs-bench-engine: throughput of the object layer on one file vdev, or of plain pwrite/pread
 * of the same bytes on the same file system (--baseline). bench/engine.sh runs both and prints
 * ratios; docs/BENCHMARKS.md has the numbers.
 *
 * Theory of operation.
 *   Data. The bytes written are a deterministic function of (block index, generator): a ring of
 *   distinct blocks is generated before any timing starts ("text": pseudo-English words from a
 *   small vocabulary, compresses about 2-3x; "random": xorshift output, incompressible; "mixed",
 *   the default: even blocks text, odd blocks random), and block i is ring[i % ring_len] with i
 *   stamped into its first 8 bytes, so every block is distinct and generation costs nothing
 *   inside the timed loops.
 *
 *   Baseline. pwrite SIZE bytes in block-size chunks to DIR/baseline.dat, fdatasync (inside the
 *   timed region), posix_fadvise(DONTNEED) to drop the file's pages, then pread it back (timed).
 *
 *   Engine. Create a pool on DIR/engine.vdev (sparse, max(2*SIZE, 512 MiB) + 256 MiB), create
 *   one OT_PLAIN object with the requested blocksize/checksum/compression, then write SIZE bytes
 *   sequentially, one block per transaction (tx_assign / obj_write / tx_commit), and pool_sync
 *   (inside the timed region: the throughput is "until durable"). Allocated bytes are read from
 *   pool_get_stats. Then pool_export, fdatasync + posix_fadvise(DONTNEED) on the vdev file and
 *   pool_import, so the reads start with a cold ARC and a cold page cache; read everything back
 *   with obj_read in block-size reads (timed).
 *
 *   Profiling. The write and read phases' CLOCK_MONOTONIC bounds go to stderr, to slice a
 *   `perf record -k CLOCK_MONOTONIC` profile with `perf report --time`.
 *
 *   Verification. Every block read (baseline and engine) is compared with the generator; only
 *   the read calls themselves are timed, not the comparison.
 *
 * Output: one machine-readable line on stdout per run:
 *   baseline data=mixed size_MiB=1024 block_KiB=128 write_MBps=... read_MBps=...
 *   engine cksum=xxh3 comp=lz4 data=mixed size_MiB=1024 block_KiB=128 write_MBps=...
 *       read_MBps=... alloc_MiB=... obj_used_MiB=...
 * MB/s are logical (uncompressed) bytes, 10^6 bytes per second. Exit status 0, or 1 on any error
 * (including a verification mismatch). The files the run created are removed at the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <getopt.h>

#include "core/objset.h"
#include "core/pool.h"

enum data_kind { DATA_MIXED, DATA_TEXT, DATA_RANDOM };

struct bench_cfg {
    const char *dir;
    uint64_t size;  /* bytes, a multiple of block */
    uint32_t block; /* bytes */
    enum cksum_alg ck;
    enum compress_alg comp;
    int comp_level;
    const char *ck_name, *comp_name;
    enum data_kind data;
    bool baseline;
    const char *layout_kw; /* NULL: one device; else "mirror", "raidz1", ... */
    unsigned ndevs;
};

struct gen {
    uint8_t *ring; /* ring_len blocks of cfg.block bytes */
    uint64_t ring_len;
    uint32_t block;
};

static double
now_sec(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t
xorshift(uint64_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

static const char *const vocab[64] = {
    "the",      "of",        "and",    "object",   "block",   "pool",   "write",  "read",
    "commit",   "txg",       "vdev",   "is",       "a",       "to",     "in",     "that",
    "checksum", "tree",      "copy",   "on",       "data",    "with",   "for",    "it",
    "storage",  "layer",     "disk",   "file",     "system",  "when",   "every",  "new",
    "space",    "map",       "free",   "allocate", "dirty",   "buffer", "sync",   "thread",
    "label",    "uberblock", "import", "export",   "device",  "mirror", "stripe", "record",
    "size",     "offset",    "length", "error",    "retry",   "cache",  "hit",    "miss",
    "byte",     "page",      "kernel", "user",     "request", "reply",  "server", "client",
};

/* Pseudo-English: words, spaces, punctuation and newlines; compresses well but not trivially. */
static void
fill_text(uint8_t *buf, size_t len, uint64_t seed)
{
    uint64_t s = seed * 0x9e3779b97f4a7c15ULL + 1;
    size_t i = 0, col = 0;
    while (i < len) {
        uint64_t r = xorshift(&s);
        const char *w = vocab[r & 63];
        for (size_t k = 0; w[k] != '\0' && i < len; k++)
            buf[i++] = (uint8_t)w[k];
        col += strlen(w) + 1;
        if (i < len) {
            if (col > 72) {
                buf[i++] = (r >> 8) % 4 == 0 ? '.' : '\n';
                col = 0;
            } else {
                buf[i++] = (r >> 8) % 13 == 0 ? ',' : ' ';
            }
        }
    }
}

static void
fill_random(uint8_t *buf, size_t len, uint64_t seed)
{
    uint64_t s = seed * 0xbf58476d1ce4e5b9ULL + 7;
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v = xorshift(&s);
        memcpy(buf + i, &v, 8);
    }
    for (; i < len; i++)
        buf[i] = (uint8_t)xorshift(&s);
}

static int
gen_init(struct gen *g, const struct bench_cfg *cfg)
{
    uint64_t nblocks = cfg->size / cfg->block;
    uint64_t ring = (32u << 20) / cfg->block; /* about 32 MiB of distinct content */
    if (ring < 64)
        ring = 64;
    if (ring > nblocks)
        ring = nblocks;
    g->ring_len = ring;
    g->block = cfg->block;
    g->ring = malloc(ring * cfg->block);
    if (g->ring == NULL)
        return -ENOMEM;
    for (uint64_t i = 0; i < ring; i++) {
        uint8_t *b = g->ring + i * cfg->block;
        bool text = cfg->data == DATA_TEXT || (cfg->data == DATA_MIXED && i % 2 == 0);
        if (text)
            fill_text(b, cfg->block, i + 1);
        else
            fill_random(b, cfg->block, i + 1);
    }
    return 0;
}

/* Returns block idx's content (stamped in place in the ring; valid until the next call). */
static const uint8_t *
gen_block(struct gen *g, uint64_t idx)
{
    uint8_t *b = g->ring + (idx % g->ring_len) * g->block;
    for (int k = 0; k < 8; k++)
        b[k] = (uint8_t)(idx >> (8 * k));
    return b;
}

static double
mbps(uint64_t bytes, double sec)
{
    return sec > 0 ? (double)bytes / sec / 1e6 : 0.0;
}

static void
join_path(char *out, size_t cap, const char *dir, const char *name)
{
    snprintf(out, cap, "%s/%s", dir, name);
}

/* Flushes the file's dirty pages and asks the kernel to drop its cached pages. */
static int
drop_file_cache(const char *path)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -errno;
    int rc = 0;
    if (fdatasync(fd) != 0)
        rc = -errno;
    int arc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (rc == 0 && arc != 0)
        rc = -arc;
    close(fd);
    return rc;
}

static int
verify_block(struct gen *g, uint64_t idx, const uint8_t *got)
{
    const uint8_t *want = gen_block(g, idx);
    if (memcmp(want, got, g->block) == 0)
        return 0;
    for (uint32_t i = 0; i < g->block; i++) {
        if (want[i] != got[i]) {
            fprintf(stderr, "verify: block %llu differs at byte %u (got 0x%02x, want 0x%02x)\n",
                    (unsigned long long)idx, i, got[i], want[i]);
            break;
        }
    }
    return -1;
}

static int
run_baseline(const struct bench_cfg *cfg, struct gen *g)
{
    char path[4096];
    join_path(path, sizeof(path), cfg->dir, "baseline.dat");
    uint64_t nblocks = cfg->size / cfg->block;
    uint8_t *buf = malloc(cfg->block);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
    int ret = 1;
    if (buf == NULL || fd < 0) {
        fprintf(stderr, "baseline: open %s: %s\n", path, strerror(errno));
        goto out;
    }

    double t0 = now_sec();
    for (uint64_t i = 0; i < nblocks; i++) {
        const uint8_t *b = gen_block(g, i);
        ssize_t n = pwrite(fd, b, cfg->block, (off_t)(i * cfg->block));
        if (n != (ssize_t)cfg->block) {
            fprintf(stderr, "baseline: pwrite: %s\n", n < 0 ? strerror(errno) : "short write");
            goto out;
        }
    }
    if (fdatasync(fd) != 0) {
        fprintf(stderr, "baseline: fdatasync: %s\n", strerror(errno));
        goto out;
    }
    double wsec = now_sec() - t0;
    int arc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
    if (arc != 0) {
        fprintf(stderr, "baseline: posix_fadvise: %s\n", strerror(arc));
        goto out;
    }

    double rsec = 0;
    for (uint64_t i = 0; i < nblocks; i++) {
        double r0 = now_sec();
        ssize_t n = pread(fd, buf, cfg->block, (off_t)(i * cfg->block));
        rsec += now_sec() - r0;
        if (n != (ssize_t)cfg->block) {
            fprintf(stderr, "baseline: pread: %s\n", n < 0 ? strerror(errno) : "short read");
            goto out;
        }
        if (verify_block(g, i, buf) != 0)
            goto out;
    }
    printf("baseline data=%s size_MiB=%llu block_KiB=%u write_MBps=%.1f read_MBps=%.1f\n",
           cfg->data == DATA_MIXED  ? "mixed"
           : cfg->data == DATA_TEXT ? "text"
                                    : "random",
           (unsigned long long)(cfg->size >> 20), cfg->block >> 10, mbps(cfg->size, wsec),
           mbps(cfg->size, rsec));
    fflush(stdout);
    ret = 0;
out:
    if (fd >= 0)
        close(fd);
    unlink(path);
    free(buf);
    return ret;
}

#define MAX_BENCH_DEVS 16

/* The devices of the pool: DIR/engine.vdev, or DIR/engine-N.vdev for a layout. */
static unsigned
dev_paths(const struct bench_cfg *cfg, char (*paths)[4096])
{
    if (cfg->layout_kw == NULL) {
        join_path(paths[0], sizeof(paths[0]), cfg->dir, "engine.vdev");
        return 1;
    }
    for (unsigned i = 0; i < cfg->ndevs; i++) {
        char name[32];
        snprintf(name, sizeof(name), "engine-%u.vdev", i);
        join_path(paths[i], sizeof(paths[i]), cfg->dir, name);
    }
    return cfg->ndevs;
}

static int
open_pool(const struct bench_cfg *cfg, char (*paths)[4096], bool create, uint64_t create_size,
          struct pool **p)
{
    const char *words[MAX_BENCH_DEVS + 1];
    size_t n = 0;
    unsigned ndev = dev_paths(cfg, paths);
    if (create && cfg->layout_kw != NULL && strcmp(cfg->layout_kw, "stripe") != 0)
        words[n++] = cfg->layout_kw;
    for (unsigned i = 0; i < ndev; i++)
        words[n++] = paths[i];
    struct err_msg em = { 0 };
    int rc;
    if (create) {
        struct pool_opts o = { .create_files = true, .create_size = create_size };
        rc = pool_create("bench", words, n, &o, p, &em);
    } else {
        struct pool_import_opts o = { 0 };
        rc = pool_import(words, n, &o, p, &em);
    }
    if (rc != 0)
        fprintf(stderr, "engine: pool_%s %s: %s (%s)\n", create ? "create" : "import", paths[0],
                err_str(rc), em.text);
    return rc;
}

static int
run_engine(const struct bench_cfg *cfg, struct gen *g)
{
    char paths[MAX_BENCH_DEVS][4096];
    unsigned ndev = dev_paths(cfg, paths);
    for (unsigned i = 0; i < ndev; i++)
        unlink(paths[i]); /* a stale pool's labels would make pool_create refuse the file */
    uint64_t nblocks = cfg->size / cfg->block;
    uint64_t vsize = 2 * cfg->size;
    if (vsize < (512ull << 20))
        vsize = 512ull << 20;
    vsize += 256ull << 20;
    uint8_t *buf = malloc(cfg->block);
    struct pool *p = NULL;
    int ret = 1, rc;
    if (buf == NULL)
        goto out;
    if (open_pool(cfg, paths, true, vsize, &p) != 0)
        goto out;

    struct objset *os = pool_root_objset(p);
    struct tx tx;
    uint64_t obj = 0;
    struct obj_create_opts co = { .type = OT_PLAIN,
                                  .blocksize = cfg->block,
                                  .checksum = (uint8_t)cfg->ck,
                                  .compress = (uint8_t)cfg->comp,
                                  .compress_level = (uint8_t)cfg->comp_level };
    if ((rc = tx_assign(p, 0, &tx)) != 0) {
        fprintf(stderr, "engine: tx_assign: %s\n", err_str(rc));
        goto out;
    }
    rc = obj_create(os, &tx, &co, &obj);
    tx_commit(&tx);
    if (rc != 0) {
        fprintf(stderr, "engine: obj_create: %s\n", err_str(rc));
        goto out;
    }
    uint64_t txg;
    if ((rc = pool_sync(p, &txg)) != 0) {
        fprintf(stderr, "engine: pool_sync: %s\n", err_str(rc));
        goto out;
    }

    double t0 = now_sec();
    for (uint64_t i = 0; i < nblocks; i++) {
        const uint8_t *b = gen_block(g, i);
        if ((rc = tx_assign(p, cfg->block, &tx)) != 0) {
            fprintf(stderr, "engine: tx_assign: %s\n", err_str(rc));
            goto out;
        }
        rc = obj_write(os, &tx, obj, i * cfg->block, cfg->block, b);
        tx_commit(&tx);
        if (rc != 0) {
            fprintf(stderr, "engine: obj_write block %llu: %s\n", (unsigned long long)i,
                    err_str(rc));
            goto out;
        }
    }
    if ((rc = pool_sync(p, &txg)) != 0) {
        fprintf(stderr, "engine: pool_sync: %s\n", err_str(rc));
        goto out;
    }
    double t1 = now_sec(), wsec = t1 - t0;
    struct pool_stats st;
    pool_get_stats(p, &st);
    struct obj_info oi;
    if ((rc = obj_stat(os, obj, &oi)) != 0) {
        fprintf(stderr, "engine: obj_stat: %s\n", err_str(rc));
        goto out;
    }

    rc = pool_export(p);
    p = NULL;
    if (rc != 0) {
        fprintf(stderr, "engine: pool_export: %s\n", err_str(rc));
        goto out;
    }
    for (unsigned i = 0; i < ndev; i++) {
        if ((rc = drop_file_cache(paths[i])) != 0) {
            fprintf(stderr, "engine: dropping the page cache of %s: %s\n", paths[i], strerror(-rc));
            goto out;
        }
    }
    if (open_pool(cfg, paths, false, 0, &p) != 0)
        goto out;
    os = pool_root_objset(p);

    double rsec = 0, t2 = now_sec();
    for (uint64_t i = 0; i < nblocks; i++) {
        double r0 = now_sec();
        rc = obj_read(os, obj, i * cfg->block, cfg->block, buf);
        rsec += now_sec() - r0;
        if (rc != 0) {
            fprintf(stderr, "engine: obj_read block %llu: %s\n", (unsigned long long)i,
                    err_str(rc));
            goto out;
        }
        if (verify_block(g, i, buf) != 0)
            goto out;
    }
    char layout[48] = "single";
    if (cfg->layout_kw != NULL)
        snprintf(layout, sizeof(layout), "%s-x%u", cfg->layout_kw, cfg->ndevs);
    printf("engine layout=%s cksum=%s comp=%s data=%s size_MiB=%llu block_KiB=%u write_MBps=%.1f "
           "read_MBps=%.1f alloc_MiB=%.1f obj_used_MiB=%.1f\n",
           layout, cfg->ck_name, cfg->comp_name,
           cfg->data == DATA_MIXED  ? "mixed"
           : cfg->data == DATA_TEXT ? "text"
                                    : "random",
           (unsigned long long)(cfg->size >> 20), cfg->block >> 10, mbps(cfg->size, wsec),
           mbps(cfg->size, rsec), (double)st.allocated / (1 << 20),
           (double)oi.used_bytes / (1 << 20));
    fflush(stdout);
    fprintf(stderr,
            "engine: phases in CLOCK_MONOTONIC seconds (perf record -k CLOCK_MONOTONIC; "
            "perf report --time A,B): write %.6f,%.6f read %.6f,%.6f\n",
            t0, t1, t2, now_sec());
    ret = 0;
out:
    if (p != NULL)
        pool_close(p);
    for (unsigned i = 0; i < ndev; i++)
        unlink(paths[i]);
    free(buf);
    return ret;
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: lcpfs-bench-engine --dir DIR [--size MiB] [--block KiB] [--checksum X]\n"
               "                          [--compress Y] [--data random|text|mixed] [--baseline]\n"
               "  --size MiB      bytes to write and read back (default 1024)\n"
               "  --block KiB     block size and I/O size (default 128)\n"
               "  --checksum X    xxh3 (default), sha256, blake2b, off\n"
               "  --compress Y    off, lz4 (default), zstd, zstd-N\n"
               "  --data KIND     mixed (default: half text, half random), text, random\n"
               "  --baseline      plain pwrite/pread of the same bytes instead of the engine\n"
               "  --layout K N    N devices as K: stripe, mirror, raidz1, raidz2, raidz3\n");
}

static int
parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-')
        return -EINVAL;
    *out = v;
    return 0;
}

int
main(int argc, char **argv)
{
    struct bench_cfg cfg = { .size = 1024ull << 20,
                             .block = 128u << 10,
                             .ck = CKSUM_XXH3,
                             .comp = COMPRESS_LZ4,
                             .ck_name = "xxh3",
                             .comp_name = "lz4",
                             .data = DATA_MIXED };
    static const struct option longopts[] = {
        { "dir", required_argument, NULL, 'd' },      { "size", required_argument, NULL, 's' },
        { "block", required_argument, NULL, 'b' },    { "checksum", required_argument, NULL, 'c' },
        { "compress", required_argument, NULL, 'z' }, { "data", required_argument, NULL, 'D' },
        { "baseline", no_argument, NULL, 'B' },       { "layout", required_argument, NULL, 'L' },
        { "help", no_argument, NULL, 'h' },           { NULL, 0, NULL, 0 }
    };
    int c;
    uint64_t v;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            cfg.dir = optarg;
            break;
        case 's':
            if (parse_u64(optarg, &v) != 0 || v == 0 || v > (1ull << 24)) {
                fprintf(stderr, "bad --size %s\n", optarg);
                return 2;
            }
            cfg.size = v << 20;
            break;
        case 'b':
            if (parse_u64(optarg, &v) != 0 || v == 0 || v > 16384 || (v & (v - 1)) != 0) {
                fprintf(stderr, "bad --block %s (a power of two, KiB)\n", optarg);
                return 2;
            }
            cfg.block = (uint32_t)(v << 10);
            break;
        case 'c':
            if (cksum_from_name(optarg, &cfg.ck) != 0) {
                fprintf(stderr, "bad --checksum %s\n", optarg);
                return 2;
            }
            cfg.ck_name = optarg;
            break;
        case 'z':
            if (compress_from_name(optarg, &cfg.comp, &cfg.comp_level) != 0) {
                fprintf(stderr, "bad --compress %s\n", optarg);
                return 2;
            }
            cfg.comp_name = optarg;
            break;
        case 'D':
            if (strcmp(optarg, "mixed") == 0)
                cfg.data = DATA_MIXED;
            else if (strcmp(optarg, "text") == 0)
                cfg.data = DATA_TEXT;
            else if (strcmp(optarg, "random") == 0)
                cfg.data = DATA_RANDOM;
            else {
                fprintf(stderr, "bad --data %s\n", optarg);
                return 2;
            }
            break;
        case 'B':
            cfg.baseline = true;
            break;
        case 'L':
            /* "--layout raidz2 6": the keyword here, the count as the next argument. */
            if (optind >= argc || parse_u64(argv[optind], &v) != 0 || v < 1 || v > MAX_BENCH_DEVS) {
                fprintf(stderr, "bad --layout %s (a keyword and a device count)\n", optarg);
                return 2;
            }
            cfg.layout_kw = optarg;
            cfg.ndevs = (unsigned)v;
            optind++;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (cfg.dir == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (cfg.size % cfg.block != 0) {
        fprintf(stderr, "--size must be a multiple of --block\n");
        return 2;
    }

    struct gen g;
    if (gen_init(&g, &cfg) != 0) {
        fprintf(stderr, "out of memory\n");
        return 1;
    }
    int ret = cfg.baseline ? run_baseline(&cfg, &g) : run_engine(&cfg, &g);
    free(g.ring);
    return ret;
}
