/* pcap file writer (see pcap_writer.h). Frames are copied into a 256 KiB
 * buffer and written when it fills and at flush/close; a frame larger than
 * the buffer is written directly. Raw system calls: see runtime_log.c. */
#include "pcap_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "runtime_log.h"

#define PCAP_BUF (256u * 1024u)

struct pcap_writer {
    pthread_mutex_t lock;
    int fd;
    size_t len;
    uint8_t buf[PCAP_BUF];
};

static void put32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put16(uint8_t *p, uint16_t v) { memcpy(p, &v, 2); }

void pcap_file_header(uint8_t out[PCAP_FILE_HDR_LEN])
{
    put32(out, 0xa1b2c3d4u);    /* microsecond resolution, native byte order */
    put16(out + 4, 2);          /* version 2.4 */
    put16(out + 6, 4);
    put32(out + 8, 0);          /* thiszone */
    put32(out + 12, 0);         /* sigfigs */
    put32(out + 16, PCAP_SNAPLEN);
    put32(out + 20, PCAP_LINKTYPE_ETHERNET);
}

void pcap_record_header(uint8_t out[PCAP_REC_HDR_LEN], uint64_t realtime_ns, uint32_t caplen,
                        uint32_t origlen)
{
    put32(out, (uint32_t)(realtime_ns / 1000000000u));
    put32(out + 4, (uint32_t)(realtime_ns % 1000000000u / 1000u));
    put32(out + 8, caplen);
    put32(out + 12, origlen);
}

static void flush_locked(struct pcap_writer *w)
{
    if (w->len > 0)
        tcpsm_write_all(w->fd, (const char *)w->buf, w->len);
    w->len = 0;
}

struct pcap_writer *pcap_writer_open(const char *path)
{
    long fd = syscall(SYS_openat, AT_FDCWD, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return NULL;
    struct pcap_writer *w = malloc(sizeof(*w));
    if (!w) {
        syscall(SYS_close, fd);
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&w->lock, NULL);
    w->fd = (int)fd;
    pcap_file_header(w->buf);
    w->len = PCAP_FILE_HDR_LEN;
    return w;
}

void pcap_writer_frame_at(struct pcap_writer *w, uint64_t realtime_ns, const uint8_t *data,
                          uint32_t len)
{
    uint32_t cap = len < PCAP_SNAPLEN ? len : PCAP_SNAPLEN;
    pthread_mutex_lock(&w->lock);
    if (w->len + PCAP_REC_HDR_LEN + cap > PCAP_BUF)
        flush_locked(w);
    pcap_record_header(w->buf + w->len, realtime_ns, cap, len);
    w->len += PCAP_REC_HDR_LEN;
    if (cap > PCAP_BUF - w->len) {
        flush_locked(w);
        tcpsm_write_all(w->fd, (const char *)data, cap);
    } else {
        memcpy(w->buf + w->len, data, cap);
        w->len += cap;
    }
    pthread_mutex_unlock(&w->lock);
}

void pcap_writer_frame(struct pcap_writer *w, const uint8_t *data, uint32_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    pcap_writer_frame_at(w, (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec, data, len);
}

void pcap_writer_flush(struct pcap_writer *w)
{
    pthread_mutex_lock(&w->lock);
    flush_locked(w);
    pthread_mutex_unlock(&w->lock);
}

void pcap_writer_close(struct pcap_writer *w)
{
    if (!w)
        return;
    pcap_writer_flush(w);
    syscall(SYS_close, w->fd);
    pthread_mutex_destroy(&w->lock);
    free(w);
}

int pcap_writer_fd(const struct pcap_writer *w) { return w->fd; }
