/* What a call in progress holds, per thread, so that leaving it by
 * siglongjmp (wget's connect timeout: alarm + siglongjmp out of a blocked
 * connect or read) does not leak it.
 *
 * A call takes a reference on the socket object it works on (shim_lookup),
 * an epoll_wait one on its epoll object, a blocking accept a placeholder fd:
 * each is recorded here (a per-thread stack of entries) and the record is
 * dropped where the call gives it back. The runtime's own registrations are
 * withdrawn before a handler runs (runtime_signal.c); these are the shim's.
 *
 * The signal wrapper (signal_calls.c) knows whether the program's handler
 * returned: it pushes a mark (depth of the entry stack, where its frame is)
 * before calling the handler and pops it after. A mark still there whose
 * frame is no longer on the thread's stack (the current frame lies above
 * it, or, for a handler on an alternate signal stack, outside that stack)
 * belongs to a handler that was left by a jump. Then the calls that were in
 * progress when it started are over too, down to the innermost handler
 * still running (only a handler can be a jump's target inside a call: the
 * shim calls no other program code), and their entries are released. That
 * is looked at when the thread next takes a socket reference or closes an
 * fd: the usual sequence is jump, then close the socket, which then closes
 * the connection.
 *
 * A handler that returns releases what calls made inside it left behind.
 * Not covered (a reference stays, as before): calls made inside a handler
 * that is then left by a jump out of a handler nested in it, a thread that
 * exits after a jump without another socket call, handlers the shim did not
 * install (raw rt_sigaction), and more than IF_MAX references at once. */
#include "shim.h"

#include <signal.h>
#include <unistd.h>

#define IF_MAX 256
#define MARK_MAX 32

enum { IF_SOCK, IF_EP, IF_FD };

struct entry {
    uintptr_t v;                /* the object, or the fd << 2; low 2 bits: kind */
};

struct mark {
    uintptr_t frame;            /* an address in the wrapper's frame */
    uintptr_t alt_lo, alt_hi;   /* the alternate signal stack it runs on, if any */
    bool alt;
    unsigned depth;             /* entries in flight when the handler started */
};

static __thread struct entry t_e[IF_MAX];
static __thread unsigned t_n;           /* t_e[0..t_n): 0 = a released entry */
static __thread struct mark t_m[MARK_MAX];
static __thread unsigned t_nm;          /* may exceed MARK_MAX: the rest untracked */

static uintptr_t here(void)
{
    volatile char probe = 0;
    return (uintptr_t)&probe;
}

static bool on_alt_stack(stack_t *ss)
{
    return sigaltstack(NULL, ss) == 0 && (ss->ss_flags & SS_ONSTACK);
}

static void add(uintptr_t v)
{
    if (t_n < IF_MAX)
        t_e[t_n++].v = v;
}

/* Drops the innermost entry for v (an entry of another call on the same
 * object may be found: the references are alike, so that is harmless). */
static void done(uintptr_t v)
{
    for (unsigned i = t_n; i-- > 0;) {
        if (t_e[i].v == v) {
            t_e[i].v = 0;
            while (t_n > 0 && t_e[t_n - 1].v == 0)
                t_n--;
            return;
        }
    }
}

static void release(unsigned lo, unsigned hi)
{
    for (unsigned i = hi; i-- > lo;) {
        uintptr_t v = t_e[i].v;
        t_e[i].v = 0;
        if (!v)
            continue;
        switch (v & 3) {
        case IF_SOCK:
            shim_sock_unref((struct shim_sock *)v);
            break;
        case IF_EP:
            shim_ep_unref((struct shim_ep *)(v & ~(uintptr_t)3));
            break;
        case IF_FD:
            REAL(close)((int)(v >> 2));
            break;
        }
    }
    while (t_n > 0 && t_e[t_n - 1].v == 0)
        t_n--;
}

static __attribute__((noinline)) void check_slow(void)
{
    if (shim_vm_child())
        return;                 /* the parent's memory, its thread's records: not ours to act on */
    uintptr_t cur = here();
    int alt = -1;               /* this thread is on an alternate stack: unknown yet */
    stack_t ss;
    unsigned hi = 0;
    bool left = false;
    while (t_nm > 0 && t_nm <= MARK_MAX) {
        const struct mark *m = &t_m[t_nm - 1];
        bool gone;
        if (m->alt) {
            gone = cur < m->alt_lo || cur >= m->alt_hi;
        } else if (cur <= m->frame) {
            gone = false;       /* below the wrapper: inside its handler (or deeper since) */
        } else {
            if (alt < 0)
                alt = on_alt_stack(&ss);
            gone = !alt;        /* on another stack the addresses say nothing */
        }
        if (!gone)
            break;
        if (!left)
            hi = m->depth;
        left = true;
        t_nm--;
    }
    if (!left)
        return;
    unsigned lo = t_nm > 0 && t_nm <= MARK_MAX ? t_m[t_nm - 1].depth : 0;
    if (hi > t_n)
        hi = t_n;
    if (lo < hi)
        release(lo, hi);
}

void shim_inflight_check(void)
{
    if (__builtin_expect(t_nm == 0, 1))
        return;
    check_slow();
}

void shim_inflight_sock(struct shim_sock *s)
{
    shim_inflight_check();
    add((uintptr_t)s | IF_SOCK);
}

void shim_inflight_sock_done(struct shim_sock *s)
{
    if (t_n)
        done((uintptr_t)s | IF_SOCK);
}

void shim_inflight_ep(struct shim_ep *ep)
{
    shim_inflight_check();
    add((uintptr_t)ep | IF_EP);
}

void shim_inflight_ep_done(struct shim_ep *ep)
{
    if (t_n)
        done((uintptr_t)ep | IF_EP);
}

void shim_inflight_fd(int fd)
{
    if (fd >= 0)
        add(((uintptr_t)fd << 2) | IF_FD);
}

void shim_inflight_fd_done(int fd)
{
    if (fd >= 0 && t_n)
        done(((uintptr_t)fd << 2) | IF_FD);
}

struct shim_sig_scope shim_inflight_sig_enter(void)
{
    struct shim_sig_scope sc = { .depth = t_n, .nmarks = t_nm };
    if (t_n == 0)
        return sc;              /* nothing in flight: nothing a jump could leave */
    if (t_nm < MARK_MAX) {
        struct mark *m = &t_m[t_nm];
        stack_t ss;
        m->frame = here();
        m->alt = on_alt_stack(&ss);
        m->alt_lo = (uintptr_t)ss.ss_sp;
        m->alt_hi = (uintptr_t)ss.ss_sp + ss.ss_size;
        m->depth = t_n;
    }
    t_nm++;
    return sc;
}

void shim_inflight_sig_leave(struct shim_sig_scope sc)
{
    /* The handler returned: marks above its own are of handlers left by a
     * jump inside it, and whatever its calls still hold is theirs. */
    t_nm = sc.nmarks;
    if (t_n > sc.depth)
        release(sc.depth, t_n);
}
