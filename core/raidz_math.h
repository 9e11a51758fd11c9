/* SPDX-License-Identifier: MIT */
/*
 * raidz_math: RAID-Z parity generation and reconstruction over one stripe (pool-format.md §8
 * "Parity math"). Pure functions over caller-owned byte columns; knows nothing of vdevs, offsets,
 * sectors or I/O. The layout (which child holds which column, skip sectors) is vdev_raidz's job.
 *
 * Columns. A stripe has nparity (1..3) parity columns followed by ndata (1..RAIDZ_MAX_DATA) data
 * columns: cols[0] = P, cols[1] = Q, cols[2] = R, cols[nparity + i] = data column i. Column c is
 * lens[c] bytes long. Data columns may differ in length (RAID-Z "big" and "small" columns differ
 * by one sector; any set of lengths is handled); a data column reads as zero beyond its own
 * length. Every parity column must be exactly as long as the longest data column (otherwise
 * -EINVAL). A column of length 0 may be NULL; any other column pointer must be valid for lens[c]
 * bytes. No two columns may overlap.
 *
 * Math (ZFS generators; GF(2^8) with polynomial x^8+x^4+x^3+x^2+1 = 0x11d, the field ISA-L uses):
 *   P = XOR of D_i
 *   Q = sum of 2^(ndata-1-i) * D_i   (Horner: Q = Q*2 ^ D_i for i = 0..ndata-1)
 *   R = sum of 4^(ndata-1-i) * D_i
 * byte by byte. Since 2 has order 255 in this field, any nparity of the nparity + ndata columns
 * can be rebuilt from the rest as long as ndata <= 255; RAIDZ_MAX_DATA stays below that.
 *
 * Implementation: ISA-L ec_encode_data() does all byte work. Generation uses the nparity x ndata
 * generator matrix, whose expanded ISA-L tables are built once per (nparity, ndata) and cached for
 * the life of the process. Reconstruction solves only the missing data columns: with M the missing
 * data columns, U the surviving ones and S the first |M| surviving parity rows,
 * D_M = A^-1 * (P_S + B * D_U) where A = G[S][M] (at most 3x3, inverted with gf_invert_matrix) and
 * B = G[S][U]; these are exactly the rows of the inverse of the ndata x ndata matrix formed by the
 * identity rows of U and the parity rows S. Missing parity rows are expressed over the same
 * sources, so every missing column comes out of one ec_encode_data pass over ndata sources. Short
 * columns are handled by splitting the byte range at every distinct column length; beyond its
 * length a source column reads from a static zero buffer.
 *
 * Threads: both calls are thread-safe and reentrant (the table cache is filled lock-free with
 * atomics). They allocate only when filling the cache (once per (nparity, ndata), never freed);
 * raidz_reconstruct uses about 35 KiB of stack (decode tables and source lists).
 */
#ifndef LCPFS_CORE_RAIDZ_MATH_H
#define LCPFS_CORE_RAIDZ_MATH_H

#include <stddef.h>
#include <stdint.h>

enum {
    RAIDZ_MAX_PARITY = 3,
    RAIDZ_MAX_DATA = 252, /* nparity + ndata <= 255 children, like ZFS */
};

/*
 * Computes the nparity parity columns cols[0..nparity) from the data columns
 * cols[nparity..nparity+ndata). Borrows cols and lens; writes exactly lens[p] bytes of each parity
 * column p and nothing else. Parity columns must not overlap data columns.
 * Returns 0, -EINVAL (nparity or ndata out of range, NULL cols/lens or a NULL column of nonzero
 * length, a parity length different from the longest data length), -ENOMEM (first use of this
 * (nparity, ndata) and the table cache could not be allocated).
 */
int raidz_generate(unsigned nparity, unsigned ndata, uint8_t *const *cols, const size_t *lens);

/*
 * Rebuilds, in place, the columns listed in missing[0..nmissing) (indices into cols, 0..
 * nparity+ndata-1, any mix of parity and data, in any order, no duplicates, nmissing <= nparity)
 * from the other columns. Borrows everything. The missing columns' prior contents are ignored
 * (garbage is fine); the other columns are only read. A rebuilt data column gets exactly
 * lens[c] bytes written; bytes beyond a short column's length are not written. Of the surviving
 * parity columns only the first (in P, Q, R order) as many as there are missing data columns are
 * read. nmissing == 0 is a no-op (missing may be NULL then).
 * Combinatorial reconstruction overwrites the listed columns, so the caller keeps the originals
 * if it must try another set. To verify parity (scrub), point cols[p] at a scratch buffer, list p
 * as missing, and compare the result with the parity read from disk.
 * Returns 0, -EINVAL (arguments as for raidz_generate, an index out of range or repeated,
 * nmissing > nparity, missing == NULL with nmissing > 0, or a singular decode matrix -- impossible
 * for ndata <= RAIDZ_MAX_DATA and never seen in the tests). This implementation does not allocate,
 * so it does not return -ENOMEM today; callers should still treat -ENOMEM as possible.
 */
int raidz_reconstruct(unsigned nparity, unsigned ndata, uint8_t *const *cols, const size_t *lens,
                      const unsigned *missing, unsigned nmissing);

#endif
