/* SPDX-License-Identifier: MIT */
/*
 * lcpfs-stress: crash-consistency stress of the pool engine (our ztest).
 *
 * Theory of operation
 * -------------------
 * The parent creates a pool of file vdevs, exports it and then runs rounds:
 *
 *   fork ──► child: import, send READY, random object + dataset workload ──► SIGKILL (or exit)
 *                       │ one record per operation, sent before its tx_commit
 *                       ▼
 *   parent: read records ──► reap ──► verify_pool ──► import ──► replay ──► compare ──► export
 *
 * The child reports every operation over a pipe as a fixed-size record {type, object, offset,
 * length, data seed, txg of its tx, op number, head slot, ...} after the operation succeeded and
 * before tx_commit, and a SYNCED record with the txg pool_sync() returned. Written data is a pure
 * function of (data seed, byte offset), so a record is enough to redo a write.
 *
 * The parent keeps a model of the pool as of the last verified state (stress_ds.h): per dataset
 * head the objects with their id, properties, creation txg, size and contents (a flat buffer),
 * and the namespace (below). After the child is reaped it runs the offline verifier (0
 * violations), imports the pool, and checks that the imported txg is at least every txg
 * acknowledged as durable (nothing lost), that import did not rewind, then applies exactly the
 * reported operations with txg <= imported txg, in report order, and compares every object — size,
 * properties, creation txg, full contents — and the set of object ids of every head with the
 * pool (nothing from the future, nothing lost). The model then is the pool's state.
 *
 * Datasets
 * --------
 * Besides the root dataset's objects the child works in up to seven more filesystems with fixed
 * names (head slots, stress_ds.c): object ops inside them through ds_open/ds_tx_assign, reported
 * like the root's (before tx_commit, with the tx's txg and the head slot), and namespace ops:
 * create, snapshot (one to three heads in one call, the root included), destroy of snapshots and
 * of heads (-r, and -R when clones depend on them), clone, rollback (to the newest snapshot, or to
 * an older one with -r), promote, hold and release. A namespace op is a sync task: atomic, and
 * durable when it returns 0. The child reports it twice:
 *   INTENT  before the call (txg 0): from here on it may or may not have happened;
 *   DONE    after the call returned 0, with S = the pool's synced txg read then.
 * The op ran in one txg T with  (txg of every earlier record) <= T <= S < (txg of every later
 * record): its task is queued on the open txg after the earlier records' txs committed, the call
 * returns once T is synced, and the open txg is always above the synced one. So S keeps reported
 * txgs non-decreasing (invariant 2) and the op replays in report order exactly where it happened
 * relative to the data ops: a snapshot holds every write reported before it and none after, a
 * rollback discards every write of its head reported before it.
 *   Replay: a DONE op must apply (S <= imported txg, or a durable op was lost). An INTENT without
 * DONE can only be the last record (the child died in the call, or before sending DONE). If an
 * earlier record was not committed (txg > imported), the op cannot have happened (T >= that txg).
 * Otherwise both outcomes are legal and the pool decides: the parent applies the op to a copy of
 * the model, compares the namespace part quietly (names, origins, holds, head contents) and takes
 * the copy if the pool matches it, else keeps the model without the op. The full comparison that
 * follows reports any difference, so a half-done op (some of the snapshots of one call, part of
 * a recursive destroy) fails either way.
 *   Snapshot immutability: when the parent applies a snapshot it records model_hash() of the
 * head's contents (ids, types, block sizes, properties, creation txgs, sizes, bytes). After every
 * round every snapshot is read back from the pool, hashed the same way, and must equal the hash
 * recorded at its creation. The model also keeps each snapshot's contents (the root's: the hash
 * only), which clones and rollbacks copy, and the child checks random snapshot reads against it.
 *   The model predicts the engine's answer to every namespace op (dsm_expect). The child reports
 * only ops predicted to succeed; a few deliberate ones must be refused (a held snapshot, a head
 * with snapshots without -r, rollback past newer snapshots without -r) and send no records, as
 * nothing may change. Promotes the engine refuses (a clone of the root, or of an ancestor's
 * snapshot) and destroys it refuses as cycles (-ELOOP) are predicted and not attempted.
 *
 * Invariants the checks rely on:
 *   1. A txg commits only after every tx assigned to it has committed (core/txg.c invariant 2),
 *      and each record is in the pipe before its tx commits, so every operation of a committed
 *      txg was reported.
 *   2. The child is single-threaded above the engine, so reported txgs never decrease (INTENT
 *      records carry none) and the operations with txg <= T are a prefix of the report order.
 *   3. Pipe writes of at most PIPE_BUF bytes are atomic: a killed child never leaves half a
 *      record.
 *   4. Model buffers are zero past the object's size, so whole-buffer comparisons also check the
 *      tail of the last block.
 *   5. The parent never has the pool open while a child lives (it forks with no engine threads,
 *      imports only after waitpid), and every path after fork kills and reaps the child.
 *   6. The child holds no dataset handle across steps, so namespace ops never see its handles.
 *
 * A failed round (any violation) is reported and the pool is recreated from scratch so later
 * rounds start from a known state; with --keep the failing device files are kept as
 * DIR/stress-devN.fail-rR for lcpfs-check.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <getopt.h>
#include <poll.h>

#include "common/assert.h"
#include "common/err.h"
#include "common/log.h"
#include "core/dsl.h"
#include "core/objset.h"
#include "core/pool.h"
#include "core/verify.h"
#include "tests/stress/stress.h"
#include "tests/stress/stress_ds.h"

#define MAX_DEVS     8
#define HANG_MS      30000 /* a child that neither finishes nor gets ready this long is hung */
#define CHILD_MAX_MS 20000 /* a child stops its batch after this long */
#define DS_STEP_PCT  25    /* percent of the child's steps that go to stress_ds.c */

/* ---- the child: a random workload that reports every operation ------------------------------- */

int
child_fail(const struct child *c, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fprintf(stderr, "FAIL round %u seed %llu: child: %s\n", c->round, (unsigned long long)c->seed,
            msg);
    return -1;
}

int
child_send(const struct child *c, const struct rec *r)
{
    ssize_t n = write(c->fd, r, sizeof(*r));
    if (n != (ssize_t)sizeof(*r))
        return child_fail(c, "cannot report to the parent: %s", strerror(errno));
    return 0;
}

/* Picks and runs one random step: the root's object workload, or a dataset step. */
static int
child_step(struct child *c)
{
    if (rnd(&c->rng) % 100 < DS_STEP_PCT)
        return ds_child_step(c);
    return child_obj_step(c, 0, NULL, c->os);
}

static uint64_t
now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/*
 * The child's life: import, READY, nops steps (or until killed), then a clean exit by export
 * (everything durable, reported as SYNCED) or by close (uncommitted changes dropped). Returns the
 * exit status.
 */
static int
child_main(struct dsmodel *dm, const char *const *paths, size_t ndevs, int fd, unsigned round,
           uint64_t seed, unsigned nops)
{
    struct child c = { .dm = dm, .fd = fd, .rng = mix64(seed), .seed = seed, .round = round };
    dm->hashing = false; /* the parent records the hashes when it replays */
    if (log_get_level() > LOG_LEVEL_WARN)
        log_set_level(LOG_LEVEL_WARN); /* anything on the child's stderr fails the round */
    c.buf = malloc(OBJ_MAX);
    if (c.buf == NULL) {
        child_fail(&c, "out of memory");
        return 2;
    }
    struct pool_import_opts io = {
        .tuning = { .txg_timeout_ms = rnd_range(&c.rng, 5, 200),
                    .dirty_max_bytes = MiB(16),
                    .arc_max_bytes = (size_t)MiB(rnd_range(&c.rng, 1, 16)),
                    .journal_checkpoint_bytes = KiB(rnd_range(&c.rng, 16, 1024)) }
    };
    struct err_msg em = { 0 };
    int rc = pool_import(paths, ndevs, &io, &c.pool, &em);
    if (rc != 0) {
        child_fail(&c, "pool_import: %s", em.text);
        free(c.buf);
        return 2;
    }
    c.os = pool_root_objset(c.pool);
    struct pool_stats st;
    pool_get_stats(c.pool, &st);
    struct rec ready = { .type = REC_READY, .txg = st.synced_txg };
    rc = child_send(&c, &ready);
    uint64_t stop = now_ms() + CHILD_MAX_MS;
    for (unsigned i = 0; rc == 0 && i < nops && now_ms() < stop; i++)
        rc = child_step(&c);
    if (rc == 0 && rnd(&c.rng) % 2 == 0) {
        uint64_t txg = 0;
        rc = pool_sync(c.pool, &txg);
        struct rec s = { .type = REC_SYNCED, .txg = txg, .opno = c.opno };
        if (rc == 0)
            rc = child_send(&c, &s);
        else
            child_fail(&c, "pool_sync: %s", err_str(rc));
        int erc = pool_export(c.pool);
        if (rc == 0 && erc != 0)
            rc = child_fail(&c, "pool_export: %s", err_str(erc));
    } else {
        pool_close(c.pool);
    }
    free(c.buf);
    return rc == 0 ? 0 : 2;
}

/* ---- the parent ------------------------------------------------------------------------------ */

enum round_mode {
    MODE_KILL,       /* SIGKILL a random delay after READY */
    MODE_KILL_EARLY, /* SIGKILL a random delay after fork, often during import */
    MODE_FINISH,     /* a short batch; the child exits by itself */
};

struct stress {
    /* options */
    const char *dir;
    uint64_t seconds, seed, max_kills, dev_mib;
    unsigned ndevs;
    const char *layout; /* NULL: a stripe; else mirror, raidz1, raidz2 or raidz3 over all devices */
    bool verbose, keep;

    char paths[MAX_DEVS][PATH_MAX];
    const char *pathv[MAX_DEVS];
    struct dsmodel dm;  /* the pool as of the last verified state */
    struct dsmodel alt; /* scratch: dm plus an in-flight namespace op */
    uint64_t durable;   /* newest txg acknowledged durable */
    struct rec *recs;   /* this round's operation records, in report order */
    size_t nrecs, cap;
    uint64_t child_acked; /* newest SYNCED (or DONE) txg of this round */
    uint64_t ready_txg;   /* txg the child imported; 0 = no READY */
    uint64_t imported;    /* txg the parent imported after the round */
    size_t applied;       /* records replayed into the model (txg <= imported) */
    uint64_t vblocks;     /* blocks the verifier walked */
    uint64_t rng;         /* the parent's own choices (delays, modes) */
    uint8_t *buf;         /* OBJ_MAX read buffer */
    unsigned round, kills, clean, passed, failed;
    bool round_failed;
    char inflight[700];                 /* this round: the in-flight namespace op and its fate */
    unsigned ns_applied[REC_TYPES];     /* namespace ops replayed, per type (whole session) */
    unsigned inflight_yes, inflight_no; /* in-flight namespace ops that happened / did not */
};
static void fail(struct stress *st, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Reports one failure of the current round. */
static void
fail(struct stress *st, const char *fmt, ...)
{
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    printf("FAIL round %u seed %llu: %s\n", st->round, (unsigned long long)(st->seed ^ st->round),
           msg);
    fflush(stdout);
    st->round_failed = true;
}

static void
verify_msg(void *arg, const char *msg)
{
    fail(arg, "verify: %s", msg);
}

/* Creates a fresh pool (removing old device files) and exports it; the model starts empty. */
static int
stress_create_pool(struct stress *st)
{
    for (unsigned i = 0; i < st->ndevs; i++)
        unlink(st->paths[i]);
    struct pool_opts o = { .create_files = true,
                           .create_size = MiB(st->dev_mib),
                           .txg_timeout_ms = 60000,
                           .arc_max_bytes = MiB(8) };
    struct pool *p = NULL;
    struct err_msg em = { 0 };
    const char *words[MAX_DEVS + 1];
    size_t nwords = 0;
    if (st->layout != NULL)
        words[nwords++] = st->layout;
    for (unsigned i = 0; i < st->ndevs; i++)
        words[nwords++] = st->pathv[i];
    int rc = pool_create(POOL_NAME, words, nwords, &o, &p, &em);
    if (rc != 0) {
        fprintf(stderr, "lcpfs-stress: cannot create pool in '%s': %s\n", st->dir, em.text);
        return rc;
    }
    rc = pool_sync(p, &st->durable);
    int erc = pool_export(p);
    if (rc == 0)
        rc = erc;
    if (rc != 0)
        fprintf(stderr, "lcpfs-stress: cannot export new pool: %s\n", err_str(rc));
    dsm_reset(&st->dm);
    return rc;
}

/* Takes one record from the child. Returns true for READY. */
static bool
stress_take(struct stress *st, const struct rec *r)
{
    if (r->type == REC_READY) {
        st->ready_txg = r->txg;
        if (r->txg < st->durable)
            fail(st, "child imported txg %llu, older than durable txg %llu",
                 (unsigned long long)r->txg, (unsigned long long)st->durable);
        return true;
    }
    if (r->type == REC_SYNCED || (REC_IS_NS(r->type) && (r->attr & DSOP_DONE))) {
        if (r->txg > st->child_acked)
            st->child_acked = r->txg;
        if (r->type == REC_SYNCED)
            return false;
    }
    bool intent = REC_IS_NS(r->type) && (r->attr & DSOP_INTENT);
    uint64_t prev = 0; /* txg of the newest record that has one */
    for (size_t i = st->nrecs; i > 0 && prev == 0; i--)
        if (!(REC_IS_NS(st->recs[i - 1].type) && (st->recs[i - 1].attr & DSOP_INTENT)))
            prev = st->recs[i - 1].txg;
    if (!intent && r->txg < prev) /* invariant 2 */
        fail(st, "op %llu has txg %llu, older than the previous op's %llu",
             (unsigned long long)r->opno, (unsigned long long)r->txg, (unsigned long long)prev);
    if (st->nrecs == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 4096;
        struct rec *n = realloc(st->recs, cap * sizeof(*n));
        VERIFY(n != NULL);
        st->recs = n;
        st->cap = cap;
    }
    st->recs[st->nrecs++] = *r;
    return false;
}

/* Parses whole records out of buf[0..*have); keeps a partial one. Returns true on READY. */
static bool
stress_parse(struct stress *st, uint8_t *buf, size_t *have)
{
    bool ready = false;
    size_t used = 0;
    for (; *have - used >= sizeof(struct rec); used += sizeof(struct rec)) {
        struct rec r;
        memcpy(&r, buf + used, sizeof(r));
        ready |= stress_take(st, &r);
    }
    memmove(buf, buf + used, *have - used);
    *have -= used;
    return ready;
}

/*
 * Reads the child's records and its stderr until both reach EOF, SIGKILLing the child at its
 * deadline, then reaps it. Whatever the child writes to stderr (a sanitizer report, a failed
 * assertion, an engine warning) is copied to ours and fails the round: a SIGKILL landing while a
 * sanitizer symbolizes its report must not hide it. The kill is harmless when the child already
 * exited: it stays a zombie (its pid cannot be reused) until waitpid. Returns the wait status;
 * *killed says whether SIGKILL was sent, *hung whether the hang guard sent it.
 */
static int
stress_collect(struct stress *st, pid_t pid, const int fds[2], enum round_mode mode,
               uint64_t delay_ms, bool *killed, bool *hung)
{
    uint8_t buf[64 * sizeof(struct rec)];
    size_t have = 0;
    bool stderr_seen = false;
    uint64_t kill_at = now_ms() + (mode == MODE_KILL_EARLY ? delay_ms : HANG_MS);
    bool guard = mode != MODE_KILL_EARLY; /* kill_at is the hang guard, not a planned kill */
    struct pollfd pfd[2] = { { .fd = fds[0], .events = POLLIN },
                             { .fd = fds[1], .events = POLLIN } };
    *killed = *hung = false;
    while (pfd[0].fd >= 0 || pfd[1].fd >= 0) {
        int timeout = -1;
        if (!*killed) {
            uint64_t t = now_ms();
            timeout = kill_at > t ? (int)(kill_at - t) : 0;
        }
        int n = poll(pfd, 2, timeout); /* negative fds are skipped */
        if (n < 0 && errno != EINTR) {
            fail(st, "poll: %s", strerror(errno));
            break;
        }
        if (n > 0 && pfd[0].revents != 0) {
            ssize_t got = read(pfd[0].fd, buf + have, sizeof(buf) - have);
            if (got <= 0 && !(got < 0 && errno == EINTR))
                pfd[0].fd = -1; /* EOF: every write end closed, the child is gone */
            have += got > 0 ? (size_t)got : 0;
            if (stress_parse(st, buf, &have) && mode == MODE_KILL) {
                kill_at = now_ms() + delay_ms;
                guard = false;
            }
        }
        if (n > 0 && pfd[1].revents != 0) {
            char text[4096];
            ssize_t got = read(pfd[1].fd, text, sizeof(text));
            if (got <= 0 && !(got < 0 && errno == EINTR))
                pfd[1].fd = -1;
            if (got > 0) {
                fwrite(text, 1, (size_t)got, stderr);
                stderr_seen = true;
            }
        }
        if (!*killed && now_ms() >= kill_at) {
            *hung = guard;
            if (kill(pid, SIGKILL) != 0)
                fail(st, "kill child %d: %s", (int)pid, strerror(errno));
            *killed = true;
        }
    }
    if (!*killed) { /* the error path above: never leave the child running */
        kill(pid, SIGKILL);
        *killed = true;
    }
    int status = 0;
    while (waitpid(pid, &status, 0) < 0)
        VERIFY(errno == EINTR);
    if (have != 0)
        fail(st, "torn record (%zu bytes) at the end of the report", have);
    if (stderr_seen)
        fail(st, "child wrote to stderr (copied above)");
    return status;
}

/* For triage: prints this round's ops on object id of head ds that touch byte `at`. */
static void
stress_explain(void *arg, unsigned ds, uint64_t id, uint64_t at)
{
    const struct stress *st = arg;
    for (size_t i = 0; i < st->nrecs; i++) {
        const struct rec *r = &st->recs[i];
        if (REC_IS_NS(r->type)) {
            if (r->attr & DSOP_DONE)
                printf("  op %llu txg %llu: %s (namespace)\n", (unsigned long long)r->opno,
                       (unsigned long long)r->txg, rec_name(r->type));
            continue;
        }
        bool covers = r->type == REC_CREATE || r->type == REC_DESTROY || r->type == REC_TRUNCATE ||
                      (at >= r->off && at - r->off < r->len && r->type != REC_PROPS);
        if (r->ds != ds || r->obj != id || !covers)
            continue;
        printf("  op %llu txg %llu%s: %s off %llu len %llu seed %#llx\n",
               (unsigned long long)r->opno, (unsigned long long)r->txg,
               r->txg <= st->imported ? "" : " (not committed)", rec_name(r->type),
               (unsigned long long)r->off, (unsigned long long)r->len, (unsigned long long)r->seed);
    }
}

static void
check_msg(void *arg, const char *msg)
{
    fail(arg, "%s", msg);
}

static bool
is_intent(const struct rec *r)
{
    return REC_IS_NS(r->type) && (r->attr & DSOP_INTENT);
}

/*
 * Replays the committed prefix of the round's records into the model: every record with txg <=
 * imported, in report order, and every namespace op reported DONE. Returns the index of a
 * namespace op reported INTENT but not DONE (the child died in it), or -1; *cut says whether a
 * record before it was not committed (then the op cannot have happened).
 */
static ssize_t
stress_replay(struct stress *st, uint64_t txg, bool *cut)
{
    size_t i = 0;
    ssize_t inflight = -1;
    *cut = false;
    st->applied = 0;
    for (; i < st->nrecs; i++) {
        const struct rec *r = &st->recs[i];
        if (is_intent(r)) {
            if (i + 1 < st->nrecs && st->recs[i + 1].opno == r->opno &&
                (st->recs[i + 1].attr & DSOP_DONE))
                continue; /* DONE follows */
            if (i + 1 < st->nrecs)
                fail(st, "op %llu: %s reported without DONE, but more records follow",
                     (unsigned long long)r->opno, rec_name(r->type));
            inflight = (ssize_t)i;
            break;
        }
        if (r->txg > txg) {
            *cut = true;
            break;
        }
        char why[700];
        if (dsm_apply(&st->dm, r, why, sizeof(why)) != 0) {
            fail(st, "replaying op %llu (txg %llu): %s", (unsigned long long)r->opno,
                 (unsigned long long)r->txg, why);
            return -1;
        }
        st->applied++;
        if (REC_IS_NS(r->type))
            st->ns_applied[r->type]++;
    }
    for (; *cut && i < st->nrecs; i++) {
        const struct rec *r = &st->recs[i];
        if (REC_IS_NS(r->type) && (r->attr & DSOP_DONE))
            fail(st, "op %llu (%s) returned as durable at txg %llu, but the pool imported txg %llu",
                 (unsigned long long)r->opno, rec_name(r->type), (unsigned long long)r->txg,
                 (unsigned long long)txg);
        else if (is_intent(r) && i + 1 == st->nrecs)
            inflight = (ssize_t)i;
    }
    return inflight;
}

/*
 * The child died in namespace op r: decides from the pool whether it happened. Both outcomes are
 * legal unless an earlier record was not committed (cut); the model takes the one the pool shows.
 */
static void
stress_decide(struct stress *st, struct pool *p, const struct rec *r, bool cut)
{
    char what[400], why[700];
    dsm_describe(&st->dm, r, what, sizeof(what));
    bool happened = false;
    if (!cut) {
        int rc = dsm_copy(&st->alt, &st->dm);
        if (rc == 0)
            rc = dsm_apply(&st->alt, r, why, sizeof(why));
        if (rc != 0) {
            fail(st, "in-flight op %llu (%s): %s", (unsigned long long)r->opno, what,
                 rc == -ENOMEM ? "out of memory" : why);
        } else {
            struct checker q = { .quiet = true, .buf = st->buf };
            dsm_check(&q, p, &st->alt, false);
            happened = q.nfail == 0;
        }
        if (happened) {
            struct dsmodel t = st->dm;
            st->dm = st->alt;
            st->alt = t;
            st->ns_applied[r->type]++;
        }
        dsm_reset(&st->alt);
    }
    happened ? st->inflight_yes++ : st->inflight_no++;
    snprintf(st->inflight, sizeof(st->inflight), "; killed in op %llu %s: %s",
             (unsigned long long)r->opno, what,
             happened ? "it happened"
             : cut    ? "it cannot have happened"
                      : "it did not happen");
}

/*
 * The post-crash checks: verifier, import, nothing lost, no rewind, replay of the committed
 * prefix, the in-flight namespace op, comparison. Leaves the pool exported or closed.
 */
static void
stress_check(struct stress *st)
{
    struct verify_report rep;
    struct verify_opts vo = { 0 };
    struct err_msg em = { 0 };
    int vrc = verify_pool(st->pathv, st->ndevs, &vo, &rep, verify_msg, st, &em);
    st->vblocks = vrc == 0 ? rep.blocks : 0;
    if (vrc != 0)
        fail(st, "verify_pool cannot import: %s", em.text[0] ? em.text : err_str(vrc));
    else if (rep.errors != 0)
        fail(st,
             "verifier: %llu errors (checksum %llu, io %llu, structure %llu, birth %llu, fill "
             "%llu; leaked %llu B, overlap %llu B, free-but-reachable %llu B)",
             (unsigned long long)rep.errors, (unsigned long long)rep.cksum_errors,
             (unsigned long long)rep.io_errors, (unsigned long long)rep.structure_errors,
             (unsigned long long)rep.birth_errors, (unsigned long long)rep.fill_errors,
             (unsigned long long)rep.leaked_bytes, (unsigned long long)rep.overlap_bytes,
             (unsigned long long)rep.free_but_reachable_bytes);

    struct pool_import_opts io = { .tuning = { .txg_timeout_ms = 60000, .arc_max_bytes = MiB(8) } };
    struct pool *p = NULL;
    memset(&em, 0, sizeof(em));
    int rc = pool_import(st->pathv, st->ndevs, &io, &p, &em);
    if (rc != 0) {
        fail(st, "pool_import: %s", em.text[0] ? em.text : err_str(rc));
        return;
    }
    struct pool_stats ps;
    pool_get_stats(p, &ps);
    uint64_t txg = ps.synced_txg;
    st->imported = txg;
    uint64_t acked = st->durable > st->child_acked ? st->durable : st->child_acked;
    if (txg < acked)
        fail(st, "imported txg %llu, but txg %llu was acknowledged durable (lost commits)",
             (unsigned long long)txg, (unsigned long long)acked);
    /* A SIGKILL tears no write, so the newest uberblock must load: any rewind is a bug. */
    if (ps.open_txg != txg + 1)
        fail(st, "import rewound to txg %llu (newest uberblock is txg %llu)",
             (unsigned long long)txg, (unsigned long long)(ps.open_txg - 1));
    if (vrc == 0 && rep.txg != txg)
        fail(st, "verifier checked txg %llu, import chose txg %llu", (unsigned long long)rep.txg,
             (unsigned long long)txg);
    if (ps.cksum_errors || ps.read_errors)
        fail(st, "import saw %llu checksum and %llu read errors",
             (unsigned long long)ps.cksum_errors, (unsigned long long)ps.read_errors);

    bool cut;
    ssize_t inflight = stress_replay(st, txg, &cut);
    if (inflight >= 0)
        stress_decide(st, p, &st->recs[inflight], cut);
    struct checker ck = { .fail = check_msg, .explain = stress_explain, .arg = st, .buf = st->buf };
    model_compare(&ck, pool_root_objset(p), &st->dm.heads[0].m, POOL_NAME, 0);
    dsm_check(&ck, p, &st->dm, true);
    if (ck.nfail > 0 && st->inflight[0] != 0)
        fail(st, "(the child was killed in a namespace op%s)", st->inflight);

    /* Leave the pool exported or merely closed: the child sees both kinds of import. */
    if (rnd(&st->rng) % 2 == 0) {
        rc = pool_sync(p, &st->durable);
        int erc = pool_export(p);
        if (rc != 0 || erc != 0)
            fail(st, "parent pool_sync/pool_export: %s", err_str(rc ? rc : erc));
    } else {
        st->durable = txg;
        pool_close(p);
    }
}

/* Keeps the device files of a failed round aside (with --keep) and starts a fresh pool. */
static int
stress_recover(struct stress *st)
{
    if (st->keep) {
        for (unsigned i = 0; i < st->ndevs; i++) {
            char to[PATH_MAX + 32];
            snprintf(to, sizeof(to), "%s.fail-r%u", st->paths[i], st->round);
            if (rename(st->paths[i], to) == 0)
                printf("kept failed pool device %s\n", to);
        }
    }
    return stress_create_pool(st);
}

/* Runs one round: fork the child, collect, reap, check. Returns -1 on a setup error. */
static int
stress_round(struct stress *st)
{
    uint64_t child_seed = st->seed ^ st->round;
    unsigned r = (unsigned)(rnd(&st->rng) % 16);
    enum round_mode mode = r == 0 ? MODE_KILL_EARLY : r <= 2 ? MODE_FINISH : MODE_KILL;
    uint64_t delay_ms =
        mode == MODE_KILL_EARLY ? rnd_range(&st->rng, 1, 150) : rnd_range(&st->rng, 50, 400);
    unsigned nops = mode == MODE_FINISH ? (unsigned)rnd_range(&st->rng, 10, 300) : UINT_MAX;
    st->round_failed = false;
    st->nrecs = 0;
    st->child_acked = 0;
    st->ready_txg = st->imported = st->vblocks = 0;
    st->applied = 0;
    st->inflight[0] = 0;

    int rec_pipe[2], err_pipe[2];
    if (pipe2(rec_pipe, O_CLOEXEC) != 0) {
        perror("lcpfs-stress: pipe");
        return -1;
    }
    if (pipe2(err_pipe, O_CLOEXEC) != 0) {
        perror("lcpfs-stress: pipe");
        close(rec_pipe[0]);
        close(rec_pipe[1]);
        return -1;
    }
    fflush(NULL); /* the child exits through exit(): no stdio buffer may be flushed twice */
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0) {
        /* Die with the parent, whatever kills it (checked again: it may already be gone). */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(3);
        close(rec_pipe[0]);
        close(err_pipe[0]);
        if (dup2(err_pipe[1], STDERR_FILENO) < 0)
            _exit(3);
        close(err_pipe[1]);
        exit(child_main(&st->dm, st->pathv, st->ndevs, rec_pipe[1], st->round, child_seed, nops));
    }
    close(rec_pipe[1]);
    close(err_pipe[1]);
    if (pid < 0) {
        perror("lcpfs-stress: fork");
        close(rec_pipe[0]);
        close(err_pipe[0]);
        return -1;
    }
    uint64_t start = now_ms();
    bool killed, hung;
    const int fds[2] = { rec_pipe[0], err_pipe[0] };
    int status = stress_collect(st, pid, fds, mode, delay_ms, &killed, &hung);
    close(rec_pipe[0]);
    close(err_pipe[0]);
    uint64_t child_ms = now_ms() - start;

    const char *how;
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && killed && !hung) {
        st->kills++;
        how = "killed";
    } else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
        st->clean++;
        how = "exited";
    } else {
        how = "failed";
        if (hung)
            fail(st, "child hung (no progress for %d ms)", HANG_MS);
        else if (WIFSIGNALED(status))
            fail(st, "child died of signal %d (%s)", WTERMSIG(status), strsignal(WTERMSIG(status)));
        else
            fail(st, "child exited with status %d", WEXITSTATUS(status));
    }

    stress_check(st);
    unsigned nroot = 0, nds = 0, nns = 0, nrootsnaps = 0;
    for (unsigned i = 0; i < DS_SNAPS; i++)
        nrootsnaps += st->dm.snaps[i].live && st->dm.snaps[i].head == 0;
    for (size_t i = 0; i < st->nrecs; i++) {
        const struct rec *rr = &st->recs[i];
        if (REC_IS_NS(rr->type))
            nns += (rr->attr & DSOP_INTENT) != 0;
        else
            *(rr->ds == 0 ? &nroot : &nds) += 1;
    }
    if (st->verbose)
        printf("round %u seed %llu: child %s after %llu ms (%s, delay %llu ms), %zu ops, "
               "imported txg %llu, %zu ops applied (root %u, datasets %u, namespace %u), %u "
               "datasets, %u snapshots (%u of the root), %llu blocks verified%s, %s\n",
               st->round, (unsigned long long)child_seed, how, (unsigned long long)child_ms,
               mode == MODE_KILL         ? "kill"
               : mode == MODE_KILL_EARLY ? "early kill"
                                         : "finish",
               (unsigned long long)delay_ms, st->nrecs, (unsigned long long)st->imported,
               st->applied, nroot, nds, nns, dsm_nheads(&st->dm), dsm_nsnaps(&st->dm), nrootsnaps,
               (unsigned long long)st->vblocks, st->inflight, st->round_failed ? "FAILED" : "ok");
    if (st->round_failed) {
        st->failed++;
        return stress_recover(st);
    }
    st->passed++;
    return 0;
}

static void
usage(FILE *f)
{
    fprintf(f, "usage: lcpfs-stress --dir DIR --seconds N --seed S [--kills K] [--devices D]\n"
               "                    [--dev-size MiB] [--layout mirror|raidz1|raidz2|raidz3]\n"
               "                    [--keep] [--verbose]\n"
               "  Crash-consistency stress: a child runs a random object and dataset workload\n"
               "  (snapshots, clones, rollback, destroy, promote, holds) on a pool of D file\n"
               "  vdevs in DIR and is SIGKILLed at random; after each kill the pool is verified\n"
               "  and compared with a model of every reported operation.\n"
               "  Runs N seconds, or until K kills when --kills is given. --layout groups the\n"
               "  D devices into one mirror or RAID-Z (default: a stripe).\n");
}

static int
parse_args(struct stress *st, int argc, char **argv)
{
    static const struct option longopts[] = {
        { "dir", required_argument, NULL, 'd' },
        { "seconds", required_argument, NULL, 't' },
        { "seed", required_argument, NULL, 's' },
        { "kills", required_argument, NULL, 'k' },
        { "devices", required_argument, NULL, 'n' },
        { "dev-size", required_argument, NULL, 'z' },
        { "keep", no_argument, NULL, 'K' },
        { "verbose", no_argument, NULL, 'v' },
        { "layout", required_argument, NULL, 'L' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    bool have_seconds = false, have_seed = false;
    int c;
    while ((c = getopt_long(argc, argv, "d:t:s:k:n:z:L:Kvh", longopts, NULL)) != -1) {
        char *end = NULL;
        uint64_t v = 0;
        if (optarg != NULL) {
            errno = 0;
            v = strtoull(optarg, &end, 0);
            if (c != 'd' && c != 'L' && (errno != 0 || end == optarg || *end != '\0')) {
                fprintf(stderr, "lcpfs-stress: bad number '%s'\n", optarg);
                return -1;
            }
        }
        switch (c) {
        case 'd':
            st->dir = optarg;
            break;
        case 't':
            st->seconds = v;
            have_seconds = true;
            break;
        case 's':
            st->seed = v;
            have_seed = true;
            break;
        case 'k':
            st->max_kills = v;
            break;
        case 'n':
            st->ndevs = (unsigned)v;
            break;
        case 'z':
            st->dev_mib = v;
            break;
        case 'L':
            if (!pool_layout_is_keyword(optarg)) {
                fprintf(stderr, "lcpfs-stress: unknown layout '%s'\n", optarg);
                return -1;
            }
            st->layout = optarg;
            break;
        case 'K':
            st->keep = true;
            break;
        case 'v':
            st->verbose = true;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        default:
            return -1;
        }
    }
    if (st->dir == NULL || !have_seconds || !have_seed || optind != argc) {
        usage(stderr);
        return -1;
    }
    if (st->ndevs < 1 || st->ndevs > MAX_DEVS || st->dev_mib < VDEV_MIN_SIZE >> 20 ||
        st->dev_mib > 1u << 20) {
        fprintf(stderr, "lcpfs-stress: need 1..%d devices of at least %llu MiB\n", MAX_DEVS,
                (unsigned long long)(VDEV_MIN_SIZE >> 20));
        return -1;
    }
    return 0;
}

int
main(int argc, char **argv)
{
    struct stress st = { .ndevs = 2, .dev_mib = 128 };
    log_set_prefix("lcpfs-stress");
    if (parse_args(&st, argc, argv) != 0)
        return 2;
    if (getenv("LCPFS_LOG") == NULL)
        log_set_level(LOG_LEVEL_WARN); /* every import logs at info */
    if (mkdir(st.dir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "lcpfs-stress: cannot create '%s': %s\n", st.dir, strerror(errno));
        return 2;
    }
    for (unsigned i = 0; i < st.ndevs; i++) {
        snprintf(st.paths[i], sizeof(st.paths[i]), "%s/stress-dev%u", st.dir, i);
        st.pathv[i] = st.paths[i];
    }
    st.rng = mix64(st.seed ^ 0x5354524553530000ull);
    dsm_init(&st.dm, true);
    dsm_init(&st.alt, true);
    st.buf = malloc(OBJ_MAX);
    if (st.buf == NULL || stress_create_pool(&st) != 0)
        return 2;
    printf("lcpfs-stress: seed %llu, %u device(s) of %llu MiB in %s, %llu s%s\n",
           (unsigned long long)st.seed, st.ndevs, (unsigned long long)st.dev_mib, st.dir,
           (unsigned long long)st.seconds, st.max_kills ? "" : " (no kill limit)");
    uint64_t end = now_ms() + st.seconds * 1000;
    int rc = 0;
    while (rc == 0 && now_ms() < end && (st.max_kills == 0 || st.kills < st.max_kills)) {
        rc = stress_round(&st);
        st.round++;
    }
    if (rc != 0)
        printf("lcpfs-stress: stopped after round %u: setup error\n", st.round - 1);
    printf("rounds: %u (%u clean exits)\n", st.round, st.clean);
    printf("kills: %u\n", st.kills);
    printf("dataset ops replayed:");
    for (unsigned t = REC_DS_CREATE; t < REC_TYPES; t++)
        printf(" %s %u", rec_name(t), st.ns_applied[t]);
    printf("\nkilled in a dataset op: %u (it happened %u, it did not %u)\n",
           st.inflight_yes + st.inflight_no, st.inflight_yes, st.inflight_no);
    printf("failures: %u\n", st.failed);
    printf("stress: %u passed, %u failed\n", st.passed, st.failed);
    if (!st.keep) {
        for (unsigned i = 0; i < st.ndevs; i++)
            unlink(st.paths[i]);
        rmdir(st.dir); /* only if it is empty now */
    }
    dsm_reset(&st.dm);
    dsm_reset(&st.alt);
    free(st.recs);
    free(st.buf);
    return rc == 0 && st.failed == 0 && st.kills > 0 ? 0 : 1;
}
