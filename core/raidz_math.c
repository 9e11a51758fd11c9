/* SPDX-License-Identifier: MIT */
/*
 * raidz_math: RAID-Z parity generation and reconstruction on top of ISA-L. The theory of
 * operation is in raidz_math.h; this file adds the segment walk.
 *
 * Segment walk (raidz_encode). ec_encode_data() wants sources and outputs of one common length.
 * Our columns differ in length, so the byte range [0, longest output) is cut at every column
 * length: within a piece, each source either has bytes (it is read in place) or has ended (it
 * reads from raidz_zeros, which is why pieces with an ended source are at most RAIDZ_ZERO_CHUNK
 * long), and each output either extends over the whole piece or has ended. Outputs are ordered
 * by non-increasing length, so the live outputs are always a prefix of the rows; when that prefix
 * shrinks the tables are rebuilt for the shorter row count from the same coefficient rows (at
 * most twice per call, and only when missing data columns differ in length).
 *
 * Invariants:
 *  1. A source is only read within [0, its length); an output is only written within
 *     [0, its length).
 *  2. The cached generator tables are never rebuilt in place: generation has equal-length
 *     outputs (all parity columns are as long as the longest data column).
 */
#include "core/raidz_math.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <isa-l/erasure_code.h>

#include "common/assert.h"
#include "common/err.h"

#define RAIDZ_TBL_PER_COEF 32                /* bytes of ISA-L expanded table per coefficient */
#define RAIDZ_ZERO_CHUNK   (64u << 10)       /* size of the zero source for ended columns */
#define RAIDZ_MAX_PIECE    ((size_t)1 << 30) /* ec_encode_data takes an int length */
#define RAIDZ_MAX_COLS     (RAIDZ_MAX_PARITY + RAIDZ_MAX_DATA)

_Static_assert(RAIDZ_MAX_COLS <= 255, "generator 2 has order 255: wider stripes are not MDS");
_Static_assert(RAIDZ_ZERO_CHUNK <= RAIDZ_MAX_PIECE, "zero chunk within one ec_encode_data call");

/* Stands in for a source column past its end. Never written (ISA-L only reads sources); not
 * const because ec_encode_data takes non-const source pointers. */
static uint8_t raidz_zeros[RAIDZ_ZERO_CHUNK];

/* Expanded generator tables by (nparity - 1, ndata), filled on first use, never freed. */
static _Atomic(uint8_t *) raidz_gen_cache[RAIDZ_MAX_PARITY][RAIDZ_MAX_DATA + 1];

/* Fills g (row-major, nparity x ndata) with the generator rows: g[p][i] = (2^p)^(ndata-1-i). */
static void
raidz_gen_rows(unsigned nparity, unsigned ndata, uint8_t *g)
{
    for (unsigned p = 0; p < nparity; p++) {
        uint8_t gen = (uint8_t)(1u << p), c = 1;
        for (unsigned i = ndata; i-- > 0;) {
            g[p * ndata + i] = c;
            c = gf_mul(c, gen);
        }
    }
}

/* Sets *out to the cached expanded tables of the nparity x ndata generator. 0 or -ENOMEM. */
static int
raidz_gen_tables(unsigned nparity, unsigned ndata, uint8_t **out)
{
    _Atomic(uint8_t *) *slot = &raidz_gen_cache[nparity - 1][ndata];
    uint8_t *t = atomic_load_explicit(slot, memory_order_acquire);
    if (t == NULL) {
        size_t sz = (size_t)RAIDZ_TBL_PER_COEF * nparity * ndata; /* a multiple of 32 */
        t = aligned_alloc(32, sz);
        if (t == NULL)
            return ERR(-ENOMEM);
        uint8_t g[RAIDZ_MAX_PARITY * RAIDZ_MAX_DATA];
        raidz_gen_rows(nparity, ndata, g);
        ec_init_tables((int)ndata, (int)nparity, g, t);
        uint8_t *winner = NULL;
        if (!atomic_compare_exchange_strong_explicit(slot, &winner, t, memory_order_acq_rel,
                                                     memory_order_acquire)) {
            free(t); /* another thread filled the slot first; use its tables */
            t = winner;
        }
    }
    *out = t;
    return 0;
}

/*
 * out[r] = sum over s of coef[r][s] * src[s] for r < nout, byte by byte, where source s reads as
 * zero beyond srclen[s] and output r is written over [0, olen[r]) only. olen must be
 * non-increasing with olen[0] > 0. tbl holds the expanded tables of all nout rows; coef (row-major
 * nout x k) is needed only if the olen differ, to rebuild tbl for fewer rows (see the file
 * comment).
 */
static void
raidz_encode(unsigned k, uint8_t *const *src, const size_t *srclen, unsigned nout,
             uint8_t *const *out, const size_t *olen, uint8_t *coef, uint8_t *tbl)
{
    ASSERT(k >= 1 && k <= RAIDZ_MAX_DATA);
    ASSERT(nout >= 1 && nout <= RAIDZ_MAX_PARITY);
    ASSERT(olen[0] > 0);
    uint8_t *sp[RAIDZ_MAX_DATA];
    uint8_t *op[RAIDZ_MAX_PARITY];
    unsigned rows = nout, tbl_rows = nout;
    size_t total = olen[0];
    for (size_t pos = 0; pos < total;) {
        while (olen[rows - 1] <= pos)
            rows--; /* terminates: olen[0] = total > pos */
        if (rows < tbl_rows) {
            VERIFY(coef != NULL); /* invariant 2 */
            ec_init_tables((int)k, (int)rows, coef, tbl);
            tbl_rows = rows;
        }
        size_t end = olen[rows - 1];
        bool ended = false;
        for (unsigned s = 0; s < k; s++) {
            if (srclen[s] > pos) {
                sp[s] = src[s] + pos;
                if (srclen[s] < end)
                    end = srclen[s];
            } else {
                sp[s] = raidz_zeros;
                ended = true;
            }
        }
        size_t n = end - pos;
        if (ended && n > RAIDZ_ZERO_CHUNK)
            n = RAIDZ_ZERO_CHUNK;
        if (n > RAIDZ_MAX_PIECE)
            n = RAIDZ_MAX_PIECE;
        for (unsigned r = 0; r < rows; r++)
            op[r] = out[r] + pos;
        ec_encode_data((int)n, (int)k, (int)rows, tbl, sp, op);
        pos += n;
    }
}

/* Validates the arguments shared by both calls and sets *maxlen to the longest data length. */
static int
raidz_check(unsigned nparity, unsigned ndata, uint8_t *const *cols, const size_t *lens,
            size_t *maxlen)
{
    if (nparity < 1 || nparity > RAIDZ_MAX_PARITY || ndata < 1 || ndata > RAIDZ_MAX_DATA ||
        cols == NULL || lens == NULL)
        return ERR(-EINVAL);
    size_t m = 0;
    for (unsigned c = nparity; c < nparity + ndata; c++) {
        if (lens[c] > 0 && cols[c] == NULL)
            return ERR(-EINVAL);
        if (lens[c] > m)
            m = lens[c];
    }
    for (unsigned p = 0; p < nparity; p++) {
        if (lens[p] != m || (m > 0 && cols[p] == NULL))
            return ERR(-EINVAL);
    }
    *maxlen = m;
    return 0;
}

int
raidz_generate(unsigned nparity, unsigned ndata, uint8_t *const *cols, const size_t *lens)
{
    size_t maxlen;
    int rc = raidz_check(nparity, ndata, cols, lens, &maxlen);
    if (rc != 0)
        return rc;
    if (maxlen == 0)
        return 0;
    uint8_t *tbl;
    rc = raidz_gen_tables(nparity, ndata, &tbl);
    if (rc != 0)
        return rc;
    raidz_encode(ndata, cols + nparity, lens + nparity, nparity, cols, lens, NULL, tbl);
    return 0;
}

/*
 * The decode. Sources, in order: the surviving data columns U (by index), then the parity rows S
 * (the first nmd surviving parity columns), ndata sources in all. Outputs: the missing columns by
 * non-increasing length. With A = G[S][M] and B = G[S][U]:
 *   D_M = A^-1 * P_S + A^-1 * B * D_U
 *   P_j = G[j][M] * D_M + G[j][U] * D_U   for a missing parity row j
 * Returns 0, or -EINVAL if A is singular (cannot happen for ndata <= 255).
 */
int
raidz_reconstruct(unsigned nparity, unsigned ndata, uint8_t *const *cols, const size_t *lens,
                  const unsigned *missing, unsigned nmissing)
{
    size_t maxlen;
    int rc = raidz_check(nparity, ndata, cols, lens, &maxlen);
    if (rc != 0)
        return rc;
    if (nmissing > nparity || (nmissing > 0 && missing == NULL))
        return ERR(-EINVAL);
    unsigned width = nparity + ndata;
    bool is_missing[RAIDZ_MAX_COLS] = { false };
    for (unsigned m = 0; m < nmissing; m++) {
        if (missing[m] >= width || is_missing[missing[m]])
            return ERR(-EINVAL);
        is_missing[missing[m]] = true;
    }
    if (nmissing == 0 || maxlen == 0)
        return 0;

    /* Missing data (as data indices), missing parity rows, and the parity rows S used to solve. */
    unsigned md[RAIDZ_MAX_PARITY], mp[RAIDZ_MAX_PARITY], sp[RAIDZ_MAX_PARITY];
    unsigned nmd = 0, nmp = 0, ns = 0;
    for (unsigned c = 0; c < width; c++) {
        if (!is_missing[c])
            continue;
        if (c < nparity)
            mp[nmp++] = c;
        else
            md[nmd++] = c - nparity;
    }
    for (unsigned p = 0; p < nparity && ns < nmd; p++) {
        if (!is_missing[p])
            sp[ns++] = p;
    }
    VERIFY3U(ns, ==, nmd); /* nmd + nmp <= nparity */

    uint8_t *src[RAIDZ_MAX_DATA];
    size_t srclen[RAIDZ_MAX_DATA];
    unsigned u_idx[RAIDZ_MAX_DATA]; /* data index of source u, for u < nu */
    unsigned nu = 0;
    for (unsigned i = 0; i < ndata; i++) {
        if (is_missing[nparity + i])
            continue;
        u_idx[nu] = i;
        src[nu] = cols[nparity + i];
        srclen[nu] = lens[nparity + i];
        nu++;
    }
    for (unsigned s = 0; s < ns; s++) {
        src[nu + s] = cols[sp[s]];
        srclen[nu + s] = maxlen;
    }
    unsigned k = nu + ns;
    ASSERT3U(k, ==, ndata);

    uint8_t g[RAIDZ_MAX_PARITY * RAIDZ_MAX_DATA];
    raidz_gen_rows(nparity, ndata, g);

    /* dm: row r expresses missing data column md[r] over the k sources. */
    uint8_t dm[RAIDZ_MAX_PARITY * RAIDZ_MAX_DATA];
    if (nmd > 0) {
        uint8_t a[RAIDZ_MAX_PARITY * RAIDZ_MAX_PARITY], ainv[RAIDZ_MAX_PARITY * RAIDZ_MAX_PARITY];
        for (unsigned s = 0; s < nmd; s++) {
            for (unsigned r = 0; r < nmd; r++)
                a[s * nmd + r] = g[sp[s] * ndata + md[r]];
        }
        if (gf_invert_matrix(a, ainv, (int)nmd) != 0)
            return ERR(-EINVAL);
        for (unsigned r = 0; r < nmd; r++) {
            uint8_t *row = dm + r * k;
            for (unsigned u = 0; u < nu; u++) {
                uint8_t c = 0;
                for (unsigned s = 0; s < nmd; s++)
                    c ^= gf_mul(ainv[r * nmd + s], g[sp[s] * ndata + u_idx[u]]);
                row[u] = c;
            }
            for (unsigned s = 0; s < nmd; s++)
                row[nu + s] = ainv[r * nmd + s];
        }
    }

    /* Outputs by non-increasing length: parity rows (maxlen) first, then data by length. */
    unsigned ord[RAIDZ_MAX_PARITY]; /* missing data rows r in output order */
    for (unsigned r = 0; r < nmd; r++) {
        unsigned j = r;
        for (; j > 0 && lens[nparity + md[ord[j - 1]]] < lens[nparity + md[r]]; j--)
            ord[j] = ord[j - 1];
        ord[j] = r;
    }
    uint8_t coef[RAIDZ_MAX_PARITY * RAIDZ_MAX_DATA];
    uint8_t *out[RAIDZ_MAX_PARITY];
    size_t olen[RAIDZ_MAX_PARITY];
    unsigned nout = 0;
    for (unsigned q = 0; q < nmp; q++, nout++) {
        const uint8_t *gj = g + mp[q] * ndata;
        uint8_t *row = coef + nout * k;
        for (unsigned u = 0; u < nu; u++)
            row[u] = gj[u_idx[u]];
        for (unsigned s = 0; s < ns; s++)
            row[nu + s] = 0;
        for (unsigned r = 0; r < nmd; r++) {
            uint8_t f = gj[md[r]];
            for (unsigned x = 0; x < k; x++)
                row[x] ^= gf_mul(f, dm[r * k + x]);
        }
        out[nout] = cols[mp[q]];
        olen[nout] = maxlen;
    }
    for (unsigned q = 0; q < nmd; q++, nout++) {
        unsigned r = ord[q];
        memcpy(coef + nout * k, dm + r * k, k);
        out[nout] = cols[nparity + md[r]];
        olen[nout] = lens[nparity + md[r]];
    }
    if (olen[0] == 0)
        return 0; /* only empty data columns were missing */

    _Alignas(64) uint8_t tbl[RAIDZ_TBL_PER_COEF * RAIDZ_MAX_PARITY * RAIDZ_MAX_DATA];
    ec_init_tables((int)k, (int)nout, coef, tbl);
    raidz_encode(k, src, srclen, nout, out, olen, coef, tbl);
    return 0;
}
