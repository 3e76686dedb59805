/* fd -> socket object (and fd -> epoll object) tables, socket object
 * lifetime, and the UNDECIDED -> STACK / KERNEL transitions.
 *
 * Lookups are lock-free on the common path (an empty slot: not ours); a
 * hit takes the table lock only to take a reference safely against a
 * concurrent close. */
#include "shim.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "runtime_log.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

int shim_nslots;
_Atomic(uintptr_t) *shim_fds;

/* Guards taking a reference against a concurrent release, and the whole
 * table at fork. First in the lock order: never taken while another shim
 * lock is held (shim.h, "fork"). */
static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;

/* A signal handler that interrupts this thread inside table_mu and looks
 * up, dups or closes an fd would deadlock: handlers wait until it is
 * released (tcpsm_sig_hold, stack/runtime/runtime_signal.c). */
static void table_lock(void)
{
    tcpsm_sig_hold();
    pthread_mutex_lock(&table_mu);
}

static void table_unlock(void)
{
    pthread_mutex_unlock(&table_mu);
    tcpsm_sig_release();
}
/* One past the highest fd ever installed: bounds the walk at fork. */
static atomic_int fd_hwm;

int shim_fdtable_init(void)
{
    struct rlimit rl;
    rlim_t n = 65536;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_max != RLIM_INFINITY)
        n = rl.rlim_max;
    if (n > SHIM_MAX_FDS)
        n = SHIM_MAX_FDS;
    if (n < 1024)
        n = 1024;
    /* An anonymous mapping: zeroed, and only the pages touched cost memory. */
    void *a = mmap(NULL, n * sizeof(*shim_fds), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED)
        return -1;
    shim_fds = a;
#ifdef __SANITIZE_ADDRESS__
    /* LeakSanitizer does not scan mmap'd memory: without this, every socket or epoll object
     * of an fd still open at exit (legitimately: the kernel closes it) reads as a leak. */
    __lsan_register_root_region(a, n * sizeof(*shim_fds));
#endif
    shim_nslots = (int)n;
    return 0;
}

static struct shim_sock *slot_sock(uintptr_t v)
{
    return (v & SHIM_FD_EP) ? NULL : (struct shim_sock *)v;
}

static struct shim_ep *slot_ep(uintptr_t v)
{
    return (v & SHIM_FD_EP) ? (struct shim_ep *)(v & ~(uintptr_t)SHIM_FD_EP) : NULL;
}

struct shim_sock *shim_sock_get_slow(int fd)
{
    table_lock();
    struct shim_sock *s = slot_sock(atomic_load(&shim_fds[fd]));
    if (s)
        atomic_fetch_add(&s->refs, 1);
    table_unlock();
    if (s)
        shim_inflight_sock(s);  /* a call's reference: see inflight.c */
    return s;
}

struct shim_sock *shim_stack_lookup(int fd)
{
    struct shim_sock *s = shim_lookup(fd);
    if (s && shim_state(s) != SHIM_STACK) {
        shim_sock_put(s);
        return NULL;
    }
    return s;
}

struct shim_sock *shim_sock_new(void)
{
    struct shim_sock *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    atomic_init(&s->refs, 1);
    atomic_init(&s->fd_refs, 0);
    pthread_mutex_init(&s->mu, NULL);
    atomic_init(&s->state, SHIM_UNDECIDED);
    atomic_init(&s->rcvtimeo_ns, -1);
    atomic_init(&s->sndtimeo_ns, -1);
    s->family = AF_INET;
    s->pmtudisc = 1;            /* IP_PMTUDISC_WANT, Linux's default */
    s->fork_gen = atomic_load_explicit(&shim_fork_gen, memory_order_relaxed);
    return s;
}

_Atomic unsigned shim_fork_gen;

void shim_sock_put(struct shim_sock *s)
{
    shim_inflight_sock_done(s);
    shim_sock_unref(s);
}

void shim_sock_unref(struct shim_sock *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    if (s->sk)
        tcpsm_close(s->sk);     /* this process's reference (fork: others may hold it) */
    shim_ph_undec_done(s);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void fd_unref(struct shim_sock *s)
{
    if (atomic_fetch_sub(&s->fd_refs, 1) == 1)
        shim_epoll_forget(s);
    shim_sock_unref(s);
}

/* Drops what a slot held (outside table_mu). */
static void slot_drop(uintptr_t v)
{
    struct shim_sock *s = slot_sock(v);
    struct shim_ep *ep = slot_ep(v);
    if (s)
        fd_unref(s);
    if (ep)
        shim_ep_unref(ep);
}

static void hwm_raise(int fd)
{
    int h = atomic_load_explicit(&fd_hwm, memory_order_relaxed);
    while (fd >= h && !atomic_compare_exchange_weak(&fd_hwm, &h, fd + 1))
        ;
}

/* Stores v into fd's slot; returns what it held. */
static uintptr_t slot_swap(int fd, uintptr_t v)
{
    if (v)
        hwm_raise(fd);
    table_lock();
    uintptr_t old = atomic_exchange(&shim_fds[fd], v);
    table_unlock();
    return old;
}

/* ------------------------------------------------------------ vfork-like children
 *
 * A child made by clone(CLONE_VM|CLONE_VFORK) runs in the parent's memory,
 * with its own copy of the fd table: what it closes or dups before exec
 * must not change the parent's fd table. The clone wrapper (fd_calls.c)
 * reserves a slot here before the call, the child writes its thread id into
 * it first thing, and the parent (suspended until the child execs or exits)
 * frees it after. While any is reserved, table changes ask whether the
 * caller is such a child (one gettid system call); otherwise one load. */
#define VM_SLOTS 8
static _Atomic pid_t vm_tid[VM_SLOTS];  /* 0 free, -1 reserved, > 0 the child's tid */
_Atomic int shim_vm_children;

int shim_vm_child_reserve(void)
{
    for (int i = 0; i < VM_SLOTS; i++) {
        pid_t z = 0;
        if (atomic_compare_exchange_strong(&vm_tid[i], &z, -1)) {
            atomic_fetch_add(&shim_vm_children, 1);
            return i;
        }
    }
    return -1;
}

void shim_vm_child_enter(int slot)
{
    atomic_store(&vm_tid[slot], (pid_t)syscall(SYS_gettid));
}

void shim_vm_child_done(int slot)
{
    atomic_store(&vm_tid[slot], 0);
    atomic_fetch_sub(&shim_vm_children, 1);
}

bool shim_vm_child_slow(void)
{
    pid_t me = (pid_t)syscall(SYS_gettid);
    for (int i = 0; i < VM_SLOTS; i++)
        if (atomic_load(&vm_tid[i]) == me)
            return true;
    return false;
}

void shim_fd_install(int fd, struct shim_sock *s)
{
    if ((unsigned)fd >= (unsigned)shim_nslots || shim_vm_child())
        return;
    atomic_fetch_add(&s->fd_refs, 1);
    atomic_fetch_add(&s->refs, 1);
    slot_drop(slot_swap(fd, (uintptr_t)s));
}

void shim_fd_install_ep(int epfd, struct shim_ep *ep)
{
    if ((unsigned)epfd >= (unsigned)shim_nslots || shim_vm_child()) {
        shim_ep_unref(ep);
        return;
    }
    slot_drop(slot_swap(epfd, (uintptr_t)ep | SHIM_FD_EP));
}

void shim_fd_release(int fd)
{
    /* A close after a siglongjmp out of a call on this fd: that call's
     * reference goes first, so this close is the last and ends the socket. */
    shim_inflight_check();
    if ((unsigned)fd >= (unsigned)shim_nslots ||
        !atomic_load_explicit(&shim_fds[fd], memory_order_relaxed) || shim_vm_child())
        return;
    slot_drop(slot_swap(fd, 0));
}

void shim_fd_clone(int oldfd, int newfd)
{
    if ((unsigned)oldfd >= (unsigned)shim_nslots || (unsigned)newfd >= (unsigned)shim_nslots ||
        shim_vm_child())
        return;
    if (!atomic_load_explicit(&shim_fds[oldfd], memory_order_relaxed)) {
        shim_fd_fresh(newfd);   /* a kernel fd: newfd is one too */
        return;
    }
    hwm_raise(newfd);
    table_lock();
    uintptr_t v = atomic_load(&shim_fds[oldfd]);
    struct shim_sock *s = slot_sock(v);
    struct shim_ep *ep = slot_ep(v);
    if (s) {
        atomic_fetch_add(&s->fd_refs, 1);
        atomic_fetch_add(&s->refs, 1);
    }
    if (ep)
        shim_ep_ref(ep);        /* ep_mu under table_mu: see shim_atfork_prepare */
    uintptr_t old = atomic_exchange(&shim_fds[newfd], v);
    table_unlock();
    slot_drop(old);
}

void shim_fd_each_sock(void (*fn)(int fd, struct shim_sock *s, void *arg), void *arg)
{
    table_lock();
    int n = atomic_load(&fd_hwm);
    for (int fd = 0; fd < n; fd++) {
        struct shim_sock *s = slot_sock(atomic_load_explicit(&shim_fds[fd], memory_order_relaxed));
        if (s)
            fn(fd, s, arg);
    }
    table_unlock();
}

/* Socket state changes (shim_sock_lock) hold this for reading; fork holds
 * it for writing, so no socket's mu is held by another thread when the
 * process is copied: one lock, not one per socket (locking each socket's
 * mu at fork wrote to every socket object, and the parent then took a
 * copy-on-write fault on every page of them as it unlocked). Writers first:
 * a stream of setsockopt calls does not hold fork off. */
static pthread_rwlock_t fork_rw = PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;

void shim_sock_lock(struct shim_sock *s)
{
    tcpsm_sig_hold();           /* a handler's setsockopt would wait for this thread */
    pthread_rwlock_rdlock(&fork_rw);
    pthread_mutex_lock(&s->mu);
}

void shim_sock_unlock(struct shim_sock *s)
{
    pthread_mutex_unlock(&s->mu);
    pthread_rwlock_unlock(&fork_rw);
    tcpsm_sig_release();
}

/* fork: see shim.h for the order. */
void shim_atfork_prepare(void)
{
    shim_ph_atfork_prepare();   /* before the table lock: ph_mu comes first */
    table_lock();
    pthread_rwlock_wrlock(&fork_rw);
    shim_epoll_atfork_prepare();
}

void shim_atfork_parent(void)
{
    atomic_fetch_add(&shim_fork_gen, 1);        /* the child may set an owner on a shared placeholder */
    shim_epoll_atfork_parent();
    pthread_rwlock_unlock(&fork_rw);
    table_unlock();
    shim_ph_atfork_parent();
}

void shim_atfork_child(void)
{
    atomic_fetch_add(&shim_fork_gen, 1);
    shim_epoll_atfork_child();
    /* Held by the thread that forked, which has another tid in the child:
     * glibc would not know it as the writer. Made anew instead. */
    fork_rw = (pthread_rwlock_t)PTHREAD_RWLOCK_WRITER_NONRECURSIVE_INITIALIZER_NP;
    table_unlock();
    shim_ph_atfork_child();
}

int shim_make_stack(struct shim_sock *s, int fd)
{
    struct tcpsm_sock *sk;
    int r = tcpsm_socket(&sk);
    if (r < 0)
        return r;
    /* A shared placeholder is identified when it gets one of its own
     * (exec, SCM_RIGHTS): placeholder.c. */
    bool shared = atomic_load(&s->shared_ph);
    if (!shared)
        tcpsm_placeholder(sk, fd);
    for (int o = 0; o < SHIM_NOPTS; o++) {
        if (!(s->opt_set & (1u << o)))
            continue;
        int e = tcpsm_setopt(sk, (enum tcpsm_opt)o, s->opt_val[o]);
        if (e < 0)
            tcpsm_log(TCPSM_LOG_DEBUG, "option %d=%d not taken by the stack: errno %d", o,
                      s->opt_val[o], -e);
    }
    /* F_SETOWN, F_SETSIG and O_ASYNC set before it was the stack's went to
     * the placeholder: the stack socket signals from now on. */
    /* (never on the client template: those calls give the socket its own) */
    if (!shared && (atomic_load(&s->async_set) ||
                    s->fork_gen != atomic_load_explicit(&shim_fork_gen, memory_order_relaxed))) {
        struct f_owner_ex own = { 0 };
        if (REAL(fcntl)(fd, F_GETOWN_EX, &own) == 0 && own.pid)
            tcpsm_set_owner(sk, own.type, own.pid);
        int fl = REAL(fcntl)(fd, F_GETFL), sig = REAL(fcntl)(fd, F_GETSIG);
        if ((fl > 0 && (fl & O_ASYNC)) || sig > 0)
            tcpsm_set_async(sk, fl > 0 && (fl & O_ASYNC), sig > 0 ? sig : 0, fd);
    }
    s->sk = sk;
    atomic_store_explicit(&s->state, SHIM_STACK, memory_order_release);
    shim_ph_undec_done(s);      /* shared as an accepted socket's from now on */
    shim_epoll_attach(s);
    return 0;
}

void shim_handover(struct shim_sock *s)
{
    if (atomic_load(&s->ph_undec))     /* callers give it its own first (shim_ph_own) */
        tcpsm_log(TCPSM_LOG_WARN, "hand-over of a socket on the shared placeholder");
    atomic_store_explicit(&s->state, SHIM_KERNEL, memory_order_release);
    shim_epoll_handover(s);
}

int shim_stack_setopt(struct shim_sock *s, enum tcpsm_opt opt, int val)
{
    if (s->sk)
        return tcpsm_setopt(s->sk, opt, val);
    s->opt_set |= 1u << opt;
    s->opt_val[opt] = val;
    return 0;
}

unsigned shim_stack_poll(struct shim_sock *s)
{
    unsigned m = tcpsm_poll(s->sk);
    if (m & POLLIN)
        m |= POLLRDNORM;
    if (m & POLLOUT)
        m |= POLLWRNORM;
    return m;
}

unsigned shim_sock_poll(struct shim_sock *s, int fd)
{
    if (shim_state(s) == SHIM_STACK)
        return shim_stack_poll(s);
    struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT | POLLRDHUP | POLLPRI };
    if (REAL(poll)(&p, 1, 0) <= 0)
        return 0;
    return (unsigned)(unsigned short)p.revents;
}

int64_t shim_tv_to_ns(const struct timeval *tv)
{
    if (tv->tv_sec == 0 && tv->tv_usec == 0)
        return -1;      /* zero means "no timeout" for SO_RCVTIMEO/SO_SNDTIMEO */
    if (tv->tv_sec < 0)
        return 0;       /* Linux: a negative timeout returns at once */
    if (tv->tv_sec > INT64_MAX / 1000000000 - 1)
        return -1;
    return (int64_t)tv->tv_sec * 1000000000 + (int64_t)tv->tv_usec * 1000;
}
