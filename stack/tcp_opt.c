/* TCP options: parse and build. MSS (RFC 9293 3.2, RFC 6691), window
 * scale and timestamps (RFC 7323), SACK-permitted and SACK blocks (RFC 2018).
 * Layout of a SYN follows Linux: MSS, SACK-permitted+TS, NOP+WS (20 bytes). */
#include <string.h>

#include "tcp_int.h"

enum { OPT_EOL = 0, OPT_NOP = 1, OPT_MSS = 2, OPT_WS = 3, OPT_SACKOK = 4, OPT_SACK = 5,
       OPT_TS = 8 };

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Malformed options end the parse; what was read stays (RFC 9293 3.1:
 * a receiver must not crash on bad option lengths). MSS and WS count only
 * on SYN segments (RFC 9293 3.2, RFC 7323 2.2). */
void tcp_opt_parse(const uint8_t *p, size_t len, bool syn, struct tcp_opts *o)
{
    memset(o, 0, sizeof(*o));
    size_t i = 0;
    while (i < len) {
        uint8_t kind = p[i];
        if (kind == OPT_EOL)
            break;
        if (kind == OPT_NOP) {
            i++;
            continue;
        }
        if (i + 1 >= len)
            break;
        uint8_t l = p[i + 1];
        if (l < 2 || i + l > len)
            break;
        const uint8_t *v = p + i + 2;
        switch (kind) {
        case OPT_MSS:
            if (l == 4 && syn) {
                o->mss_ok = true;
                o->mss = (uint16_t)(v[0] << 8 | v[1]);
            }
            break;
        case OPT_WS:
            if (l == 3 && syn) {
                o->ws_ok = true;
                o->ws = v[0] > 14 ? 14 : v[0];     /* RFC 7323 2.3 */
            }
            break;
        case OPT_SACKOK:
            if (l == 2 && syn)
                o->sack_ok = true;
            break;
        case OPT_SACK:
            if (l >= 10 && (l - 2) % 8 == 0) {
                unsigned n = (unsigned)(l - 2) / 8;
                for (unsigned k = 0; k < n && o->nsack < 4; k++) {
                    o->sack_l[o->nsack] = get32(v + 8 * k);
                    o->sack_r[o->nsack] = get32(v + 8 * k + 4);
                    o->nsack++;
                }
            }
            break;
        case OPT_TS:
            if (l == 10) {
                o->ts_ok = true;
                o->tsval = get32(v);
                o->tsecr = get32(v + 4);
            }
            break;
        default:
            break;
        }
        i += l;
    }
}

uint32_t tcp_ts_now(const struct tcpsm_sock *sk, uint64_t now)
{
    return (uint32_t)(now / MS_NS) + sk->ts_off;
}

static unsigned nsack_blocks(const struct tcpsm_sock *sk, bool with_sack)
{
    unsigned n = sk->ooo.n + (sk->dsack ? 1 : 0);
    if (!with_sack || !sk->sack_ok || !n)
        return 0;
    unsigned max = sk->ts_ok ? 3 : 4;
    return n < max ? n : max;
}

size_t tcp_opt_len(const struct tcpsm_sock *sk, uint8_t flags, bool with_sack)
{
    if (flags & TCPSM_RST)
        return 0;
    if (flags & TCPSM_SYN) {
        size_t n = 4;
        if (sk->ts_ok)
            n += 12;
        else if (sk->sack_ok)
            n += 4;
        if (sk->ws_ok)
            n += 4;
        return n;
    }
    size_t n = sk->ts_ok ? 12 : 0;
    unsigned b = nsack_blocks(sk, with_sack);
    if (b)
        n += 4 + 8 * b;
    return n;
}

static uint8_t *put_ts(const struct tcpsm_sock *sk, uint8_t *q, uint8_t flags, uint64_t now)
{
    *q++ = OPT_TS;
    *q++ = 10;
    put32(q, tcp_ts_now(sk, now));
    put32(q + 4, (flags & TCPSM_ACK) ? sk->ts_recent : 0);
    return q + 8;
}

/* Writes the options for a segment with these flags; returns their length
 * (a multiple of 4, equal to tcp_opt_len()). */
size_t tcp_opt_build(const struct tcpsm_sock *sk, uint8_t *p, uint8_t flags, uint64_t now,
                     bool with_sack)
{
    uint8_t *q = p;
    if (flags & TCPSM_RST)
        return 0;
    if (flags & TCPSM_SYN) {
        *q++ = OPT_MSS;
        *q++ = 4;
        *q++ = (uint8_t)(sk->rcv_mss >> 8);
        *q++ = (uint8_t)sk->rcv_mss;
        if (sk->ts_ok) {
            if (sk->sack_ok) {
                *q++ = OPT_SACKOK;
                *q++ = 2;
            } else {
                *q++ = OPT_NOP;
                *q++ = OPT_NOP;
            }
            q = put_ts(sk, q, flags, now);
        } else if (sk->sack_ok) {
            *q++ = OPT_NOP;
            *q++ = OPT_NOP;
            *q++ = OPT_SACKOK;
            *q++ = 2;
        }
        if (sk->ws_ok) {
            *q++ = OPT_NOP;
            *q++ = OPT_WS;
            *q++ = 3;
            *q++ = sk->rcv_wscale;
        }
        return (size_t)(q - p);
    }
    if (sk->ts_ok) {
        *q++ = OPT_NOP;
        *q++ = OPT_NOP;
        q = put_ts(sk, q, flags, now);
    }
    unsigned b = nsack_blocks(sk, with_sack);
    if (b) {
        *q++ = OPT_NOP;
        *q++ = OPT_NOP;
        *q++ = OPT_SACK;
        *q++ = (uint8_t)(2 + 8 * b);
        if (sk->dsack) {
            /* RFC 2883 4: the duplicate range first, once */
            put32(q, sk->dsack_l);
            put32(q + 4, sk->dsack_r);
            q += 8;
            if (!--b)
                return (size_t)(q - p);
        }
        /* RFC 2018 4: the block holding the latest segment first */
        unsigned first = 0;
        for (unsigned i = 0; i < sk->ooo.n; i++)
            if (seq_le(sk->ooo.start[i], sk->ooo.last) && seq_lt(sk->ooo.last, sk->ooo.end[i]))
                first = i;
        if (!sk->ooo.n)
            return (size_t)(q - p);
        put32(q, sk->ooo.start[first]);
        put32(q + 4, sk->ooo.end[first]);
        q += 8;
        for (unsigned i = 0, k = 1; i < sk->ooo.n && k < b; i++) {
            if (i == first)
                continue;
            put32(q, sk->ooo.start[i]);
            put32(q + 4, sk->ooo.end[i]);
            q += 8;
            k++;
        }
    }
    return (size_t)(q - p);
}
