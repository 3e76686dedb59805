/* The TCPSM_* settings for operating a stack (buffers, the run directory of
 * the stats region and the capture socket), parsed after the addressing ones
 * in config_from_env(). Pure: no system call. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"

/* The core's ceiling on a socket buffer (stack/tcp_int.h TCP_BUF_MAX). */
#define OPS_BUF_MIN (4u * 1024u)
#define OPS_BUF_MAX (16u * 1024u * 1024u)

int config_parse_size(const char *s, uint32_t *out)
{
    char *end;
    if (!s[0] || s[0] < '0' || s[0] > '9')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    unsigned long long mul = 1;
    if (*end == 'k' || *end == 'K')
        mul = 1024, end++;
    else if (*end == 'm' || *end == 'M')
        mul = 1024 * 1024, end++;
    if (*end || v > (1ull << 32) / mul)
        return -1;
    v *= mul;
    if (v < OPS_BUF_MIN || v > OPS_BUF_MAX)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

int config_ops_from_env(const char *(*getenv_fn)(const char *name), struct rt_settings *s,
                        char *err, size_t errlen)
{
    static const struct { const char *var; size_t off; } sizes[] = {
        { "TCPSM_SNDBUF", offsetof(struct rt_settings, sndbuf) },
        { "TCPSM_RCVBUF", offsetof(struct rt_settings, rcvbuf) },
        { "TCPSM_RCVBUF_MAX", offsetof(struct rt_settings, rcvbuf_max) },
    };
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        const char *v = getenv_fn(sizes[i].var);
        if (v && config_parse_size(v, (uint32_t *)(void *)((char *)s + sizes[i].off)) < 0) {
            snprintf(err, errlen, "%s=%s: expected a size in bytes from 4K to 16M (e.g. 262144, "
                     "256K, 4M)", sizes[i].var, v);
            return -1;
        }
    }
    const char *m = getenv_fn("TCPSM_MEM_MAX");
    if (m) {
        /* the stack's buffer memory cap: 1M to 64G, k/m/g suffixes */
        char *end;
        unsigned long long x = m[0] >= '0' && m[0] <= '9' ? strtoull(m, &end, 10) : 0;
        unsigned long long mul = 1;
        if (x && (*end == 'k' || *end == 'K'))
            mul = 1ull << 10, end++;
        else if (x && (*end == 'm' || *end == 'M'))
            mul = 1ull << 20, end++;
        else if (x && (*end == 'g' || *end == 'G'))
            mul = 1ull << 30, end++;
        if (!x || *end || x > (64ull << 30) / mul || x * mul < (1ull << 20)) {
            snprintf(err, errlen, "TCPSM_MEM_MAX=%s: expected a size in bytes from 1M to 64G "
                     "(e.g. 64M, 2G)", m);
            return -1;
        }
        s->mem_max = x * mul;
    }
    const char *p = getenv_fn("TCPSM_MTU_PROBING");
    if (p) {
        if (strcmp(p, "1") != 0 && strcmp(p, "2") != 0) {
            snprintf(err, errlen, "TCPSM_MTU_PROBING=%s: expected 1 (probe the path MTU after a "
                     "black hole, the default) or 2 (from the start of every connection)", p);
            return -1;
        }
        s->mtu_probing = (uint8_t)(p[0] - '0');
    }
    const char *v = getenv_fn("TCPSM_RUN_DIR");
    if (!v) {
        strcpy(s->run_dir, CONFIG_RUN_DIR_DEFAULT);
    } else if (strcmp(v, "0") == 0) {
        s->run_dir[0] = '\0';
    } else if (v[0] != '/' || strlen(v) >= sizeof(s->run_dir) - 32) {
        snprintf(err, errlen, "TCPSM_RUN_DIR=%s: expected an absolute directory path, or 0 "
                 "(no stats region, no capture socket)", v);
        return -1;
    } else {
        strcpy(s->run_dir, v);
    }
    return 1;
}
