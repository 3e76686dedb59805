/* Stack sockets passed between processes over AF_UNIX (SCM_RIGHTS).
 *
 * The kernel passes a stack socket's placeholder; its identity (st_dev,
 * st_ino, unique per socket: the shim gives an accepted socket a kernel
 * socket of its own before sending it) leads the receiver back to the stack
 * socket. Between sendmsg and recvmsg the socket is held by the message, as
 * Linux's in-flight file: a pass (one entry of sh->passes) counts as one
 * of the socket's users, so the sender may close its copy, or exit, at
 * once. The receiver's recvmsg takes the pass over as its own reference
 * (or, if it holds the socket already, drops it).
 *
 * Bounds: RT_MAX_PASSES passes in flight on the whole stack (beyond that a
 * socket is sent without one: it arrives as the stack socket only while
 * the sender still holds it, else as its placeholder, counted in
 * pass_full); a pass not received within RT_PASS_NS (the message was
 * dropped unread, its AF_UNIX socket closed, the receiver has not the
 * library: user space cannot see the kernel discard it) expires and its
 * reference is released then, counted in pass_expired. */
#include <errno.h>

#include "runtime.h"

static void pass_drop(struct rt_pass *p)
{
    struct rt_sock *rs = rt.sh->socks[p->id];
    p->used = false;
    rt.sh->npasses--;
    if (rs && rs == p->rs)
        rt_users_drop(rs, false);
}

void rt_pass_sweep(void)
{
    if (!rt.started || rt.sh->npasses == 0)
        return;                 /* an expired socket's close needs a link */
    uint64_t now = rt_now();
    for (unsigned i = 0; i < RT_MAX_PASSES; i++) {
        struct rt_pass *p = &rt.sh->passes[i];
        if (p->used && now - p->at > RT_PASS_NS) {
            rt.sh->pass_expired++;
            tcpsm_log(TCPSM_LOG_INFO, "a stack socket sent over AF_UNIX was not received in "
                      "%d s: its in-flight reference is released", (int)(RT_PASS_NS / 1000000000ull));
            pass_drop(p);
        }
    }
}

int tcpsm_pass_send(struct tcpsm_sock *sk, uint64_t dev, uint64_t ino)
{
    int r = -EBADF;
    if (!rt.reg)
        return r;
    rt_lock();
    struct rt_sock *rs = rt.me >= 0 && !rt.down && sk ? tcpsm_sock_user(sk) : NULL;
    if (rs && rs->sk && rt_held(rs)) {
        rt_pass_sweep();
        r = -ENOBUFS;
        for (unsigned i = 0; i < RT_MAX_PASSES; i++) {
            struct rt_pass *p = &rt.sh->passes[i];
            if (p->used)
                continue;
            *p = (struct rt_pass){ .used = true, .rs = rs, .id = rs->id, .dev = dev,
                                   .ino = ino, .at = rt_now() };
            rt.sh->npasses++;
            rs->users++;        /* the message's reference */
            rs->ph_dev = dev;
            rs->ph_ino = ino;
            r = 0;
            break;
        }
        if (r < 0)
            rt.sh->pass_full++;
    }
    rt_unlock();
    return r;
}

static struct rt_pass *pass_find(uint64_t dev, uint64_t ino)
{
    for (unsigned i = 0; i < RT_MAX_PASSES && rt.sh->npasses; i++) {
        struct rt_pass *p = &rt.sh->passes[i];
        if (p->used && p->ino == ino && p->dev == dev)
            return p;
    }
    return NULL;
}

void tcpsm_pass_cancel(uint64_t dev, uint64_t ino)
{
    if (!rt.reg)
        return;
    rt_lock();
    struct rt_pass *p = rt.me >= 0 && !rt.down ? pass_find(dev, ino) : NULL;
    if (p)
        pass_drop(p);           /* the sender still holds it: never the last reference */
    rt_unlock();
}

struct tcpsm_sock *tcpsm_pass_recv(uint64_t dev, uint64_t ino)
{
    /* Any socket received asks: nothing in flight is the common answer,
     * read without the lock (the sender counted its pass before its
     * sendmsg, which comes before this recvmsg). */
    if (ino == 0 || !rt.reg || !rt.sh || !__atomic_load_n(&rt.sh->npasses, __ATOMIC_RELAXED))
        return NULL;
    struct tcpsm_sock *sk = NULL;
    rt_lock();
    struct rt_pass *p = rt.me >= 0 && !rt.down ? pass_find(dev, ino) : NULL;
    struct rt_sock *rs = p ? rt.sh->socks[p->id] : NULL;
    if (p && rs == p->rs && rs->sk) {
        p->used = false;
        rt.sh->npasses--;
        if (rt_held(rs))
            rs->users--;        /* held here already: the message's reference goes */
        else
            rt_hold(rs);        /* the message's reference becomes this process's */
        sk = rs->sk;
    } else if (p) {
        pass_drop(p);
    }
    rt_unlock();
    return sk;
}
