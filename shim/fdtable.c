/* fd -> socket object (and fd -> epoll object) tables, socket object
 * lifetime, and the UNDECIDED -> STACK / KERNEL transitions.
 *
 * Lookups are lock-free on the common path (an empty slot: not ours); a
 * hit takes the table lock only to take a reference safely against a
 * concurrent close. */
#include "shim.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <sys/resource.h>

#include "runtime_log.h"

#ifdef __SANITIZE_ADDRESS__
#include <sanitizer/lsan_interface.h>
#endif

int shim_nslots;
_Atomic(struct shim_sock *) *shim_socks;
_Atomic(struct shim_ep *) *shim_eps;

static pthread_mutex_t table_mu = PTHREAD_MUTEX_INITIALIZER;

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
    /* Anonymous mappings: zeroed, and only the pages touched cost memory. */
    void *a = mmap(NULL, n * sizeof(*shim_socks), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    void *b = mmap(NULL, n * sizeof(*shim_eps), PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (a == MAP_FAILED || b == MAP_FAILED)
        return -1;
    shim_socks = a;
    shim_eps = b;
    shim_nslots = (int)n;
#ifdef __SANITIZE_ADDRESS__
    /* LeakSanitizer does not scan mmap'd memory: without this, every socket or epoll object
     * of an fd still open at exit (legitimately: the kernel closes it) reads as a leak. */
    __lsan_register_root_region(a, n * sizeof(*shim_socks));
    __lsan_register_root_region(b, n * sizeof(*shim_eps));
#endif
    return 0;
}

struct shim_sock *shim_sock_get_slow(int fd)
{
    pthread_mutex_lock(&table_mu);
    struct shim_sock *s = atomic_load(&shim_socks[fd]);
    if (s)
        atomic_fetch_add(&s->refs, 1);
    pthread_mutex_unlock(&table_mu);
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
    return s;
}

void shim_sock_put(struct shim_sock *s)
{
    if (atomic_fetch_sub(&s->refs, 1) != 1)
        return;
    if (s->sk)
        tcpsm_close(s->sk);     /* in a forked child the runtime only forgets it */
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static void fd_unref(struct shim_sock *s)
{
    if (atomic_fetch_sub(&s->fd_refs, 1) == 1)
        shim_epoll_forget(s);
    shim_sock_put(s);
}

void shim_fd_install(int fd, struct shim_sock *s)
{
    if (fd < 0 || fd >= shim_nslots)
        return;
    atomic_fetch_add(&s->fd_refs, 1);
    atomic_fetch_add(&s->refs, 1);
    pthread_mutex_lock(&table_mu);
    struct shim_sock *old = atomic_exchange(&shim_socks[fd], s);
    struct shim_ep *oldep = atomic_exchange(&shim_eps[fd], NULL);
    pthread_mutex_unlock(&table_mu);
    if (old)
        fd_unref(old);
    if (oldep)
        shim_ep_unref(oldep);
}

void shim_fd_release(int fd)
{
    if (fd < 0 || fd >= shim_nslots)
        return;
    if (!atomic_load_explicit(&shim_socks[fd], memory_order_relaxed) &&
        !atomic_load_explicit(&shim_eps[fd], memory_order_relaxed))
        return;
    pthread_mutex_lock(&table_mu);
    struct shim_sock *old = atomic_exchange(&shim_socks[fd], NULL);
    struct shim_ep *oldep = atomic_exchange(&shim_eps[fd], NULL);
    pthread_mutex_unlock(&table_mu);
    if (old)
        fd_unref(old);
    if (oldep)
        shim_ep_unref(oldep);
}

void shim_fd_clone(int oldfd, int newfd)
{
    if (oldfd < 0 || oldfd >= shim_nslots || newfd < 0 || newfd >= shim_nslots)
        return;
    pthread_mutex_lock(&table_mu);
    struct shim_sock *s = atomic_load(&shim_socks[oldfd]);
    struct shim_ep *ep = atomic_load(&shim_eps[oldfd]);
    if (s) {
        atomic_fetch_add(&s->fd_refs, 1);
        atomic_fetch_add(&s->refs, 1);
    }
    if (ep)
        shim_ep_ref(ep);
    struct shim_sock *old = atomic_exchange(&shim_socks[newfd], s);
    struct shim_ep *oldep = atomic_exchange(&shim_eps[newfd], ep);
    pthread_mutex_unlock(&table_mu);
    if (old)
        fd_unref(old);
    if (oldep)
        shim_ep_unref(oldep);
}

int shim_make_stack(struct shim_sock *s)
{
    struct tcpsm_sock *sk;
    if (atomic_load(&shim_forked)) {    /* no stack in a forked child: the kernel's */
        shim_handover(s);
        return 0;
    }
    int r = tcpsm_socket(&sk);
    if (r < 0)
        return r;
    for (int o = 0; o < SHIM_NOPTS; o++) {
        if (!(s->opt_set & (1u << o)))
            continue;
        int e = tcpsm_setopt(sk, (enum tcpsm_opt)o, s->opt_val[o]);
        if (e < 0)
            tcpsm_log(TCPSM_LOG_DEBUG, "option %d=%d not taken by the stack: errno %d", o,
                      s->opt_val[o], -e);
    }
    s->sk = sk;
    atomic_store_explicit(&s->state, SHIM_STACK, memory_order_release);
    shim_epoll_attach(s);
    return 0;
}

void shim_handover(struct shim_sock *s)
{
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
