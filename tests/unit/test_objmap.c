/* SPDX-License-Identifier: MIT */
/*
 * A map stored in a real object: survives commits, export and import; matches a model under
 * random inserts and removes spread over many txgs; refuses writes outside a transaction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <criterion/criterion.h>

#include "core/objmap.h"
#include "core/pool.h"
#include "core/verify.h"
#include "test_util.h"

TestSuite(objmap, .init = test_tmpdir_setup, .fini = test_tmpdir_teardown, .timeout = 120);

#define NKEYS 3000

Test(objmap, matches_model_across_txgs_and_reimport)
{
    const char *paths[1] = { test_dev[0] };
    struct err_msg em = { 0 };
    struct pool *p = test_pool_create(128u << 20);
    struct tx tx;
    uint64_t obj;
    cr_assert_eq(tx_assign(p, 0, &tx), 0);
    cr_assert_eq(objmap_create(pool_root_objset(p), &tx, 4096, &obj), 0);
    tx_commit(&tx);

    /* model: value length per key, -1 = absent; value bytes derived from (key, length). */
    static int model[NKEYS];
    for (int i = 0; i < NKEYS; i++)
        model[i] = -1;
    uint64_t s = 77;
    struct objmap *om;
    cr_assert_eq(objmap_open(pool_root_objset(p), obj, &om), 0);
    uint8_t val[MAP_VALUE_MAX], got[MAP_VALUE_MAX];
    for (int round = 0; round < 30; round++) {
        cr_assert_eq(tx_assign(p, 0, &tx), 0);
        objmap_begin(om, &tx);
        for (int op = 0; op < 200; op++) {
            int k = (int)(test_rnd(&s) % NKEYS);
            if (test_rnd(&s) % 3 != 0) {
                int len = (int)(test_rnd(&s) % 300);
                for (int b = 0; b < len; b++)
                    val[b] = (uint8_t)(k * 7 + b + len);
                cr_assert_eq(map_insert(objmap_map(om), (uint64_t)k, 1, val, (size_t)len, true), 0);
                model[k] = len;
            } else {
                int rc = map_remove(objmap_map(om), (uint64_t)k, 1);
                cr_assert_eq(rc, model[k] < 0 ? -ENOENT : 0);
                model[k] = -1;
            }
        }
        objmap_end(om);
        tx_commit(&tx);
        if (round % 7 == 6) {
            objmap_close(om);
            p = test_pool_reimport(p);
            cr_assert_eq(objmap_open(pool_root_objset(p), obj, &om), 0);
        } else if (round % 3 == 0) {
            cr_assert_eq(pool_sync(p, NULL), 0);
        }
    }
    cr_assert_eq(map_check(objmap_map(om)), 0);
    uint64_t count = 0;
    for (int k = 0; k < NKEYS; k++) {
        size_t len;
        int rc = map_lookup(objmap_map(om), (uint64_t)k, 1, got, sizeof(got), &len);
        if (model[k] < 0) {
            cr_assert_eq(rc, -ENOENT, "key %d should be absent", k);
            continue;
        }
        count++;
        cr_assert_eq(rc, 0, "key %d missing", k);
        cr_assert_eq(len, (size_t)model[k]);
        for (size_t b = 0; b < len; b++)
            cr_assert_eq(got[b], (uint8_t)(k * 7 + (int)b + model[k]));
    }
    cr_assert_eq(map_count(objmap_map(om)), count);
    /* Outside a transaction, changes are refused. */
    cr_assert_eq(map_insert(objmap_map(om), 5, 5, "x", 1, true), -EROFS);
    objmap_close(om);
    cr_assert_eq(pool_export(p), 0);

    struct verify_report r;
    cr_assert_eq(verify_pool(paths, 1, NULL, &r, NULL, NULL, &em), 0);
    cr_assert_eq(r.errors, 0);
}
