/* Stack sockets across exec.
 *
 * Every stack socket has a placeholder: a kernel socket on the same fd
 * number (the shim's), which exec treats like any descriptor: kept without
 * close-on-exec, closed with it. The runtime keeps each placeholder's
 * identity (st_dev, st_ino) with its socket (tcpsm_placeholder). A process
 * that execs keeps its slot in the shared region (same pid) and with it the
 * sockets its previous image held; the new image attaches (rt_attach), the
 * shim walks its fds and claims each socket whose placeholder it still has
 * (tcpsm_rt_exec_claim: the fd becomes that stack socket again), and every
 * socket held before exec that no fd claimed is released
 * (tcpsm_rt_exec_end), as the kernel closes close-on-exec descriptors: the
 * last reference anywhere ends the connection (FIN, or RST with unread
 * data). systemd's LISTEN_FDS, inetd and socat's EXEC rely on the first
 * half; every fork-then-exec child (a shell's, socat's) on the second. */
#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "runtime.h"

void tcpsm_placeholder(struct tcpsm_sock *sk, int fd)
{
    struct stat st;
    if (sk && fstat(fd, &st) == 0)
        tcpsm_placeholder_id(sk, (uint64_t)st.st_dev, (uint64_t)st.st_ino);
}

void tcpsm_placeholder_id(struct tcpsm_sock *sk, uint64_t dev, uint64_t ino)
{
    if (!sk)
        return;
    rt_lock();
    struct rt_sock *rs = rt.me >= 0 && !rt.down ? tcpsm_sock_user(sk) : NULL;
    if (rs) {
        rs->ph_dev = dev;
        rs->ph_ino = ino;
    }
    rt_unlock();
}

bool tcpsm_rt_exec_pending(void)
{
    return rt.exec_claimed != NULL;
}

struct tcpsm_sock *tcpsm_rt_exec_claim(uint64_t dev, uint64_t ino)
{
    if (!rt.exec_claimed || ino == 0)
        return NULL;
    struct tcpsm_sock *sk = NULL;
    rt_lock();
    if (rt.me >= 0 && !rt.down) {
        const uint64_t *held = rt.sh->procs[rt.me].held;
        for (uint32_t w = 0; w < RT_MAX_IDS / 64 && !sk; w++) {
            for (uint64_t b = held[w]; b; b &= b - 1) {
                uint32_t id = w * 64 + (uint32_t)__builtin_ctzll(b);
                struct rt_sock *rs = rt.sh->socks[id];
                if (rs && rs->sk && rs->ph_ino == ino && rs->ph_dev == dev) {
                    rt.exec_claimed[w] |= 1ull << (id % 64);
                    sk = rs->sk;
                    break;
                }
            }
        }
    }
    rt_unlock();
    return sk;
}

void tcpsm_rt_exec_end(void)
{
    if (!rt.exec_claimed)
        return;
    rt_lock();
    if (rt.me >= 0 && !rt.down) {
        uint64_t *held = rt.sh->procs[rt.me].held;
        /* A socket this process is the last to hold ends here: its FIN or
         * RST goes out through this process's link (sent unbound it would
         * wait for a retransmission), so the link starts. Only then: a
         * process that merely drops references others keep (socat's
         * EXEC child) starts no threads, which a SIGTERM could kill
         * inside the stack lock. */
        bool last = false;
        for (uint32_t w = 0; w < RT_MAX_IDS / 64 && !last; w++) {
            for (uint64_t b = held[w] & ~rt.exec_claimed[w]; b && !last; b &= b - 1) {
                struct rt_sock *rs = rt.sh->socks[w * 64 + (uint32_t)__builtin_ctzll(b)];
                last = rs && rs->users <= 1;
            }
        }
        if (last)
            (void)rt_start();
        for (uint32_t w = 0; w < RT_MAX_IDS / 64; w++) {
            for (uint64_t b = held[w] & ~rt.exec_claimed[w]; b; b &= b - 1) {
                unsigned bit = (unsigned)__builtin_ctzll(b);
                struct rt_sock *rs = rt.sh->socks[w * 64 + bit];
                if (rs) {
                    rt_release(rs, false);
                } else {                /* an id already gone: only the bit */
                    held[w] &= ~(1ull << bit);
                    rt.sh->procs[rt.me].nheld--;
                }
            }
        }
    }
    free(rt.exec_claimed);
    rt.exec_claimed = NULL;
    rt_unlock();
}
