/* Counting the faults an audit finds, the first one described (tcp_repair.c,
 * runtime_repair.c, shm_region.c): a walk goes on after a fault to count
 * them all, and the caller gets the first in words. */
#ifndef TCPSM_FAULT_NOTE_H
#define TCPSM_FAULT_NOTE_H

#include <stddef.h>
#include <stdio.h>

struct fault_note {
    unsigned n;
    char *why;                  /* NULL: not described */
    size_t whylen;
};

#define FAULT_NOTE(f, ...)                                                                \
    do {                                                                                  \
        if ((f)->n++ == 0 && (f)->why && (f)->whylen)                                     \
            snprintf((f)->why, (f)->whylen, __VA_ARGS__);                                 \
    } while (0)

#endif
