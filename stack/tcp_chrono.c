/* What limits a connection's sending, and for how long (Linux tcp_chrono_*,
 * reported as tcpi_busy_time, tcpi_rwnd_limited, tcpi_sndbuf_limited). At
 * any time one state is timed: none (nothing queued or in flight), busy
 * (data to send or unacknowledged), limited by the peer's window, or by
 * the send buffer (the program filled it and everything in it is sent);
 * a more limiting one takes over from a less limiting one, and when it
 * ends, busy goes on while data is queued or in flight. */
#include "tcp_int.h"

static void chrono_set(struct tcpsm_sock *sk, uint8_t type, uint64_t now)
{
    if (sk->chrono_type != TCP_CHRONO_NONE && now > sk->chrono_start)
        sk->chrono_ns[sk->chrono_type - 1] += now - sk->chrono_start;
    sk->chrono_start = now;
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

/* The time (ns) spent in state type, the current one counted up to now. */
uint64_t tcp_chrono_ns(const struct tcpsm_sock *sk, uint8_t type, uint64_t now)
{
    uint64_t t = sk->chrono_ns[type - 1];
    if (sk->chrono_type == type && now > sk->chrono_start)
        t += now - sk->chrono_start;
    return t;
}
