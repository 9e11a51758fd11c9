/* SPDX-License-Identifier: MIT */
/*
 * objmap: a map (core/map.h) stored in an object of an object set — the binding that gives every
 * B+tree node a copy-on-write block with a checksum, compression and a birth txg.
 *
 * Node n is block n of the object (blocksize = node size). Reads see uncommitted changes like
 * any object read. Changes need a transaction: objmap_begin(om, tx) binds one until
 * objmap_end(om). Not thread-safe: the owner serializes use of one objmap.
 */
#ifndef LCPFS_CORE_OBJMAP_H
#define LCPFS_CORE_OBJMAP_H

#include <stdint.h>

#include "core/map.h"
#include "core/objset.h"

struct objmap;

/* Creates a map object (type OT_MAP) in tx and formats it. *obj gets its number. */
int objmap_create(struct objset *os, struct tx *tx, uint32_t node_size, uint64_t *obj);
/* Opens the map in object obj. Returns 0, -ENOENT, -ECORRUPT, -ENOMEM. Free with objmap_close. */
int objmap_open(struct objset *os, uint64_t obj, struct objmap **out);
void objmap_close(struct objmap *om); /* NULL ok */
/* The map, for map_lookup/map_iterate (any time) and map_insert/map_remove (inside begin/end). */
struct map *objmap_map(struct objmap *om);
void objmap_begin(struct objmap *om, struct tx *tx);
void objmap_end(struct objmap *om);

#endif
