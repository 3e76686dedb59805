/* The runtime's epoll instances (runtime_epoll.c) over a core stack driven
 * by crafted segments (tcp_harness), with rt_sock_event as its callback:
 * ready lists, edges per event, one-shot, exclusive wake-ups, the eventfd
 * that mirrors the ready list, and items keeping their socket alive. */
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "runtime.h"
#include "tcp_harness.h"

/* Instances, items and waiters live in the shared region: each test (its
 * own process under Criterion) attaches one of its own. */
static void region_attach(void)
{
    snprintf(rt.set.ifname, sizeof(rt.set.ifname), "unite%d", (int)(getpid() % 1000000));
    rt.set.addr = 0xc6120001;
    rt.set.shm_mb = 16;
    char err[256];
    cr_assert_eq(rt_attach(err, sizeof(err)), 0, "%s", err);
}

static void region_detach(void)
{
    shm_region_unlink(rt.reg_name);
}

TestSuite(runtime_epoll, .init = region_attach, .fini = region_detach);

static struct harness *rt_harness(void)
{
    struct tcpsm_config cfg;
    h_default_config(&cfg);
    cfg.sock_event = rt_sock_event;
    return h_new(&cfg);
}

/* From the region, as the runtime allocates them: the last reference's
 * rt_free() returns it there. */
static struct rt_sock *attach(struct tcpsm_sock *sk)
{
    struct rt_sock *rs = rt_alloc(sizeof(*rs));
    cr_assert_not_null(rs);
    rs->sk = sk;
    tcpsm_sock_set_user(sk, rs);
    return rs;
}

static void detach(struct rt_sock *rs)
{
    tcpsm_sock_set_user(rs->sk, NULL);
    rs->sk = NULL;
    cr_assert_eq(rs->refs, 0, "every item and waiter gave its reference back");
    rt_free(rs);
}

/* A kernel peer at port sport completes a handshake with the listener. */
static void peer_connect(struct harness *h, uint16_t sport, uint32_t isn)
{
    SEND(h, .flags = SYN, .seq = isn, .win = H_RWIN, .mss = H_RMSS, .sport = sport);
    struct seg s = EXPECT_SEG(h, .flags = SYN | ACK, .ack = isn + 1, .dport = sport);
    SEND(h, .flags = ACK, .seq = isn + 1, .ack = s.seq + 1, .win = H_RWIN, .sport = sport);
}

static bool efd_readable(struct tcpsm_ep *ep)
{
    struct pollfd p = { .fd = tcpsm_ep_fd(ep), .events = POLLIN };
    return poll(&p, 1, 0) == 1;
}

Test(runtime_epoll, et_listener_reports_each_new_connection)
{
    struct harness *h = rt_harness();
    sock_listen(h);
    struct rt_sock *rs = attach(h->lsk);
    struct tcpsm_ep *ep;
    cr_assert_eq(tcpsm_ep_new(&ep), 0);
    cr_assert_eq(tcpsm_ep_add(ep, h->lsk, 3, EPOLLIN | EPOLLET, 42), 0);
    tcpsm_ep_sleeping(ep, 1);   /* a thread asleep on it: the eventfd must follow the list */
    struct epoll_event ev[4];
    cr_assert_eq(tcpsm_ep_collect(ep, ev, 4), 0, "an idle listener is not ready");
    cr_assert_not(efd_readable(ep));

    peer_connect(h, 40001, 1000);
    cr_assert(efd_readable(ep), "the eventfd follows the ready list");
    cr_assert_eq(tcpsm_ep_collect(ep, ev, 4), 1);
    cr_assert_eq(ev[0].data.u64, 42);
    cr_assert(ev[0].events & EPOLLIN);
    cr_assert_eq(tcpsm_ep_collect(ep, ev, 4), 0, "one edge per event");
    cr_assert_not(efd_readable(ep));

    /* Not accepted: POLLIN stays set, yet a new connection is a new edge (Linux). */
    peer_connect(h, 40002, 2000);
    cr_assert_eq(tcpsm_ep_collect(ep, ev, 4), 1, "second connection, second edge");
    cr_assert_eq(tcpsm_ep_collect(ep, ev, 4), 0);

    tcpsm_ep_sleeping(ep, -1);
    cr_assert_eq(tcpsm_ep_del(ep, h->lsk, 3), 0);
    tcpsm_ep_free(ep);
    detach(rs);
    h_free(h);
}

Test(runtime_epoll, level_triggered_stays_until_drained_and_costs_ready_only)
{
    struct harness *h = rt_harness();
    sock_established(h);
    struct rt_sock *rs = attach(h->sk);
    struct tcpsm_ep *ep;
    cr_assert_eq(tcpsm_ep_new(&ep), 0);
    cr_assert_eq(tcpsm_ep_add(ep, h->sk, 3, EPOLLIN, 7), 0);
    struct epoll_event ev[4];
    cr_assert_eq(tcpsm_ep_collect(ep, ev, 4), 0);

    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "hello",
         .len = 5);
    h->rseq += 5;
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(tcpsm_ep_collect(ep, ev, 4), 1, "level-triggered: ready while data is queued");
        cr_assert_eq(ev[0].events, EPOLLIN, "only the bits asked for, as Linux");
    }
    char buf[8];
    cr_assert_eq(tcpsm_sock_recv(h->sk, buf, sizeof(buf), 0, h->now), 5);
    cr_assert_eq(tcpsm_ep_collect(ep, ev, 4), 0, "drained: dropped from the ready list");
    cr_assert_not(efd_readable(ep));

    cr_assert_eq(tcpsm_ep_del(ep, h->sk, 3), 0);
    tcpsm_ep_free(ep);
    detach(rs);
    h_free(h);
}

Test(runtime_epoll, et_reports_each_arrival_with_the_whole_mask)
{
    struct harness *h = rt_harness();
    sock_established(h);
    struct rt_sock *rs = attach(h->sk);
    struct tcpsm_ep *ep;
    cr_assert_eq(tcpsm_ep_new(&ep), 0);
    cr_assert_eq(tcpsm_ep_add(ep, h->sk, 3, EPOLLIN | EPOLLOUT | EPOLLET, 1), 0);
    struct epoll_event ev[4];
    cr_assert_eq(tcpsm_ep_collect(ep, ev, 4), 1, "writable at ADD: reported once");
    cr_assert_eq(tcpsm_ep_collect(ep, ev, 4), 0);
    for (int i = 0; i < 3; i++) {
        SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "ab",
             .len = 2);
        h->rseq += 2;
        cr_assert_eq(tcpsm_ep_collect(ep, ev, 4), 1, "arrival %d is an edge, not drained", i);
        cr_assert_eq(ev[0].events & (EPOLLIN | EPOLLOUT), EPOLLIN | EPOLLOUT);
        cr_assert_eq(tcpsm_ep_collect(ep, ev, 4), 0);
    }
    cr_assert_eq(tcpsm_ep_del(ep, h->sk, 3), 0);
    tcpsm_ep_free(ep);
    detach(rs);
    h_free(h);
}

Test(runtime_epoll, oneshot_disarms_until_mod)
{
    struct harness *h = rt_harness();
    sock_established(h);
    struct rt_sock *rs = attach(h->sk);
    struct tcpsm_ep *ep;
    cr_assert_eq(tcpsm_ep_new(&ep), 0);
    cr_assert_eq(tcpsm_ep_add(ep, h->sk, 3, EPOLLIN | EPOLLONESHOT, 5), 0);
    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "x", .len = 1);
    h->rseq += 1;
    struct epoll_event ev[4];
    cr_assert_eq(tcpsm_ep_collect(ep, ev, 4), 1);
    cr_assert_eq(tcpsm_ep_collect(ep, ev, 4), 0, "disarmed");
    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "y", .len = 1);
    h->rseq += 1;
    cr_assert_eq(tcpsm_ep_collect(ep, ev, 4), 0, "still disarmed after more data");
    cr_assert_eq(tcpsm_ep_mod(ep, h->sk, 3, EPOLLIN | EPOLLONESHOT, 6), 0);
    cr_assert_eq(tcpsm_ep_collect(ep, ev, 4), 1, "MOD re-arms and re-evaluates");
    cr_assert_eq(ev[0].data.u64, 6);
    cr_assert_eq(tcpsm_ep_del(ep, h->sk, 3), 0);
    tcpsm_ep_free(ep);
    detach(rs);
    h_free(h);
}

Test(runtime_epoll, rdhup_and_several_instances)
{
    struct harness *h = rt_harness();
    sock_established(h);
    struct rt_sock *rs = attach(h->sk);
    struct tcpsm_ep *a, *b;
    cr_assert_eq(tcpsm_ep_new(&a), 0);
    cr_assert_eq(tcpsm_ep_new(&b), 0);
    cr_assert_eq(tcpsm_ep_add(a, h->sk, 3, EPOLLRDHUP | EPOLLET, 1), 0);
    cr_assert_eq(tcpsm_ep_add(b, h->sk, 3, EPOLLIN, 2), 0);
    struct epoll_event ev[4];
    SEND(h, .flags = ACK | FIN, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN);
    h->rseq += 1;
    cr_assert_eq(tcpsm_ep_collect(a, ev, 4), 1, "peer's FIN: EPOLLRDHUP");
    cr_assert_eq(ev[0].events, EPOLLRDHUP);
    cr_assert_eq(tcpsm_ep_collect(b, ev, 4), 1, "and EPOLLIN (EOF) in the other set");
    cr_assert_eq(ev[0].events, EPOLLIN, "only the bits asked for, as Linux");
    cr_assert_eq(tcpsm_ep_del(a, h->sk, 3), 0);
    cr_assert_eq(tcpsm_ep_del(b, h->sk, 3), 0);
    tcpsm_ep_free(a);
    tcpsm_ep_free(b);
    detach(rs);
    h_free(h);
}

/* Nobody sleeps on the instance: an event queues the item but writes no
 * eventfd (the thread collects before it sleeps); a thread that starts to
 * sleep, or one in the kernel's epoll_wait alone, finds it readable. */
Test(runtime_epoll, eventfd_written_only_for_sleepers)
{
    struct harness *h = rt_harness();
    sock_established(h);
    struct rt_sock *rs = attach(h->sk);
    struct tcpsm_ep *ep;
    cr_assert_eq(tcpsm_ep_new(&ep), 0);
    cr_assert_eq(tcpsm_ep_add(ep, h->sk, 3, EPOLLIN | EPOLLET, 7), 0);
    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "x",
         .len = 1);
    h->rseq += 1;
    cr_assert_not(efd_readable(ep), "no sleeper: no write");
    tcpsm_ep_sleeping(ep, 1);
    cr_assert(efd_readable(ep), "a sleeper finds the queued event");
    tcpsm_ep_sleeping(ep, -1);
    struct epoll_event ev[4];
    cr_assert_eq(tcpsm_ep_collect(ep, ev, 4), 1);
    cr_assert_eq(ev[0].data.u64, 7);
    cr_assert_not(efd_readable(ep), "collected: cleared");

    tcpsm_ep_ksleeping(ep, 1);  /* asleep in the kernel's epoll_wait on the real set */
    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "y",
         .len = 1);
    h->rseq += 1;
    cr_assert(efd_readable(ep), "a sleeper in the kernel is woken");
    tcpsm_ep_ksleeping(ep, -1);
    cr_assert_eq(tcpsm_ep_collect(ep, ev, 4), 1);
    cr_assert_not(efd_readable(ep));
    cr_assert_eq(tcpsm_ep_del(ep, h->sk, 3), 0);
    tcpsm_ep_free(ep);
    detach(rs);
    h_free(h);
}

Test(runtime_epoll, exclusive_wakes_one_sleeping_instance)
{
    struct harness *h = rt_harness();
    sock_listen(h);
    struct rt_sock *rs = attach(h->lsk);
    struct tcpsm_ep *a, *b;
    cr_assert_eq(tcpsm_ep_new(&a), 0);
    cr_assert_eq(tcpsm_ep_new(&b), 0);
    cr_assert_eq(tcpsm_ep_add(a, h->lsk, 3, EPOLLIN | EPOLLEXCLUSIVE, 1), 0);
    cr_assert_eq(tcpsm_ep_add(b, h->lsk, 3, EPOLLIN | EPOLLEXCLUSIVE, 2), 0);
    tcpsm_ep_sleeping(a, 1);
    tcpsm_ep_sleeping(b, 1);
    peer_connect(h, 40001, 1000);
    cr_assert_neq(efd_readable(a), efd_readable(b), "exactly one instance woken");
    tcpsm_ep_sleeping(a, -1);
    tcpsm_ep_sleeping(b, -1);
    cr_assert_eq(tcpsm_ep_del(a, h->lsk, 3), 0);
    cr_assert_eq(tcpsm_ep_del(b, h->lsk, 3), 0);
    tcpsm_ep_free(a);
    tcpsm_ep_free(b);
    detach(rs);
    h_free(h);
}

Test(runtime_epoll, item_keeps_a_closed_socket_valid)
{
    struct harness *h = rt_harness();
    sock_established(h);
    struct rt_sock *rs = attach(h->sk);
    struct tcpsm_ep *ep;
    cr_assert_eq(tcpsm_ep_new(&ep), 0);
    cr_assert_eq(tcpsm_ep_add(ep, h->sk, 3, EPOLLIN, 1), 0);
    cr_assert_eq(rs->refs, 1);
    /* The application closes it (as unwrap does): the item still points at rs. */
    tcpsm_sock_set_user(h->sk, NULL);
    rs->sk = NULL;
    struct epoll_event ev[4];
    cr_assert_eq(tcpsm_ep_collect(ep, ev, 4), 0, "a closed socket is never reported");
    cr_assert_eq(tcpsm_ep_add(ep, h->sk, 3, EPOLLIN, 1), -EBADF, "ADD of a closed socket");
    cr_assert_eq(tcpsm_ep_del(ep, h->sk, 3), -EBADF, "DEL through a closed socket");
    tcpsm_ep_free(ep);  /* its item goes, and frees rs: its last reference (ASan checks) */
    h_free(h);
}

/* Items are keyed by (instance, socket, fd) as Linux's by (file, fd): no
 * process keeps a pointer to one (a forked child's records may be stale). */
Test(runtime_epoll, items_keyed_by_socket_and_fd)
{
    struct harness *h = rt_harness();
    sock_established(h);
    struct rt_sock *rs = attach(h->sk);
    struct tcpsm_ep *ep;
    cr_assert_eq(tcpsm_ep_new(&ep), 0);
    cr_assert_eq(tcpsm_ep_mod(ep, h->sk, 3, EPOLLIN, 1), -ENOENT, "MOD before ADD");
    cr_assert_eq(tcpsm_ep_del(ep, h->sk, 3), -ENOENT, "DEL before ADD");
    cr_assert_eq(tcpsm_ep_add(ep, h->sk, 3, EPOLLIN, 1), 0);
    cr_assert_eq(tcpsm_ep_add(ep, h->sk, 3, EPOLLIN, 1), -EEXIST);
    cr_assert_eq(tcpsm_ep_add(ep, h->sk, 4, EPOLLIN, 2), 0, "a dup'd fd is another item");
    cr_assert_eq(rs->refs, 2);
    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "x",
         .len = 1);
    h->rseq += 1;
    struct epoll_event ev[4];
    cr_assert_eq(tcpsm_ep_collect(ep, ev, 4), 2, "both items report");
    cr_assert_eq(tcpsm_ep_mod(ep, h->sk, 4, EPOLLIN, 9), 0);
    cr_assert_eq(tcpsm_ep_del(ep, h->sk, 3), 0);
    cr_assert_eq(tcpsm_ep_del(ep, h->sk, 3), -ENOENT);
    cr_assert_eq(tcpsm_ep_collect(ep, ev, 4), 1);
    cr_assert_eq(ev[0].data.u64, 9, "MOD changed the data of fd 4's item");
    cr_assert_eq(tcpsm_ep_add(ep, h->sk, 5, EPOLLIN | EPOLLEXCLUSIVE, 1), 0);
    cr_assert_eq(tcpsm_ep_mod(ep, h->sk, 5, EPOLLIN, 1), -EINVAL, "no MOD of an exclusive item");
    cr_assert_eq(tcpsm_ep_del(ep, h->sk, 4), 0);
    cr_assert_eq(tcpsm_ep_del(ep, h->sk, 5), 0);
    tcpsm_ep_free(ep);
    detach(rs);
    h_free(h);
}

/* The socket's last reference in any process went (final close): it leaves
 * every instance, as Linux's eventpoll_release at the last fput. */
Test(runtime_epoll, last_reference_removes_items)
{
    struct harness *h = rt_harness();
    sock_established(h);
    struct rt_sock *rs = attach(h->sk);
    struct tcpsm_ep *a, *b;
    cr_assert_eq(tcpsm_ep_new(&a), 0);
    cr_assert_eq(tcpsm_ep_new(&b), 0);
    cr_assert_eq(tcpsm_ep_add(a, h->sk, 3, EPOLLIN, 1), 0);
    cr_assert_eq(tcpsm_ep_add(b, h->sk, 3, EPOLLIN, 2), 0);
    tcpsm_ep_expose(a);         /* watched from elsewhere: the eventfd follows the list */
    SEND(h, .flags = ACK | PSH, .seq = h->rseq, .ack = h->lseq, .win = H_RWIN, .data = "x",
         .len = 1);
    h->rseq += 1;
    cr_assert(efd_readable(a));
    rt_ep_sock_gone(rs);
    cr_assert_null(rs->epitems);
    cr_assert_eq(rs->refs, 0, "the items gave their references back");
    cr_assert_not(efd_readable(a), "a ready list left empty clears the eventfd");
    struct epoll_event ev[4];
    cr_assert_eq(tcpsm_ep_collect(b, ev, 4), 0);
    tcpsm_ep_free(a);
    tcpsm_ep_free(b);
    detach(rs);
    h_free(h);
}
