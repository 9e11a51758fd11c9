/* SPDX-License-Identifier: MIT */
/*
 * objmap: map_store_ops over object blocks. A write outside objmap_begin/end is refused with
 * -EROFS, so a forgotten transaction is an error, not a lost update.
 */
#include "core/objmap.h"

#include <stdlib.h>

#include "common/err.h"

struct objmap {
    struct objset *os;
    uint64_t obj;
    uint32_t node_size;
    struct tx *tx; /* bound transaction, NULL outside begin/end */
    struct map *map;
};

static int
store_read(void *ctx, uint64_t blkid, void *buf)
{
    struct objmap *om = ctx;
    return obj_read(om->os, om->obj, blkid * om->node_size, om->node_size, buf);
}

static int
store_write(void *ctx, uint64_t blkid, const void *buf)
{
    struct objmap *om = ctx;
    if (om->tx == NULL)
        return ERR(-EROFS);
    return obj_write(om->os, om->tx, om->obj, blkid * om->node_size, om->node_size, buf);
}

static int
store_release(void *ctx, uint64_t blkid)
{
    struct objmap *om = ctx;
    if (om->tx == NULL)
        return ERR(-EROFS);
    return obj_punch(om->os, om->tx, om->obj, blkid * om->node_size, om->node_size);
}

static const struct map_store_ops objmap_ops = {
    .read = store_read,
    .write = store_write,
    .release = store_release,
};

static struct objmap *
objmap_alloc(struct objset *os, uint64_t obj)
{
    struct objmap *om = calloc(1, sizeof(*om));
    if (om == NULL)
        return NULL;
    om->os = os;
    om->obj = obj;
    return om;
}

int
objmap_create(struct objset *os, struct tx *tx, uint32_t node_size, uint64_t *obj)
{
    if (node_size < MAP_NODE_SIZE_MIN || node_size > MAP_NODE_SIZE_MAX ||
        (node_size & (node_size - 1)) != 0)
        return -EINVAL;
    struct obj_create_opts o = { .type = OT_MAP, .blocksize = node_size };
    int rc = obj_create(os, tx, &o, obj);
    if (rc != 0)
        return rc;
    struct objmap *om = objmap_alloc(os, *obj);
    if (om == NULL)
        return -ENOMEM;
    om->node_size = node_size;
    om->tx = tx;
    struct map *m;
    rc = map_create(&objmap_ops, om, node_size, &m);
    if (rc == 0)
        map_close(m);
    free(om);
    return rc;
}

int
objmap_open(struct objset *os, uint64_t obj, struct objmap **out)
{
    struct obj_info info;
    int rc = obj_stat(os, obj, &info);
    if (rc != 0)
        return rc;
    if (info.type != OT_MAP)
        return ERR(-ECORRUPT);
    struct objmap *om = objmap_alloc(os, obj);
    if (om == NULL)
        return -ENOMEM;
    om->node_size = info.blocksize;
    rc = map_open(&objmap_ops, om, &om->map);
    if (rc != 0) {
        free(om);
        return rc;
    }
    *out = om;
    return 0;
}

void
objmap_close(struct objmap *om)
{
    if (om == NULL)
        return;
    map_close(om->map);
    free(om);
}

struct map *
objmap_map(struct objmap *om)
{
    return om->map;
}

void
objmap_begin(struct objmap *om, struct tx *tx)
{
    om->tx = tx;
}

void
objmap_end(struct objmap *om)
{
    om->tx = NULL;
}
