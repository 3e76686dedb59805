/* Read-only walks over the stack's TCBs, for observers (the runtime's stats
 * region): every TCB, held or orphaned, listener or connection. */
#include <errno.h>

#include "stack.h"
#include "tcp_int.h"

void tcpsm_stack_walk(const struct tcpsm_stack *st,
                      void (*fn)(void *ctx, const struct tcpsm_sock *sk), void *ctx)
{
    for (const struct tcpsm_sock *sk = st->tcp->all; sk; sk = sk->anext)
        fn(ctx, sk);
}

uint32_t tcpsm_stack_walk_begin(struct tcpsm_stack *st)
{
    struct tcp_stack *ts = st->tcp;
    if (!ts)
        return 0;
    tcp_walk_end(ts);                   /* one at a time: a walk in progress ends */
    ts->walk_next = ts->all;
    return ts->walk_id;
}

int tcpsm_stack_walk_step(struct tcpsm_stack *st, uint32_t walk, size_t max,
                          void (*fn)(void *ctx, const struct tcpsm_sock *sk), void *ctx)
{
    struct tcp_stack *ts = st->tcp;
    if (!ts || walk == 0 || walk != ts->walk_id)
        return -ESTALE;
    struct tcpsm_sock *sk = ts->walk_next;
    for (size_t n = 0; sk && n < max; n++, sk = sk->anext)
        fn(ctx, sk);
    ts->walk_next = sk;
    if (sk)
        return 0;
    tcp_walk_end(ts);                   /* done: the number is not valid again */
    return 1;
}

bool tcpsm_sock_held(const struct tcpsm_sock *sk)
{
    return sk->user_ref;
}

uint32_t tcpsm_sock_sacked_bytes(const struct tcpsm_sock *sk)
{
    return sk->sack_ok ? sk->rtxq.sacked : 0;
}
