/* TCPSM_PCAP: classic pcap capture (magic 0xa1b2c3d4, microsecond
 * timestamps, LINKTYPE_ETHERNET), buffered, thread-safe. */
#ifndef TCPSM_PCAP_WRITER_H
#define TCPSM_PCAP_WRITER_H

#include <stddef.h>
#include <stdint.h>

#define PCAP_FILE_HDR_LEN 24
#define PCAP_REC_HDR_LEN  16
#define PCAP_SNAPLEN      262144u
#define PCAP_LINKTYPE_ETHERNET 1u

/* Pure encoders (little-endian host order is what readers expect from the
 * magic; we write native order, which the magic identifies). */
void pcap_file_header(uint8_t out[PCAP_FILE_HDR_LEN]);
void pcap_record_header(uint8_t out[PCAP_REC_HDR_LEN], uint64_t realtime_ns, uint32_t caplen,
                        uint32_t origlen);

struct pcap_writer;

/* Creates/truncates path and writes the file header. NULL with errno set. */
struct pcap_writer *pcap_writer_open(const char *path);
/* Appends one frame (truncated to PCAP_SNAPLEN); takes the time itself. */
void pcap_writer_frame(struct pcap_writer *w, const uint8_t *data, uint32_t len);
void pcap_writer_frame_at(struct pcap_writer *w, uint64_t realtime_ns, const uint8_t *data,
                          uint32_t len);
void pcap_writer_flush(struct pcap_writer *w);
/* Flushes, closes and frees. */
void pcap_writer_close(struct pcap_writer *w);
int pcap_writer_fd(const struct pcap_writer *w);

#endif
