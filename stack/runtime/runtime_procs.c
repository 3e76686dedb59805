/* Processes sharing one stack: attaching to the region, process slots, the
 * sockets each process holds (an open file description each, counted
 * across processes), fork, and processes that died without leaving.
 *
 * A socket's `users` is the number of processes holding it. fork() adds the
 * child to every socket the parent holds (in the prepare handler, under the
 * lock, so no close in between can end a connection the child still holds);
 * close in one process drops that process's reference; the connection is
 * closed when the last reference goes, in whichever process (as the kernel
 * does for an open file description shared by fork).
 *
 * A process that dies without leaving (kill -9) keeps its slot until some
 * other process notices (the service thread checks, or the lock comes back
 * EOWNERDEAD): its references are dropped and the sockets only it held are
 * reset, its waiters are freed. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime.h"

/* A fork that reserved a slot and whose child never claimed it has failed. */
#define FORK_CLAIM_NS 5000000000ull

static void *alloc_cb(void *ctx, size_t n)
{
    return shm_alloc(ctx, n);
}

static void free_cb(void *ctx, void *p)
{
    shm_free(ctx, p);
}

static bool valid_cb(void *ctx, const void *p, size_t n)
{
    return shm_valid(ctx, p, n);
}

void rt_alloc_install(void)
{
    struct tcpsm_allocator a = { .alloc = alloc_cb, .free = free_cb, .valid = valid_cb,
                                 .ctx = rt.reg };
    tcpsm_set_allocator(&a);
}

void *rt_alloc(size_t n)
{
    return shm_calloc(rt.reg, n);
}

void rt_free(void *p)
{
    shm_free(rt.reg, p);
}

static void forget_waiters(int i);

/* Is any process of the region alive? (Without reaping: only a process
 * that has started its link reaps.) */
static bool any_alive(void)
{
    for (int i = 0; i < RT_MAX_PROCS; i++) {
        int pid = atomic_load(&rt.sh->procs[i].pid);
        if (pid < 0 || (pid > 0 && !(kill(pid, 0) < 0 && errno == ESRCH)))
            return true;
    }
    return false;
}

static int slot_take(int pid)
{
    for (int i = 0; i < RT_MAX_PROCS; i++) {
        struct rt_proc *p = &rt.sh->procs[i];
        if (atomic_load(&p->pid) == 0) {
            memset(p->held, 0, sizeof(p->held));
            p->waiters = NULL;
            p->kicked = false;
            p->left = false;
            p->driving = false;
            p->nheld = 0;
            p->link = false;
            p->reserved_at = rt_now();
            if (atomic_load(&rt.sh->procs_hi) <= i)
                atomic_store(&rt.sh->procs_hi, i + 1);
            atomic_store(&p->pid, pid);
            return i;
        }
    }
    return -1;
}

int rt_attach(char *err, size_t errlen)
{
    shm_region_name(rt.reg_name, sizeof(rt.reg_name), rt.set.ifname, rt.set.addr);
    int region_fd = -1;
    if (rt_link_fetch(&region_fd, err, errlen) < 0)
        return -1;
    for (int attempt = 0; attempt < 20; attempt++) {
        bool created = false;
        rt.reg = shm_region_attach(rt.reg_name, rt.set.shm_mb, region_fd, &created, err, errlen);
        if (region_fd >= 0) {
            /* Handed over once: a region that has to be replaced is
             * looked for by name. */
            syscall(SYS_close, region_fd);
            region_fd = -1;
        }
        if (!rt.reg)
            return -1;
        rt_alloc_install();     /* before anything below can reach the core */
        rt_lock();
        if (rt.reg->dead) {
            /* The last process left it as we opened it: take the next one. */
            rt_unlock();
            munmap(rt.reg, rt.reg->size);
            rt.reg = NULL;
            continue;
        }
        if (created) {
            rt.reg->root = shm_calloc(rt.reg, sizeof(struct rt_shared));
            if (!rt.reg->root) {
                rt.reg->dead = 1;
                rt_unlock();
                shm_region_unlink(rt.reg_name);
                snprintf(err, errlen, "TCPSM_SHM_MB=%u: too small for the stack's tables",
                         rt.set.shm_mb);
                return -1;
            }
        }
        rt.sh = rt.reg->root;
        rt_reap();
        if (!created && !any_alive() && rt.sh->st) {
            /* Left over by processes that all died: start afresh. */
            rt.reg->dead = 1;
            rt_unlock();
            shm_region_unlink(rt.reg_name);
            munmap(rt.reg, rt.reg->size);
            rt.reg = NULL;
            rt.sh = NULL;
            continue;
        }
        rt.me = -1;
        for (int i = 0; i < RT_MAX_PROCS; i++) {
            struct rt_proc *p = &rt.sh->procs[i];
            if (atomic_load(&p->pid) == (int)getpid() && !p->left) {
                /* This process before exec: its old threads are gone;
                 * its sockets stay held until the new image has claimed
                 * those whose fds survived exec (runtime_exec.c). */
                forget_waiters(i);
                rt.me = i;
                p->link = false;        /* the old image's link socket was close-on-exec */
                if (rt.sh->share_pid == (int)getpid())
                    rt.sh->share_pid = 0;       /* so was the socket file's listener */
                p->driving = false;
                if (p->nheld)
                    rt.exec_claimed = calloc(RT_MAX_IDS / 64, sizeof(uint64_t));
                break;
            }
        }
        if (rt.me < 0) {
            rt.me = slot_take((int)getpid());
            /* A process started separately: the others' service threads
             * may sleep with nobody else to watch for (rare: all woken). */
            for (int i = 0; rt.me >= 0 && i < RT_MAX_PROCS; i++)
                if (i != rt.me && rt.sh->procs[i].driving)
                    rt_kick(i);
        }
        rt_audit_report();
        rt_unlock();
        if (rt.me < 0) {
            snprintf(err, errlen, "shared memory %s: already %d processes on this stack",
                     rt.reg_name, RT_MAX_PROCS);
            return -1;
        }
        return 0;
    }
    snprintf(err, errlen, "shared memory %s: cannot attach (it keeps being removed)", rt.reg_name);
    return -1;
}

bool rt_held(const struct rt_sock *rs)
{
    return (rt.sh->procs[rt.me].held[rs->id / 64] >> (rs->id % 64)) & 1;
}

void rt_hold(struct rt_sock *rs)
{
    struct rt_proc *p = &rt.sh->procs[rt.me];
    if (!rt_held(rs))
        p->nheld++;
    p->held[rs->id / 64] |= 1ull << (rs->id % 64);
}

int rt_id_new(struct rt_sock *rs)
{
    struct rt_shared *sh = rt.sh;
    if (sh->nsocks >= RT_MAX_IDS) {
        sh->no_id++;
        return -1;
    }
    uint32_t id = sh->next_id;
    while (sh->socks[id])
        id = (id + 1) % RT_MAX_IDS;
    sh->socks[id] = rs;
    sh->nsocks++;
    sh->next_id = (id + 1) % RT_MAX_IDS;
    rs->id = id;
    return 0;
}

void rt_id_free(struct rt_sock *rs)
{
    if (rt.sh->socks[rs->id] == rs) {
        rt.sh->socks[rs->id] = NULL;
        rt.sh->nsocks--;
    }
}

uint16_t rt_fanout_get(void)
{
    for (int i = 0; i < RT_MAX_PROCS; i++) {
        struct rt_proc *p = &rt.sh->procs[i];
        int pid = atomic_load(&p->pid);
        if (i != rt.me && pid > 0 && p->link && !p->left && !(kill(pid, 0) < 0 && errno == ESRCH))
            return rt.sh->fanout_id;
    }
    /* No socket of the group is open any more: the group is gone with
     * them, and its number may be another's now. */
    return 0;
}

void rt_fanout_set(uint16_t id)
{
    rt.sh->fanout_id = id;
    rt.sh->procs[rt.me].link = true;
}

/* The last reference is gone: the socket closes (the core frees it when
 * the connection is over), blocked callers get -EBADF. */
static void final_close(struct rt_sock *rs, bool abort)
{
    struct tcpsm_sock *sk = rs->sk;
    rt_ep_sock_gone(rs);        /* before rs->sk goes: the items' references cannot free rs */
    rt_id_free(rs);
    if (sk) {
        tcpsm_sock_set_user(sk, NULL);
        if (abort)
            tcpsm_sock_abort(sk, rt_now());
        tcpsm_sock_close(sk, rt_now());
    }
    rs->sk = NULL;
    rt_wake_sock(rs);
    if (rs->refs == 0)
        rt_free(rs);
}

static void release_in(int proc, struct rt_sock *rs, bool abort)
{
    uint64_t *held = rt.sh->procs[proc].held;
    if (!((held[rs->id / 64] >> (rs->id % 64)) & 1))
        return;
    held[rs->id / 64] &= ~(1ull << (rs->id % 64));
    rt.sh->procs[proc].nheld--;
    if (rs->users > 0)
        rs->users--;
    if (rs->users == 0)
        final_close(rs, abort);
}

void rt_release(struct rt_sock *rs, bool abort)
{
    release_in(rt.me, rs, abort);
}

void rt_users_drop(struct rt_sock *rs, bool abort)
{
    if (rs->users > 0)
        rs->users--;
    if (rs->users == 0)
        final_close(rs, abort);
}

static void forget_held(int i, bool abort)
{
    struct rt_proc *p = &rt.sh->procs[i];
    for (uint32_t w = 0; w < RT_MAX_IDS / 64; w++) {
        while (p->held[w]) {
            uint32_t id = w * 64 + (uint32_t)__builtin_ctzll(p->held[w]);
            struct rt_sock *rs = rt.sh->socks[id];
            if (rs)
                release_in(i, rs, abort);
            else {
                p->held[w] &= ~(1ull << (id % 64));
                p->nheld--;
            }
        }
    }
}

/* The waiters of threads that no longer exist, and the process's epoll
 * instances. */
static void forget_waiters(int i)
{
    struct rt_proc *p = &rt.sh->procs[i];
    while (p->waiters) {
        struct rt_waiter *w = p->waiters;
        p->waiters = w->w_next;
        struct rt_sock *rs = w->bq.rs;
        if (rs) {
            /* An exclusive waiter (a blocked accept) chosen for a wake-up
             * whose process died before taking the connection: the wake-up
             * goes on to the next, as block_end hands it on, or the others
             * would sleep with connections queued until the next one came. */
            bool handoff = w->bq.exclusive && w->signalled;
            rt_sock_wait_del(&w->bq);
            if (handoff && rs->sk && (tcpsm_sock_poll(rs->sk) & TCPSM_POLLIN))
                rt_wake_sock_event(rs);
            rt_sock_unref(rs);
        }
        for (unsigned k = 0; k < w->nwatch; k++) {
            struct rt_sock *wrs = w->watch[k].rs;
            rt_sock_wait_del(&w->watch[k]);
            if (wrs)
                rt_sock_unref(wrs);
        }
        rt_free(w->watch);
        rt_poller_del(w);
        rt_free(w);
    }
    rt_ep_orphan_proc(i);
}

/* Every reference and waiter of a process that is gone (or of a fork that
 * never happened). */
static void forget_proc(int i, bool abort)
{
    forget_held(i, abort);
    forget_waiters(i);
    atomic_store(&rt.sh->procs[i].pid, 0);
}

void rt_reap(void)
{
    rt_pass_sweep();
    uint64_t now = rt_now();
    for (int i = 0; i < RT_MAX_PROCS; i++) {
        if (i == rt.me)
            continue;
        struct rt_proc *p = &rt.sh->procs[i];
        /* Closing its sockets needs a link: one that has one does it. A
         * process that held none (a forked child that ended with _exit) is
         * forgotten by anyone. */
        if (!rt.started && p->nheld > 0)
            continue;
        int pid = atomic_load(&p->pid);
        bool gone = false;
        if (pid > 0)
            gone = kill(pid, 0) < 0 && errno == ESRCH;
        else if (pid < 0)
            gone = now - p->reserved_at > FORK_CLAIM_NS;
        if (gone) {
            if (pid > 0 && pid == rt.sh->share_pid) {
                /* It served the socket file: one standing by takes over. */
                rt.sh->share_pid = 0;
                for (int k = 0; k < RT_MAX_PROCS; k++)
                    if (k != i && atomic_load(&rt.sh->procs[k].pid) > 0)
                        rt_kick(k);
            }
            if (pid > 0 && !p->left) {
                rt.sh->procs_reaped++;
                tcpsm_log(TCPSM_LOG_INFO, "process %d left the stack without closing: its "
                          "sockets are released, those only it held reset", pid);
            }
            forget_proc(i, true);
        }
    }
}

/* Other processes that keep the stack alive: those that drive it (their
 * threads run), hold sockets, or are being forked. A process that only
 * attached (a wrapper such as timeout(1) around the real program, a shell)
 * does not count: it never runs the core. */
/* The slots that may be in use (procs_hi; a value no process wrote, as
 * in a region a dying holder left, means all of them). */
static int procs_hi(void)
{
    int hi = atomic_load(&rt.sh->procs_hi);
    return hi > 0 && hi <= RT_MAX_PROCS ? hi : RT_MAX_PROCS;
}

int rt_live_others(void)
{
    int n = 0;
    for (int i = 0, hi = procs_hi(); i < hi; i++) {
        struct rt_proc *p = &rt.sh->procs[i];
        int pid = atomic_load(&p->pid);
        n += i != rt.me && pid != 0 && !p->left && (pid < 0 || p->driving || p->nheld > 0);
    }
    /* A socket in flight to another process (SCM_RIGHTS) keeps the stack
     * alive for its receiver. */
    return n + (rt.sh->npasses > 0);
}

bool rt_others_attached(void)
{
    for (int i = 0, hi = procs_hi(); i < hi; i++)
        if (i != rt.me && atomic_load(&rt.sh->procs[i].pid) != 0)
            return true;
    return false;
}

void rt_leave(void)
{
    if (rt.me < 0)
        return;
    /* Threads of this process may still be inside blocking calls as it
     * ends: their waiters stay until some other process sees the process
     * gone (rt_reap); only the poller list lets go of them now. */
    struct rt_proc *p = &rt.sh->procs[rt.me];
    forget_held(rt.me, false);
    bool blocked = false;
    for (struct rt_waiter *w = p->waiters; w; w = w->w_next) {
        rt_poller_del(w);
        blocked = blocked || w->bq.rs || w->nwatch;
    }
    rt_ep_orphan_proc(rt.me);
    p->driving = false;
    if (blocked)
        p->left = true;
    else
        forget_proc(rt.me, false);      /* the slot is free at once */
    /* Their service threads may sleep to a deadline this process's thread
     * was the one to watch. */
    for (int i = 0; i < RT_MAX_PROCS; i++)
        if (atomic_load(&rt.sh->procs[i].pid) > 0)
            rt_kick(i);
    rt.me = -1;
}

/* ------------------------------------------------------------ posix_spawn
 *
 * glibc's posix_spawn clones its child (CLONE_VM|CLONE_VFORK) without
 * running fork handlers, and the child execs at once. Its slot is made here
 * as fork's is (holding every socket the parent holds, from this moment),
 * and the lock is kept across the spawn: the exec'd image's constructor
 * attaches under the lock, so it finds its slot by pid only once the parent,
 * back from posix_spawn (the kernel resumes a vfork parent when the child
 * has exec'd), has written the pid in. Epoll instances are not inherited
 * (an exec'd image does not keep them, as after exec). */

int tcpsm_rt_spawn_begin(void)
{
    if (!rt.reg || rt.me < 0)
        return -1;
    rt_lock();
    if (rt.me < 0 || rt.down || rt.sh->procs[rt.me].nheld == 0) {
        rt_unlock();
        return -1;              /* nothing to inherit: the child attaches as a new process */
    }
    int c = slot_take(-1);
    if (c < 0) {
        rt_reap();              /* as fork does */
        c = slot_take(-1);
    }
    if (c < 0) {
        rt_unlock();
        tcpsm_log(TCPSM_LOG_WARN, "posix_spawn: %d processes on the stack already: the child "
                  "gets no stack sockets", RT_MAX_PROCS);
        return -1;
    }
    struct rt_proc *p = &rt.sh->procs[rt.me], *cp = &rt.sh->procs[c];
    memcpy(cp->held, p->held, sizeof(cp->held));
    cp->nheld = p->nheld;
    for (uint32_t w = 0; w < RT_MAX_IDS / 64; w++) {
        for (uint64_t bits = p->held[w]; bits; bits &= bits - 1) {
            struct rt_sock *rs = rt.sh->socks[w * 64 + (uint32_t)__builtin_ctzll(bits)];
            if (rs)
                rs->users++;
        }
    }
    rt_svc_reap_soon();
    return c;                   /* still locked */
}

void tcpsm_rt_spawn_end(int slot, int pid)
{
    if (slot < 0)
        return;
    if (pid > 0)
        atomic_store(&rt.sh->procs[slot].pid, pid);
    else
        forget_proc(slot, false);       /* no child: its references go (none was the last) */
    rt_unlock();
}

/* ------------------------------------------------------------ fork */

/* fork() waits while the control thread writes the stats file (its
 * callocs and formatting, outside the stack lock): a child must not inherit
 * the allocator's lock held by a thread it does not have. glibc's malloc
 * takes its locks around fork; ASan's allocator on this toolchain does not:
 * the child then hung in its own allocations (test_epoll_fork under SAN=1,
 * at exit in LSan's LockAllocator). Taken before the stack lock (the
 * control thread takes the stack lock inside it). */
static pthread_mutex_t fork_gate = PTHREAD_MUTEX_INITIALIZER;

void rt_fork_gate_enter(void)
{
    pthread_mutex_lock(&fork_gate);
}

void rt_fork_gate_leave(void)
{
    pthread_mutex_unlock(&fork_gate);
}

static void before_fork(void)
{
    pthread_mutex_lock(&fork_gate);
    rt_lock();
    /* the child's sends would not send the parent's waiting frames first */
    netdev_packet_defer_send(&rt.np);
    rt.fork_slot = -1;
    if (rt.me < 0 || rt.down)
        return;
    int c = slot_take(-1);
    if (c < 0) {
        /* Children that ended without leaving (_exit) keep their slots until
         * the once-a-second check: a server forking faster than that looks
         * for them now. */
        rt_reap();
        c = slot_take(-1);
    }
    if (c < 0) {
        tcpsm_log(TCPSM_LOG_WARN, "fork: %d processes on the stack already: the child gets "
                  "no stack sockets", RT_MAX_PROCS);
        return;
    }
    /* The child holds everything the parent holds, from this moment. */
    struct rt_proc *p = &rt.sh->procs[rt.me], *cp = &rt.sh->procs[c];
    memcpy(cp->held, p->held, sizeof(cp->held));
    cp->nheld = p->nheld;
    cp->link = p->link;         /* the same socket, inherited */
    for (uint32_t w = 0; w < RT_MAX_IDS / 64; w++) {
        for (uint64_t bits = p->held[w]; bits; bits &= bits - 1) {
            struct rt_sock *rs = rt.sh->socks[w * 64 + (uint32_t)__builtin_ctzll(bits)];
            if (rs)
                rs->users++;
        }
    }
    rt_ep_fork(rt.me, c);       /* and every epoll instance (its copy of the fd) */
    rt.fork_slot = c;
    rt_svc_reap_soon();         /* the child may end without leaving (_exit, exec) */
}

static void after_fork_parent(void)
{
    rt_unlock();
    pthread_mutex_unlock(&fork_gate);
}

static void after_fork_child(void);

void rt_atfork_install(void)
{
    static bool installed;
    if (!installed)
        pthread_atfork(before_fork, after_fork_parent, after_fork_child);
    installed = true;
}

/* The child: the parent still holds the stack lock (its after-fork handler
 * releases it); this process has none of the stack's threads and none of
 * the parent's other threads' waiters. */
static void after_fork_child(void)
{
    pthread_mutex_init(&fork_gate, NULL);       /* held by the parent's forking thread */
    atomic_store_explicit(&rt.owner, 0, memory_order_relaxed);
    rt_t_hold--;                /* the lock itself is the parent's to release */
    netdev_packet_defer_fork_child();   /* the parent's frames stay the parent's */
    int parent = rt.me;
    rt.me = rt.fork_slot;
    if (rt.me < 0)
        return;
    atomic_store(&rt.sh->procs[rt.me].pid, (int)getpid());
    rt_fork_child_reset(parent);
    rt_link_fork_child();
}
