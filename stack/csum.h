/* Internet checksum (RFC 1071), incremental. */
#ifndef TCPSM_CSUM_H
#define TCPSM_CSUM_H

#include <stddef.h>
#include <stdint.h>

/* Add len bytes at p to a 32-bit partial sum (p may be unaligned, len odd). */
uint32_t csum_partial(const void *p, size_t len, uint32_t sum);
/* Like csum_partial for a chunk that starts at byte offset `at` of the
 * summed data (any parity: a chunk at an odd offset is summed and its
 * result byte-swapped, RFC 1071 2.(B)), so scattered slices chain. */
uint32_t csum_partial_at(const void *p, size_t len, uint32_t sum, size_t at);
/* csum_partial of src, and src copied to dst in the same pass (the
 * checksum folded into the copy, as Linux csum_partial_copy); dst and src
 * do not overlap. csum_copy_at: the chunk at byte offset `at`. */
uint32_t csum_copy(void *dst, const void *src, size_t len, uint32_t sum);
uint32_t csum_copy_at(void *dst, const void *src, size_t len, uint32_t sum, size_t at);
/* Fold a partial sum to the final 16-bit one's complement checksum. */
uint16_t csum_fold(uint32_t sum);
/* Partial sum of the IPv4 pseudo-header (addresses in host order). */
uint32_t csum_pseudo(uint32_t src, uint32_t dst, uint8_t proto, uint16_t l4_len);

/* Partial sum of the IPv6 pseudo-header (RFC 8200 8.1), addresses as on the wire. */
uint32_t csum_pseudo6(const uint8_t *src, const uint8_t *dst, uint8_t proto, uint32_t l4_len);

#endif
