/* Logging for the runtime and the shim: one line per message on stderr,
 * prefixed "tcpsm: ", filtered by TCPSM_LOG. */
#ifndef TCPSM_RUNTIME_LOG_H
#define TCPSM_RUNTIME_LOG_H

enum { TCPSM_LOG_ERROR = 0, TCPSM_LOG_WARN = 1, TCPSM_LOG_INFO = 2, TCPSM_LOG_DEBUG = 3 };

void tcpsm_log_set_level(int level);
int tcpsm_log_level(void);
/* Formats and writes one whole line with a single write(2), so lines from
 * several threads never interleave. Never interposed by the shim. */
void tcpsm_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Writes len bytes to fd with raw system calls (bypassing the shim). */
void tcpsm_write_all(int fd, const char *buf, unsigned long len);

#endif
