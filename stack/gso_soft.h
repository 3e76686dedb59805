/* Software segmentation and checksum completion: what a NIC (or the
 * kernel's GSO on a link without TSO) does with a TCP super-segment and a
 * partial checksum. Pure; used by the in-memory link's software TSO mode
 * and by the impairment bridge, which cuts a kernel peer's 64 KiB frames
 * into the MSS-sized frames a wire carries. */
#ifndef TCPSM_GSO_SOFT_H
#define TCPSM_GSO_SOFT_H

#include <stdbool.h>
#include <stdint.h>

/* Receives each segment cut from a super-segment (valid during the call). */
typedef void (*gso_soft_emit_fn)(void *ctx, const uint8_t *seg, uint32_t len);

/* Cuts the Ethernet + IPv4/TCP or IPv6/TCP (no extension headers) frame f
 * into segments of at most gso payload bytes (Linux tcp_gso_segment /
 * tcp6_gso_segment): headers copied, the IP length (and IPv4 ID and header
 * checksum) and the TCP sequence number advanced, PSH and FIN kept for the
 * last segment and CWR for the first, full TCP checksums. scratch must hold
 * the headers plus gso bytes (GSO_SOFT_SCRATCH(gso)). Returns the number of
 * segments emitted, 0 (nothing emitted) if f is not such a frame. */
#define GSO_SOFT_SCRATCH(gso) (14u + 60u + 60u + (uint32_t)(gso))
unsigned gso_soft_segment(const uint8_t *f, uint32_t len, uint32_t gso, uint8_t *scratch,
                          gso_soft_emit_fn emit, void *ctx);

/* Completes a partial checksum (virtio NEEDS_CSUM / CHECKSUM_PARTIAL): the
 * field at start + off holds the pseudo-header sum; the one's complement
 * sum from start to the end of the frame goes into it. false if the field
 * lies outside the frame (left alone). */
bool gso_soft_finish_csum(uint8_t *f, uint32_t len, uint32_t start, uint32_t off);

#endif
