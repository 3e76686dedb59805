/* The stack after a process died holding its lock halfway through an
 * operation (kill -9, or _exit while another of its threads was inside the
 * stack): the lock comes back EOWNERDEAD to the next taker, which repairs
 * the shared region before anything else runs on it (README "Process
 * model"). In order:
 *   1. the allocator (shm_repair): its free lists and counts rebuilt from
 *      the heads of the blocks in use;
 *   2. the runtime's lists here: the socket table, every socket's wait
 *      queue, every process's waiters, the pollers, the epoll instances,
 *      items and ready lists (rt_ep_check): walked with every node checked
 *      to be a block in use, back links and counts rewritten from the
 *      forward walk, a list cut where a node is not one;
 *   3. the core (tcpsm_stack_repair): its indexes rebuilt from the TCBs,
 *      connections whose own state fails a check reset;
 *   4. sockets whose TCB is gone are closed for their holders (EBADF);
 *      each socket's count of holders is counted again (one nobody holds
 *      is closed with a reset) and TCBs the application holds through no
 *      socket are closed with a reset (holders_check);
 *   5. every waiter of every process and every epoll instance with a ready
 *      list is woken: whatever a dead holder was about to signal, everyone
 *      looks again (a spurious wake-up is allowed, a lost one is not);
 *   6. what the dead holder allocated and linked nowhere is freed
 *      (shm_reclaim_journal).
 * Then the whole region is audited again; a fault left is logged as an
 * error. TCPSM_NO_REPAIR=1 skips it all (to show what it repairs: the
 * audit then finds the faults). TCPSM_AUDIT=1 (or 2): each process audits the
 * region as it attaches and writes one line to stderr (2: and a line per
 * application socket naming who holds it). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "fault_note.h"
#include "runtime.h"

#define WQ_MAX (4u * RT_MAX_IDS)        /* bound of a walk: longer is a cycle */


static bool ok(const void *p, size_t n)
{
    return shm_valid(rt.reg, p, n);
}

/* Is q on rs's wait queue? */
static bool queued(const struct rt_sock *rs, const struct rt_wqe *q)
{
    unsigned k = 0;
    for (const struct rt_wqe *x = rs->waiters; x && k < WQ_MAX; x = x->next, k++)
        if (x == q)
            return true;
    return false;
}

static void wqe_check(struct rt_wqe *q, struct fault_note *f, bool fix)
{
    if (q->rs && (!ok(q->rs, sizeof(*q->rs)) || !queued(q->rs, q))) {
        FAULT_NOTE(f, "a wait entry of waiter %p names socket %p but is not on its queue",
                   (void *)q->w, (void *)q->rs);
        if (fix) {
            q->rs = NULL;
            q->next = q->prev = NULL;
        }
    }
}

static void shared_check(struct fault_note *f, bool fix)
{
    struct rt_shared *sh = rt.sh;
    /* the socket table */
    uint32_t n = 0;
    for (uint32_t i = 0; i < RT_MAX_IDS; i++) {
        struct rt_sock *rs = sh->socks[i];
        if (!rs)
            continue;
        if (!ok(rs, sizeof(*rs)) || rs->id != i) {
            FAULT_NOTE(f, "socket table %u: %p is not its socket", i, (void *)rs);
            if (fix)
                sh->socks[i] = NULL;
            continue;
        }
        n++;
        if (rs->sk && !ok(rs->sk, 1)) {
            FAULT_NOTE(f, "socket %u: its TCB %p is freed memory", i, (void *)rs->sk);
            if (fix)
                rs->sk = NULL;
        }
        /* its wait queue */
        struct rt_wqe *prev = NULL;
        unsigned k = 0;
        for (struct rt_wqe **pp = &rs->waiters; *pp; pp = &(*pp)->next) {
            struct rt_wqe *q = *pp;
            if (!ok(q, sizeof(*q)) || q->rs != rs || !ok(q->w, sizeof(*q->w)) || ++k > WQ_MAX) {
                FAULT_NOTE(f, "socket %u: wait queue entry %p is not one of its own", i, (void *)q);
                if (fix)
                    *pp = NULL;
                break;
            }
            if (q->prev != prev) {
                FAULT_NOTE(f, "socket %u: wait queue entry %p has a wrong back link", i, (void *)q);
                if (fix)
                    q->prev = prev;
            }
            prev = q;
        }
    }
    if (n != sh->nsocks) {
        FAULT_NOTE(f, "nsocks %u, %u sockets in the table", sh->nsocks, n);
        if (fix)
            sh->nsocks = n;
    }
    /* every process's waiters and their registrations */
    for (int p = 0; p < RT_MAX_PROCS; p++) {
        struct rt_proc *pr = &sh->procs[p];
        struct rt_waiter *prev = NULL;
        unsigned k = 0;
        for (struct rt_waiter **pp = &pr->waiters; *pp; pp = &(*pp)->w_next) {
            struct rt_waiter *w = *pp;
            if (!ok(w, sizeof(*w)) || w->proc != p || ++k > WQ_MAX) {
                FAULT_NOTE(f, "process slot %d: waiter %p is not one of its own", p, (void *)w);
                if (fix)
                    *pp = NULL;
                break;
            }
            if (w->w_prev != prev) {
                FAULT_NOTE(f, "process slot %d: waiter %p has a wrong back link", p, (void *)w);
                if (fix)
                    w->w_prev = prev;
            }
            prev = w;
            wqe_check(&w->bq, f, fix);
            if (w->watch && !ok(w->watch, (size_t)w->capwatch * sizeof(*w->watch))) {
                FAULT_NOTE(f, "waiter %p: its poll registrations %p are freed memory", (void *)w,
                           (void *)w->watch);
                if (fix) {
                    w->watch = NULL;
                    w->nwatch = w->capwatch = 0;
                }
            }
            if (w->nwatch > w->capwatch) {
                FAULT_NOTE(f, "waiter %p: %u of %u poll registrations", (void *)w, w->nwatch,
                           w->capwatch);
                if (fix)
                    w->nwatch = w->capwatch;
            }
            for (unsigned j = 0; j < w->nwatch; j++)
                wqe_check(&w->watch[j], f, fix);
        }
    }
    /* the pollers */
    struct rt_waiter *prev = NULL;
    unsigned k = 0;
    for (struct rt_waiter **pp = &sh->pollers; *pp; pp = &(*pp)->p_next) {
        struct rt_waiter *w = *pp;
        if (!ok(w, sizeof(*w)) || !w->on_pollers || ++k > WQ_MAX) {
            FAULT_NOTE(f, "pollers: %p is not a polling waiter", (void *)w);
            if (fix)
                *pp = NULL;
            break;
        }
        if (w->p_prev != prev) {
            FAULT_NOTE(f, "pollers: %p has a wrong back link", (void *)w);
            if (fix)
                w->p_prev = prev;
        }
        prev = w;
    }
}

/* Sockets whose TCB the core no longer has (it was being freed, or was
 * not a TCB): closed for their holders. */
static void sock_links(struct fault_note *f, bool fix)
{
    if (!rt.sh->st)
        return;
    for (uint32_t i = 0; i < RT_MAX_IDS; i++) {
        struct rt_sock *rs = rt.sh->socks[i];
        if (rs && rs->sk && !tcpsm_stack_sock_live(rt.sh->st, rs->sk)) {
            FAULT_NOTE(f, "socket %u: its TCB %p is not on the stack", i, (void *)rs->sk);
            if (fix)
                rs->sk = NULL;
        }
    }
}

/* Who holds each socket, counted again: the processes whose slot has its
 * bit (living, or dead and not yet reaped) and the AF_UNIX messages in
 * flight. A socket whose count was left off by a dead holder (it died
 * between making the socket and recording its holder, or between dropping
 * the last holder and closing it) gets the right count; one nobody holds is
 * closed with a reset, as a dead process's are. Then the TCBs the
 * application holds whose socket is gone (the holder died between making
 * the TCB and its socket, or between freeing the socket and closing the
 * TCB) are closed with a reset too. */
#define ORPHANS_MAX 256
struct orphans {
    const struct tcpsm_sock *sk[ORPHANS_MAX];
    unsigned n;
};

static bool sock_of(const struct tcpsm_sock *sk, const struct rt_sock *rs)
{
    return rs && ok(rs, sizeof(*rs)) && rs->id < RT_MAX_IDS && rt.sh->socks[rs->id] == rs &&
           rs->sk == sk;
}

static void find_orphan(void *ctx, const struct tcpsm_sock *sk)
{
    struct orphans *o = ctx;
    if (tcpsm_sock_held(sk) && !sock_of(sk, tcpsm_sock_user(sk)) && o->n < ORPHANS_MAX)
        o->sk[o->n++] = sk;
}

static void holders_check(struct fault_note *f, bool fix)
{
    struct rt_shared *sh = rt.sh;
    for (uint32_t id = 0; id < RT_MAX_IDS; id++) {
        struct rt_sock *rs = sh->socks[id];
        if (!rs)
            continue;
        unsigned holders = 0;
        for (int p = 0; p < RT_MAX_PROCS; p++)
            holders += atomic_load(&sh->procs[p].pid) != 0 &&
                       ((sh->procs[p].held[id / 64] >> (id % 64)) & 1);
        for (unsigned k = 0; k < RT_MAX_PASSES; k++)
            holders += sh->passes[k].used && sh->passes[k].rs == rs && sh->passes[k].id == id;
        /* Between operations a socket in the table has a holder: the last
         * reference's release takes it out of the table in the same hold
         * (final_close). So one nobody holds is a fault whatever its count
         * says: the holder died after making it and before counting itself
         * (users still 0), or after dropping the count to 0 and before the
         * close (users 0 too, so the counts alone agree). */
        if (holders == rs->users && holders > 0)
            continue;
        FAULT_NOTE(f, "socket %u: %u users counted, %u hold it", id, rs->users, holders);
        if (!fix)
            continue;
        rs->users = holders ? holders : 1;
        if (!holders)
            rt_users_drop(rs, true);    /* the last reference: closed with a reset */
    }
    if (!sh->st)
        return;
    static struct orphans o;            /* under the lock; not on a thread's stack */
    o.n = 0;
    tcpsm_stack_walk(sh->st, find_orphan, &o);
    for (unsigned i = 0; i < o.n; i++) {
        struct tcpsm_sock *sk = (struct tcpsm_sock *)o.sk[i];
        FAULT_NOTE(f, "TCB %p: held by the application through no socket", (void *)sk);
        if (fix) {
            tcpsm_sock_set_user(sk, NULL);
            tcpsm_sock_abort(sk, rt_now());
            tcpsm_sock_close(sk, rt_now());
        }
    }
}

/* Everyone looks again (see above). */
static void wake_all(void)
{
    for (int p = 0; p < RT_MAX_PROCS; p++) {
        if (atomic_load(&rt.sh->procs[p].pid) == 0)
            continue;
        /* a kick the dead holder marked (rt_kick) and did not deliver
         * would turn every later one away: that process's waiters, and the
         * epoll instances queued for it to raise (rt_ep_check above), would
         * sleep for good; each other process's service thread looks again */
        rt.sh->procs[p].kicked = false;
        if (p != rt.me)
            rt_kick(p);
        for (struct rt_waiter *w = rt.sh->procs[p].waiters; w; w = w->w_next) {
            w->signalled = false;       /* a write the dead holder owed may not have happened */
            rt_signal(w);
        }
    }
}

void rt_repair(void)
{
    const char *off = getenv("TCPSM_NO_REPAIR");
    if (off && off[0] == '1') {
        char why[256];
        unsigned n = rt_audit(why, sizeof(why));
        tcpsm_log(TCPSM_LOG_WARN, "the stack lock's holder died halfway: TCPSM_NO_REPAIR=1, not "
                  "repaired; the audit finds %u faults%s%s", n, n ? ": " : "", why);
        shm_journal_reset(rt.reg);
        return;
    }
    uint64_t t0 = rt_now();
    char first[256];
    rt_audit(first, sizeof(first));     /* what the dead holder left, for the log */
    unsigned fa = shm_repair(rt.reg);
    char rwhy[160] = "";
    struct fault_note fr = { .why = rwhy, .whylen = sizeof(rwhy) };
    shared_check(&fr, true);
    fr.n += rt_ep_check(true);
    struct tcpsm_stack *st = rt.sh->st;
    uint64_t resets0 = st ? tcpsm_stack_counters(st)->repair_resets : 0;
    unsigned fc = st ? tcpsm_stack_repair(st, t0) : 0;
    sock_links(&fr, true);
    holders_check(&fr, true);
    wake_all();
    unsigned leaks = shm_reclaim_journal(rt.reg);
    uint64_t resets = st ? tcpsm_stack_counters(st)->repair_resets - resets0 : 0;
    if (st)
        tcpsm_stack_repair_count(st, fa + fr.n, leaks, fc != 0);
    char why[256];
    unsigned left = rt_audit(why, sizeof(why));
    tcpsm_log(fa || fr.n || fc || leaks ? TCPSM_LOG_WARN : TCPSM_LOG_INFO,
              "the stack lock's holder died halfway: repaired %u faults (allocator %u, runtime "
              "%u, core %u), %llu connections reset, %u blocks reclaimed, in %llu us%s%s%s%s",
              fa + fr.n + fc, fa, fr.n, fc, (unsigned long long)resets, leaks,
              (unsigned long long)((rt_now() - t0) / 1000), first[0] ? "; first: " : "", first,
              rwhy[0] && strcmp(rwhy, first) != 0 ? "; runtime: " : "",
              rwhy[0] && strcmp(rwhy, first) != 0 ? rwhy : "");
    if (left)
        tcpsm_log(TCPSM_LOG_ERROR, "after the repair the region audit finds %u faults: %s", left,
                  why);
}

unsigned rt_audit(char *why, size_t whylen)
{
    if (why && whylen)
        why[0] = 0;
    unsigned n = shm_audit(rt.reg, why, whylen);
    if (n)
        return n;               /* the rest walks blocks the allocator vouches for */
    struct fault_note f = { .why = why, .whylen = whylen };
    shared_check(&f, false);
    unsigned fe = rt_ep_check(false);
    if (fe && !f.n && why && whylen)
        snprintf(why, whylen, "epoll instances, items or ready lists: %u faults", fe);
    f.n += fe;
    if (f.n)
        return f.n;
    if (rt.sh->st) {
        f.n += tcpsm_stack_audit(rt.sh->st, why, whylen);
        if (!f.n)
            sock_links(&f, false);
    }
    if (!f.n)
        holders_check(&f, false);
    return f.n;
}

/* TCPSM_AUDIT=2: who holds each application socket, a line each (what a
 * leftover socket in a test is held by). */
static void holders_report(void)
{
    struct rt_shared *sh = rt.sh;
    char line[600];
    for (uint32_t id = 0; id < RT_MAX_IDS; id++) {
        struct rt_sock *rs = sh->socks[id];
        if (!rs)
            continue;
        struct tcpsm_addr a;
        uint16_t lp = 0, pp = 0;
        int st = rs->sk ? tcpsm_sock_state(rs->sk) : -1;
        if (rs->sk) {
            tcpsm_sock_name_addr(rs->sk, &a, &lp);
            if (tcpsm_sock_peer_addr(rs->sk, &a, &pp) < 0)
                pp = 0;
        }
        int n = snprintf(line, sizeof(line), "tcpsm audit: socket %u users %u refs %u %s port %u "
                         "peer port %u; held by", id, rs->users, rs->refs,
                         st >= 0 ? tcpsm_state_name(st) : "(closed)", lp, pp);
        for (int p = 0; p < RT_MAX_PROCS && n < (int)sizeof(line) - 64; p++) {
            const struct rt_proc *pr = &sh->procs[p];
            if ((pr->held[id / 64] >> (id % 64)) & 1)
                n += snprintf(line + n, sizeof(line) - (size_t)n, " slot %d pid %d%s%s", p,
                              atomic_load(&pr->pid), pr->left ? " left" : "",
                              p == rt.me ? " (me)" : "");
        }
        for (unsigned k = 0; k < RT_MAX_PASSES; k++)
            if (sh->passes[k].used && sh->passes[k].rs == rs)
                n += snprintf(line + n, sizeof(line) - (size_t)n, " pass %u", k);
        n += snprintf(line + n, sizeof(line) - (size_t)n, "\n");
        syscall(SYS_write, 2, line, (size_t)(n < (int)sizeof(line) ? n : (int)sizeof(line) - 1));
    }
}

/* TCPSM_AUDIT=1, at attach (lock held): one line on stderr (2: and one per
 * application socket, who holds it). */
void rt_audit_report(void)
{
    const char *on = getenv("TCPSM_AUDIT");
    if (!on || (on[0] != '1' && on[0] != '2'))
        return;
    char why[256], line[900];
    unsigned n = rt_audit(why, sizeof(why));
    const struct tcpsm_counters *c = rt.sh->st ? tcpsm_stack_counters(rt.sh->st) : NULL;
    size_t per[TCPSM_NSTATES] = { 0 }, tcbs = 0, mem = 0, cache = 0;
    char states[256] = "";
    if (rt.sh->st && !n) {
        tcpsm_stack_census(rt.sh->st, per, &mem, &cache);
        size_t o = 0;
        for (int i = 0; i < TCPSM_NSTATES; i++) {
            tcbs += per[i];
            if (per[i] && o < sizeof(states))
                o += (size_t)snprintf(states + o, sizeof(states) - o, " %s:%zu",
                                      tcpsm_state_name(i), per[i]);
        }
    }
    int len = snprintf(line, sizeof(line),
                       "tcpsm audit: %u faults; tcbs %zu timewait %zu socks %u buf_bytes %zu "
                       "ring_cache %zu region_bytes %llu lock_recovered %llu repair_passes %llu "
                       "repair_faults %llu repair_resets %llu repair_leaks %llu; states%s%s%s\n",
                       n, tcbs, per[TCPSM_TIME_WAIT], rt.sh->nsocks, mem, cache,
                       (unsigned long long)rt.reg->bytes_used,
                       (unsigned long long)rt.sh->lock_recovered,
                       (unsigned long long)(c ? c->repair_passes : 0),
                       (unsigned long long)(c ? c->repair_faults : 0),
                       (unsigned long long)(c ? c->repair_resets : 0),
                       (unsigned long long)(c ? c->repair_leaks : 0), states, n ? ": " : "",
                       n ? why : "");
    if (len > (int)sizeof(line) - 1)
        len = (int)sizeof(line) - 1;
    /* not through the shim's write: its locks come before the stack lock */
    syscall(SYS_write, 2, line, (size_t)len);
    if (on[0] == '2')
        holders_report();
}
