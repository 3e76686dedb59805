/* What limits a connection's sending, and for how long (Linux tcp_chrono_*,
 * reported as tcpi_busy_time, tcpi_rwnd_limited, tcpi_sndbuf_limited). At
 * any time one state is timed: none (nothing queued or in flight), busy
 * (data to send or unacknowledged), limited by the peer's window, or by
 * the send buffer (the program filled it and everything in it is sent);
 * a more limiting one takes over from a less limiting one, and when it
 * ends, busy goes on while data is queued or in flight. Kept in
 * milliseconds, 32 bits (Linux: jiffies): 49 days per state. */
#include "tcp_int.h"

static uint32_t *slot(struct tcpsm_sock *sk, uint8_t type)
{
    switch (type) {
    case TCP_CHRONO_RWND:   return &sk->chrono_rwnd_ms;
    case TCP_CHRONO_SNDBUF: return &sk->chrono_sndbuf_ms;
    default:                return &sk->chrono_busy_ms;
    }
}

static uint32_t ms_of(uint64_t now)
{
    return (uint32_t)(now / MS_NS);
}

static void chrono_set(struct tcpsm_sock *sk, uint8_t type, uint64_t now)
{
    uint32_t t = ms_of(now);
    if (sk->chrono_type != TCP_CHRONO_NONE)
        *slot(sk, sk->chrono_type) += t - sk->chrono_start_ms;
    sk->chrono_start_ms = t;
    sk->chrono_type = type;
}

void tcp_chrono_start(struct tcpsm_sock *sk, uint8_t type, uint64_t now)
{
    if (type > sk->chrono_type)
        chrono_set(sk, type, now);
}

void tcp_chrono_stop(struct tcpsm_sock *sk, uint8_t type, uint64_t now)
{
    if (sk->snd_una == sk->snd_max && !tcp_unsent(sk))
        chrono_set(sk, TCP_CHRONO_NONE, now);
    else if (type == sk->chrono_type)
        chrono_set(sk, TCP_CHRONO_BUSY, now);
}

/* The time (us) spent in state type, the current one counted up to now. */
uint64_t tcp_chrono_us(const struct tcpsm_sock *sk, uint8_t type, uint64_t now)
{
    uint64_t t = *slot((struct tcpsm_sock *)sk, type);
    if (sk->chrono_type == type)
        t += (uint32_t)(ms_of(now) - sk->chrono_start_ms);
    return t * 1000u;
}
