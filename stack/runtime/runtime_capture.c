/* Live capture (`tcpsm capture`): every frame the stack sends and receives
 * goes, as one pcap record (pcap_writer.h's header + the frame, truncated to
 * the snap length), to each attached client as one SOCK_SEQPACKET message.
 * The tap runs on whichever thread moves the frame, with or without rt.lock,
 * so the clients have their own small lock; with none attached the cost is
 * one atomic load. A message is sent whole or not at all (MSG_DONTWAIT): a
 * slow reader loses frames, counted, and never slows the stack. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "pcap_writer.h"
#include "runtime.h"
#include "runtime_ops.h"

/* A capture message carries at most this much of a frame: a 64 KiB GSO
 * frame fits; the socket buffer holds a few of them. */
#define CAP_SNAP 65600u

static pthread_mutex_t cap_lock = PTHREAD_MUTEX_INITIALIZER;
static int cap_fd[RT_CAPTURE_CLIENTS] = { -1, -1, -1, -1 };
static bool cap_dead[RT_CAPTURE_CLIENTS];
static _Atomic unsigned cap_n;
static uint64_t cap_frames, cap_dropped;

bool rt_capture_active(void)
{
    return atomic_load_explicit(&cap_n, memory_order_relaxed) != 0;
}

void rt_capture_frame(const uint8_t *data, uint32_t len)
{
    if (atomic_load_explicit(&cap_n, memory_order_relaxed) == 0)
        return;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint32_t caplen = len < CAP_SNAP ? len : CAP_SNAP;
    uint8_t hdr[PCAP_REC_HDR_LEN];
    pcap_record_header(hdr, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, caplen, len);
    struct iovec iov[2] = { { hdr, sizeof(hdr) }, { (void *)data, caplen } };
    struct msghdr mh = { .msg_iov = iov, .msg_iovlen = 2 };
    pthread_mutex_lock(&cap_lock);
    for (unsigned i = 0; i < RT_CAPTURE_CLIENTS; i++) {
        if (cap_fd[i] < 0 || cap_dead[i])
            continue;
        long r = syscall(SYS_sendmsg, cap_fd[i], &mh, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (r >= 0)
            cap_frames++;
        else if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
            cap_dropped++;
        else
            cap_dead[i] = true;         /* closed by the reader: the control thread reaps it */
    }
    pthread_mutex_unlock(&cap_lock);
}

bool rt_capture_add(int fd)
{
    pthread_mutex_lock(&cap_lock);
    for (unsigned i = 0; i < RT_CAPTURE_CLIENTS; i++) {
        if (cap_fd[i] < 0) {
            cap_fd[i] = fd;
            cap_dead[i] = false;
            atomic_fetch_add(&cap_n, 1);
            pthread_mutex_unlock(&cap_lock);
            return true;
        }
    }
    pthread_mutex_unlock(&cap_lock);
    return false;
}

static void drop_locked(unsigned i)
{
    rt_fd_disown(cap_fd[i]);
    syscall(SYS_close, cap_fd[i]);
    cap_fd[i] = -1;
    cap_dead[i] = false;
    atomic_fetch_sub(&cap_n, 1);
}

void rt_capture_reap(void)
{
    pthread_mutex_lock(&cap_lock);
    for (unsigned i = 0; i < RT_CAPTURE_CLIENTS; i++) {
        if (cap_fd[i] < 0)
            continue;
        /* A reader that closed its end: the socket reads as end of file. */
        char c;
        long r = syscall(SYS_recvfrom, cap_fd[i], &c, 1, MSG_DONTWAIT, NULL, NULL);
        if (cap_dead[i] || r == 0 || (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
            drop_locked(i);
    }
    pthread_mutex_unlock(&cap_lock);
}

unsigned rt_capture_slots(void)
{
    return RT_CAPTURE_CLIENTS - atomic_load(&cap_n);
}

void rt_capture_counts(unsigned *clients, uint64_t *frames, uint64_t *dropped)
{
    pthread_mutex_lock(&cap_lock);
    *clients = atomic_load(&cap_n);
    *frames = cap_frames;
    *dropped = cap_dropped;
    pthread_mutex_unlock(&cap_lock);
}

unsigned rt_capture_fds(int *fds, unsigned max)
{
    unsigned n = 0;
    pthread_mutex_lock(&cap_lock);
    for (unsigned i = 0; i < RT_CAPTURE_CLIENTS && n < max; i++)
        if (cap_fd[i] >= 0)
            fds[n++] = cap_fd[i];
    pthread_mutex_unlock(&cap_lock);
    return n;
}

void rt_capture_close_all(void)
{
    pthread_mutex_lock(&cap_lock);
    for (unsigned i = 0; i < RT_CAPTURE_CLIENTS; i++)
        if (cap_fd[i] >= 0)
            drop_locked(i);
    pthread_mutex_unlock(&cap_lock);
}
