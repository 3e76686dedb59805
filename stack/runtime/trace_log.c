/* TCPSM_TRACE line formatting and output (see trace_log.h). Each line is one
 * write(2) so the timeline stays readable next to the program's own output;
 * transitions are rare (a handful per connection), so no buffering. */
#include "trace_log.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime_log.h"

const char *trace_state_name(int state)
{
    static const char *const names[TCPSM_NSTATES] = {
        [TCPSM_CLOSED] = "CLOSED",           [TCPSM_LISTEN] = "LISTEN",
        [TCPSM_SYN_SENT] = "SYN-SENT",       [TCPSM_SYN_RECEIVED] = "SYN-RECEIVED",
        [TCPSM_ESTABLISHED] = "ESTABLISHED", [TCPSM_FIN_WAIT_1] = "FIN-WAIT-1",
        [TCPSM_FIN_WAIT_2] = "FIN-WAIT-2",   [TCPSM_CLOSE_WAIT] = "CLOSE-WAIT",
        [TCPSM_CLOSING] = "CLOSING",         [TCPSM_LAST_ACK] = "LAST-ACK",
        [TCPSM_TIME_WAIT] = "TIME-WAIT",
    };
    return state >= 0 && state < TCPSM_NSTATES ? names[state] : "?";
}

void trace_flags(char *buf, size_t len, uint8_t flags)
{
    static const struct { uint8_t bit; const char *name; } f[] = {
        { TCPSM_SYN, "SYN" }, { TCPSM_FIN, "FIN" }, { TCPSM_RST, "RST" },
        { TCPSM_PSH, "PSH" }, { TCPSM_ACK, "ACK" }, { TCPSM_URG, "URG" },
    };
    size_t n = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++) {
        if (!(flags & f[i].bit))
            continue;
        int m = snprintf(buf + n, len - n, "%s%s", n ? "+" : "", f[i].name);
        if (m < 0 || (size_t)m >= len - n)
            return;
        n += (size_t)m;
    }
    if (n == 0)
        snprintf(buf, len, "none");
}

static int fmt_ep(char *buf, size_t len, uint32_t a, uint16_t p)
{
    return snprintf(buf, len, "%u.%u.%u.%u:%u", a >> 24, (a >> 16) & 255, (a >> 8) & 255,
                    a & 255, p);
}

/* [2001:2::10]:80, as URLs write IPv6 endpoints (RFC 3986 3.2.2) */
static void fmt_ep6(char *buf, size_t len, const struct tcpsm_addr *a, uint16_t p)
{
    char s[INET6_ADDRSTRLEN];
    if (!inet_ntop(AF_INET6, a->b, s, sizeof(s)))
        s[0] = 0;
    snprintf(buf, len, "[%s]:%u", s, p);
}

size_t trace_format(char *buf, size_t len, const struct tcpsm_trace_event *ev, uint64_t t0)
{
    char l[64], r[64], seg[160];
    if (ev->v6) {
        fmt_ep6(l, sizeof(l), &ev->laddr6, ev->lport);
        fmt_ep6(r, sizeof(r), &ev->raddr6, ev->rport);
    } else {
        fmt_ep(l, sizeof(l), ev->laddr, ev->lport);
        fmt_ep(r, sizeof(r), ev->raddr, ev->rport);
    }
    if (ev->has_seg) {
        char fl[40];
        trace_flags(fl, sizeof(fl), ev->seg_flags);
        snprintf(seg, sizeof(seg), "%c %s seq=%u ack=%u win=%u len=%u", ev->dir, fl, ev->seg_seq,
                 ev->seg_ack, ev->seg_wnd, ev->seg_len);
    } else {
        snprintf(seg, sizeof(seg), "(%s)", ev->why ? ev->why : "");
    }
    uint64_t rel = ev->now >= t0 ? ev->now - t0 : 0;
    int n = snprintf(buf, len, "tcpsm: %s > %s  %s -> %s  %s  +%llu.%06llus\n", l, r,
                     trace_state_name(ev->old_state), trace_state_name(ev->new_state), seg,
                     (unsigned long long)(rel / 1000000000u),
                     (unsigned long long)(rel % 1000000000u / 1000u));
    if (n < 0)
        return 0;
    return (size_t)n < len ? (size_t)n : len - 1;
}

struct trace_log {
    int fd;
    bool own;
    uint64_t t0;
};

struct trace_log *trace_log_open(const char *path, uint64_t t0)
{
    struct trace_log *tl = malloc(sizeof(*tl));
    if (!tl)
        return NULL;
    tl->fd = 2;
    tl->own = false;
    tl->t0 = t0;
    if (path) {
        long fd = syscall(SYS_openat, AT_FDCWD, path,
                          O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd < 0) {
            int e = errno;
            free(tl);
            errno = e;
            return NULL;
        }
        tl->fd = (int)fd;
        tl->own = true;
    }
    return tl;
}

void trace_log_event(struct trace_log *tl, const struct tcpsm_trace_event *ev)
{
    char line[320];
    size_t n = trace_format(line, sizeof(line), ev, tl->t0);
    tcpsm_write_all(tl->fd, line, n);
}

void trace_log_close(struct trace_log *tl)
{
    if (!tl)
        return;
    if (tl->own)
        syscall(SYS_close, tl->fd);
    free(tl);
}

int trace_log_fd(const struct trace_log *tl) { return tl->own ? tl->fd : -1; }
