/* TCPSM_* environment parsing and host checks (see config.h). */
#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Strict dotted quad: exactly four decimal parts 0..255, no leading '+',
 * no spaces, at most three digits each (inet_aton accepts "10" or "0x0a"). */
static const char *parse_quad(const char *s, uint32_t *addr)
{
    uint32_t a = 0;
    for (int i = 0; i < 4; i++) {
        if (i > 0) {
            if (*s != '.')
                return NULL;
            s++;
        }
        unsigned v = 0, nd = 0;
        while (*s >= '0' && *s <= '9' && nd < 4) {
            v = v * 10 + (unsigned)(*s - '0');
            s++;
            nd++;
        }
        if (nd == 0 || nd > 3 || v > 255)
            return NULL;
        a = (a << 8) | v;
    }
    *addr = a;
    return s;
}

int config_parse_ipv4(const char *s, uint32_t *addr)
{
    const char *end = parse_quad(s, addr);
    return end && *end == '\0' ? 0 : -1;
}

int config_parse_cidr(const char *s, uint32_t *addr, uint8_t *prefix_len)
{
    uint32_t a;
    const char *p = parse_quad(s, &a);
    if (!p || *p != '/')
        return -1;
    p++;
    unsigned v = 0, nd = 0;
    while (*p >= '0' && *p <= '9' && nd < 3) {
        v = v * 10 + (unsigned)(*p - '0');
        p++;
        nd++;
    }
    /* /0 and /32 leave no usable connected subnet for a host address. */
    if (nd == 0 || *p != '\0' || v < 1 || v > 31)
        return -1;
    uint32_t mask = ~0u << (32 - v);
    uint32_t host = a & ~mask;
    /* Not the network or broadcast address, not 0/8, loopback, multicast or class E. */
    if ((v < 31 && (host == 0 || host == ~mask)) || (a >> 24) == 0 || (a >> 24) == 127 ||
        (a >> 28) >= 0xe)
        return -1;
    *addr = a;
    *prefix_len = (uint8_t)v;
    return 0;
}

int config_parse_cidr6(const char *s, uint8_t addr[16], uint8_t *prefix_len)
{
    const char *slash = strchr(s, '/');
    char buf[INET6_ADDRSTRLEN];
    if (!slash || (size_t)(slash - s) >= sizeof(buf))
        return -1;
    memcpy(buf, s, (size_t)(slash - s));
    buf[slash - s] = '\0';
    uint8_t a[16];
    if (inet_pton(AF_INET6, buf, a) != 1)
        return -1;
    const char *p = slash + 1;
    unsigned v = 0, nd = 0;
    while (*p >= '0' && *p <= '9' && nd < 4) {
        v = v * 10 + (unsigned)(*p - '0');
        p++;
        nd++;
    }
    if (nd == 0 || *p != '\0' || v < 1 || v > 128)
        return -1;
    static const uint8_t zero[16], mapped[12] = { [10] = 0xff, [11] = 0xff };
    static const uint8_t lo[16] = { [15] = 1 };
    if (memcmp(a, zero, 16) == 0 || memcmp(a, lo, 16) == 0 || a[0] == 0xff ||
        (a[0] == 0xfe && (a[1] & 0xc0) == 0x80) || memcmp(a, mapped, 12) == 0)
        return -1;
    memcpy(addr, a, 16);
    *prefix_len = (uint8_t)v;
    return 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int config_parse_mac(const char *s, uint8_t mac[6])
{
    uint8_t m[6];
    for (int i = 0; i < 6; i++) {
        int hi = hexval(s[0]), lo = hi < 0 ? -1 : hexval(s[1]);
        if (hi < 0 || lo < 0)
            return -1;
        m[i] = (uint8_t)(hi << 4 | lo);
        s += 2;
        if (i < 5) {
            if (*s != ':')
                return -1;
            s++;
        }
    }
    if (*s != '\0' || (m[0] & 1))            /* group bit: multicast/broadcast */
        return -1;
    static const uint8_t zero[6];
    if (memcmp(m, zero, 6) == 0)
        return -1;
    memcpy(mac, m, 6);
    return 0;
}

int config_parse_log(const char *s, int *level)
{
    static const char *const names[] = { "error", "warn", "info", "debug" };
    for (int i = 0; i < 4; i++) {
        if (strcmp(s, names[i]) == 0) {
            *level = i;
            return 0;
        }
    }
    return -1;
}

void config_default_mac(uint32_t addr, uint8_t mac[6])
{
    mac[0] = 0x02;      /* locally administered, unicast */
    mac[1] = 0x54;      /* 'T' */
    mac[2] = (uint8_t)(addr >> 24);
    mac[3] = (uint8_t)(addr >> 16);
    mac[4] = (uint8_t)(addr >> 8);
    mac[5] = (uint8_t)addr;
}

void config_default_mac6(const uint8_t addr6[16], uint8_t mac[6])
{
    mac[0] = 0x02;      /* locally administered, unicast */
    mac[1] = 0x56;      /* 'V' */
    memcpy(mac + 2, addr6 + 12, 4);
}

static int bad(char *err, size_t errlen, const char *var, const char *val, const char *expect)
{
    snprintf(err, errlen, "%s=%s: expected %s", var, val, expect);
    return -1;
}

static int path_var(const char *(*getenv_fn)(const char *), const char *var, char *out,
                    char *err, size_t errlen)
{
    const char *v = getenv_fn(var);
    out[0] = '\0';
    if (!v)
        return 0;
    if (v[0] == '\0' || strlen(v) >= CONFIG_PATH_MAX)
        return bad(err, errlen, var, v, "a file path");
    strcpy(out, v);
    return 0;
}

/* "a" or "a,b" (each non-empty, < 64 bytes) into item; the count or -1. */
static int config_split2(const char *v, char item[2][64])
{
    const char *comma = strchr(v, ',');
    size_t n0 = comma ? (size_t)(comma - v) : strlen(v);
    if (n0 == 0 || n0 >= 64)
        return -1;
    memcpy(item[0], v, n0);
    item[0][n0] = '\0';
    if (!comma)
        return 1;
    const char *b = comma + 1;
    size_t n1 = strlen(b);
    if (n1 == 0 || n1 >= 64 || strchr(b, ','))
        return -1;
    memcpy(item[1], b, n1 + 1);
    return 2;
}

int config_from_env(const char *(*getenv_fn)(const char *name), struct rt_settings *s,
                    char *err, size_t errlen)
{
    memset(s, 0, sizeof(*s));
    s->log_level = TCPSM_LOG_WARN;
    if (err && errlen)
        err[0] = '\0';

    /* TCPSM_LOG first, so it applies even when the rest is disabled. */
    const char *v = getenv_fn("TCPSM_LOG");
    if (v && config_parse_log(v, &s->log_level) < 0)
        return bad(err, errlen, "TCPSM_LOG", v, "error, warn, info or debug");

    const char *ifn = getenv_fn("TCPSM_IF");
    if (!ifn)
        return 0;
    if (ifn[0] == '\0' || strlen(ifn) >= IF_NAMESIZE || strchr(ifn, '/') || strchr(ifn, ' '))
        return bad(err, errlen, "TCPSM_IF", ifn, "a network interface name (e.g. eth0)");
    strcpy(s->ifname, ifn);

    static const char addr_form[] =
        "A.B.C.D/N, X:X::X/N or both comma-separated, one of each family "
        "(e.g. 198.18.0.10/24,2001:2::10/64)";
    v = getenv_fn("TCPSM_ADDR");
    if (!v) {
        snprintf(err, errlen, "TCPSM_ADDR is not set: expected %s when TCPSM_IF is set", addr_form);
        return -1;
    }
    /* one address of each family, in either order */
    char item[2][64];
    int nitem = config_split2(v, item);
    if (nitem < 0)
        return bad(err, errlen, "TCPSM_ADDR", v, addr_form);
    bool has4 = false, has6 = false;
    for (int i = 0; i < nitem; i++) {
        if (strchr(item[i], ':')) {
            if (has6 || config_parse_cidr6(item[i], s->addr6, &s->prefix6_len) < 0)
                return bad(err, errlen, "TCPSM_ADDR", v, addr_form);
            has6 = true;
        } else {
            if (has4 || config_parse_cidr(item[i], &s->addr, &s->prefix_len) < 0)
                return bad(err, errlen, "TCPSM_ADDR", v, addr_form);
            has4 = true;
        }
    }
    uint32_t mask = has4 ? ~0u << (32 - s->prefix_len) : 0;

    v = getenv_fn("TCPSM_GW");
    if (v) {
        static const char gw_form[] =
            "A.B.C.D and/or X:X::X comma-separated: a host inside the TCPSM_ADDR subnet of its "
            "family other than TCPSM_ADDR (IPv6: or a link-local fe80:: router)";
        bool gw4 = false, gw6 = false;
        nitem = config_split2(v, item);
        if (nitem < 0)
            return bad(err, errlen, "TCPSM_GW", v, gw_form);
        for (int i = 0; i < nitem; i++) {
            if (strchr(item[i], ':')) {
                uint8_t *g = s->gateway6;
                bool ll = false;
                if (gw6 || !has6 || inet_pton(AF_INET6, item[i], g) != 1)
                    return bad(err, errlen, "TCPSM_GW", v, gw_form);
                ll = g[0] == 0xfe && (g[1] & 0xc0) == 0x80;
                bool on_link = true;
                for (unsigned b = 0; b < s->prefix6_len; b++)
                    if (((g[b / 8] ^ s->addr6[b / 8]) >> (7 - b % 8)) & 1)
                        on_link = false;
                if (g[0] == 0xff || memcmp(g, s->addr6, 16) == 0 || !(ll || on_link))
                    return bad(err, errlen, "TCPSM_GW", v, gw_form);
                gw6 = true;
            } else {
                if (gw4 || !has4 || config_parse_ipv4(item[i], &s->gateway) < 0 ||
                    s->gateway == s->addr || (s->gateway & mask) != (s->addr & mask) ||
                    (s->prefix_len < 31 &&
                     ((s->gateway & ~mask) == 0 || (s->gateway & ~mask) == ~mask)))
                    return bad(err, errlen, "TCPSM_GW", v, gw_form);
                gw4 = true;
            }
        }
    }

    v = getenv_fn("TCPSM_MAC");
    if (v) {
        if (config_parse_mac(v, s->mac) < 0)
            return bad(err, errlen, "TCPSM_MAC", v,
                       "xx:xx:xx:xx:xx:xx, a unicast MAC (e.g. 02:54:c6:12:00:0a)");
    } else if (has4) {
        config_default_mac(s->addr, s->mac);
    } else {
        config_default_mac6(s->addr6, s->mac);
    }

    v = getenv_fn("TCPSM_TRACE");
    if (v) {
        if (strcmp(v, "1") == 0)
            s->trace_stderr = true;
        else if (strcmp(v, "0") == 0)
            ;
        else if (path_var(getenv_fn, "TCPSM_TRACE", s->trace_path, err, errlen) < 0)
            return bad(err, errlen, "TCPSM_TRACE", v, "1 (stderr), 0 (off) or a file path");
    }
    if (path_var(getenv_fn, "TCPSM_PCAP", s->pcap_path, err, errlen) < 0)
        return -1;

    s->shm_mb = SHM_REGION_MB_DEF;
    v = getenv_fn("TCPSM_SHM_MB");
    if (v) {
        char *end;
        errno = 0;
        unsigned long mb = strtoul(v, &end, 10);
        if (errno || end == v || *end || v[0] == '-' || mb < SHM_REGION_MB_MIN ||
            mb > SHM_REGION_MB_MAX)
            return bad(err, errlen, "TCPSM_SHM_MB", v, "the shared region's size in MiB, "
                       "16..65536 (default 512)");
        s->shm_mb = (unsigned)mb;
    }
    s->offload = true;
    v = getenv_fn("TCPSM_OFFLOAD");
    if (v) {
        if (strcmp(v, "0") == 0)
            s->offload = false;
        else if (strcmp(v, "1") != 0)
            return bad(err, errlen, "TCPSM_OFFLOAD", v,
                       "1 (vnet header: checksum offload and TSO, the default) or 0 (plain frames)");
    }
    if (config_ops_from_env(getenv_fn, s, err, errlen) < 0)
        return -1;
    v = getenv_fn("TCPSM_SPIN_US");
    if (v) {
        char *end;
        errno = 0;
        unsigned long us = strtoul(v, &end, 10);
        if (!*v || *end || errno || us > 1000000 || v[0] == '-')
            return bad(err, errlen, "TCPSM_SPIN_US", v, "microseconds from 0 to 1000000");
        s->spin_ns = (uint64_t)us * 1000;
    }
    s->enabled = true;
    return 1;
}

static int check_file(const char *var, const char *path, char *err, size_t errlen)
{
    /* Raw system calls: in the preloaded library close() is the shim's. */
    long fd = syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "%s=%s: cannot create the file: %s", var, path, strerror(errno));
        return -1;
    }
    syscall(SYS_close, fd);
    return 0;
}

int config_check_files(const struct rt_settings *s, char *err, size_t errlen)
{
    if (s->pcap_path[0] && check_file("TCPSM_PCAP", s->pcap_path, err, errlen) < 0)
        return -1;
    if (s->trace_path[0] && check_file("TCPSM_TRACE", s->trace_path, err, errlen) < 0)
        return -1;
    return 0;
}

bool config_kernel_has_addr(uint32_t addr)
{
    struct ifaddrs *ifa0;
    if (getifaddrs(&ifa0) < 0)
        return false;
    bool found = false;
    for (struct ifaddrs *ifa = ifa0; ifa && !found; ifa = ifa->ifa_next) {
        if (ifa->ifa_addr && ifa->ifa_addr->sa_family == AF_INET &&
            ntohl(((struct sockaddr_in *)(void *)ifa->ifa_addr)->sin_addr.s_addr) == addr)
            found = true;
    }
    freeifaddrs(ifa0);
    return found;
}

bool config_kernel_has_addr6(const uint8_t addr6[16])
{
    struct ifaddrs *ifa0;
    if (getifaddrs(&ifa0) < 0)
        return false;
    bool found = false;
    for (struct ifaddrs *ifa = ifa0; ifa && !found; ifa = ifa->ifa_next) {
        if (ifa->ifa_addr && ifa->ifa_addr->sa_family == AF_INET6 &&
            memcmp(((struct sockaddr_in6 *)(void *)ifa->ifa_addr)->sin6_addr.s6_addr, addr6, 16) == 0)
            found = true;
    }
    freeifaddrs(ifa0);
    return found;
}

int config_check_host(const struct rt_settings *s, char *err, size_t errlen)
{
    if (if_nametoindex(s->ifname) == 0) {
        snprintf(err, errlen, "TCPSM_IF=%s: no such network interface", s->ifname);
        return -1;
    }
    static const uint8_t zero6[16];
    if (memcmp(s->addr6, zero6, 16) != 0 && config_kernel_has_addr6(s->addr6)) {
        char a[INET6_ADDRSTRLEN];
        inet_ntop(AF_INET6, s->addr6, a, sizeof(a));
        snprintf(err, errlen, "TCPSM_ADDR=%s/%u: the kernel already holds %s; expected an "
                 "address of its own for the stack (e.g. 2001:2::10/64)", a, s->prefix6_len, a);
        return -1;
    }
    if (s->addr && config_kernel_has_addr(s->addr)) {
        char a[INET_ADDRSTRLEN];
        struct in_addr ia = { htonl(s->addr) };
        inet_ntop(AF_INET, &ia, a, sizeof(a));
        snprintf(err, errlen, "TCPSM_ADDR=%s/%u: the kernel already holds %s; expected an "
                 "address of its own for the stack (e.g. 198.18.0.10/24)", a, s->prefix_len, a);
        return -1;
    }
    return 0;
}
