/* TCPSM_TRACE: one line per TCP state transition, e.g.
 *   tcpsm: 198.18.0.10:40312 > 198.18.0.1:80  SYN-SENT -> ESTABLISHED  < SYN+ACK seq=1 ack=2 win=64240 len=0  +0.000812s
 * (local > remote, old -> new state, the segment that caused it with its
 * direction, or the cause in parentheses, and the time since the first
 * stack socket of the process). */
#ifndef TCPSM_TRACE_LOG_H
#define TCPSM_TRACE_LOG_H

#include <stddef.h>
#include <stdint.h>

#include "tcpsm/core.h"

/* RFC 9293 spelling: "SYN-SENT", "TIME-WAIT", ...; "?" when out of range. */
const char *trace_state_name(int state);
/* "SYN+ACK", "FIN+ACK", "RST", ...; "none" when no flag is set. */
void trace_flags(char *buf, size_t len, uint8_t flags);
/* Formats one line (with "tcpsm: " and the newline). Returns its length
 * (truncated to len-1 like snprintf). t0 is the origin of the relative time. */
size_t trace_format(char *buf, size_t len, const struct tcpsm_trace_event *ev, uint64_t t0);

struct trace_log;
/* path NULL: stderr. NULL with errno on failure. */
struct trace_log *trace_log_open(const char *path, uint64_t t0);
void trace_log_event(struct trace_log *tl, const struct tcpsm_trace_event *ev);
void trace_log_close(struct trace_log *tl);
int trace_log_fd(const struct trace_log *tl);   /* -1 for stderr */

#endif
