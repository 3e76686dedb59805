/* TCPSM_* environment settings: parsing (pure, unit-tested) and the checks
 * against the host (interface exists, address not held by the kernel). */
#ifndef TCPSM_CONFIG_H
#define TCPSM_CONFIG_H

#include <net/if.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime_log.h"
#include "shm_region.h"

#define CONFIG_PATH_MAX 4096

struct rt_settings {
    bool enabled;               /* TCPSM_IF set */
    char ifname[IF_NAMESIZE];
    uint32_t addr;              /* host order, 0 = no IPv4 */
    uint8_t prefix_len;
    uint32_t gateway;           /* host order, 0 = none */
    uint8_t addr6[16];          /* all zero = no IPv6 */
    uint8_t prefix6_len;
    uint8_t gateway6[16];       /* all zero = from router advertisements */
    uint8_t mac[6];
    int log_level;              /* TCPSM_LOG_* */
    bool trace_stderr;          /* TCPSM_TRACE=1 */
    char trace_path[CONFIG_PATH_MAX];   /* TCPSM_TRACE=<file>, "" = none */
    char pcap_path[CONFIG_PATH_MAX];    /* TCPSM_PCAP=<file>, "" = none */
    unsigned shm_mb;            /* TCPSM_SHM_MB: the shared region's size */
    bool offload;               /* TCPSM_OFFLOAD (default 1): PACKET_VNET_HDR offloads */
    /* config_ops.c */
    uint32_t sndbuf, rcvbuf, rcvbuf_max;   /* TCPSM_SNDBUF/RCVBUF/RCVBUF_MAX, 0 = default */
    uint64_t mem_max;           /* TCPSM_MEM_MAX: TCP buffer memory cap, 0 = core default */
    uint8_t mtu_probing;        /* TCPSM_MTU_PROBING: 2 = PLPMTUD from the start, else 1 */
    char run_dir[256];          /* TCPSM_RUN_DIR: stats region and capture socket, "" = off */
    uint64_t spin_ns;           /* TCPSM_SPIN_US: the link's poller busy-polls this long, 0 = never */
};

#define CONFIG_RUN_DIR_DEFAULT "/run/tcpsm"

/* config_ops.c: "262144", "256K", "4M" within 4 KiB..16 MiB. 0 or -1. */
int config_parse_size(const char *s, uint32_t *out);
/* The operating settings (buffers, TCPSM_RUN_DIR); 1 or -1 with err set. */
int config_ops_from_env(const char *(*getenv_fn)(const char *name), struct rt_settings *s,
                        char *err, size_t errlen);

/* Single-value parsers: 0 on success, -1 on a malformed value. */
int config_parse_ipv4(const char *s, uint32_t *addr);
int config_parse_cidr(const char *s, uint32_t *addr, uint8_t *prefix_len);
/* X:X::X/N, a global unicast address (not ::, ::1, multicast, link-local,
 * IPv4-mapped), N 1..128. */
int config_parse_cidr6(const char *s, uint8_t addr[16], uint8_t *prefix_len);
int config_parse_mac(const char *s, uint8_t mac[6]);   /* unicast only */
int config_parse_log(const char *s, int *level);
/* Default MAC: locally administered, unicast, 02:54:53 + the low 3 address
 * bytes, so one address always gets the same MAC. */
void config_default_mac(uint32_t addr, uint8_t mac[6]);
/* The same for an IPv6-only stack: 02:56 + the low 4 address bytes. */
void config_default_mac6(const uint8_t addr6[16], uint8_t mac[6]);

/* Reads every TCPSM_* variable through getenv_fn (getenv in the library, a
 * table in tests). Returns 1 enabled, 0 disabled (TCPSM_IF unset), -1 on a
 * bad value with the one-line message (without "tcpsm: " and newline) in err. */
int config_from_env(const char *(*getenv_fn)(const char *name), struct rt_settings *s,
                    char *err, size_t errlen);

/* Host checks (system calls): the interface exists and the kernel does not
 * hold s->addr on it. 0, or -1 with the message in err. */
int config_check_host(const struct rt_settings *s, char *err, size_t errlen);
/* TCPSM_PCAP / TCPSM_TRACE: the file can be created or written (it is
 * created, empty, if missing, and never truncated here: the capture itself
 * starts with the first stack socket). 0, or -1 with the message in err. */
int config_check_files(const struct rt_settings *s, char *err, size_t errlen);
/* Does the kernel hold this IPv4 address (host order) on any interface? */
bool config_kernel_has_addr(uint32_t addr);
bool config_kernel_has_addr6(const uint8_t addr6[16]);

#endif
