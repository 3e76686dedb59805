/* The name of every field of struct tcpsm_counters, in order: one table for
 * the exit log (TCPSM_LOG=debug) and for `tcpsm stat`. */
#ifndef TCPSM_COUNTER_NAMES_H
#define TCPSM_COUNTER_NAMES_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "tcpsm/core.h"

struct counter_name {
    const char *name;
    size_t off;
};

extern const struct counter_name counter_names[];
extern const size_t counter_names_n;

static inline uint64_t counter_value(const struct tcpsm_counters *c, size_t i)
{
    uint64_t v;
    memcpy(&v, (const char *)c + counter_names[i].off, sizeof(v));
    return v;
}

#endif
