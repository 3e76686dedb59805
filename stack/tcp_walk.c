/* Read-only walks over the stack's TCBs, for observers (the runtime's stats
 * region): every TCB, held or orphaned, listener or connection. */
#include "stack.h"
#include "tcp_int.h"

void tcpsm_stack_walk(const struct tcpsm_stack *st,
                      void (*fn)(void *ctx, const struct tcpsm_sock *sk), void *ctx)
{
    for (const struct tcpsm_sock *sk = st->tcp->all; sk; sk = sk->anext)
        fn(ctx, sk);
}

bool tcpsm_sock_held(const struct tcpsm_sock *sk)
{
    return sk->user_ref;
}

uint32_t tcpsm_sock_sacked_bytes(const struct tcpsm_sock *sk)
{
    return sk->sack_ok ? sk->rtxq.sacked : 0;
}
