/* Logging helper (see runtime_log.h). Uses syscall(2) directly: inside the
 * preloaded library a plain write() would go through the shim's own write. */
#include "runtime_log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static _Atomic int log_level = TCPSM_LOG_WARN;

void tcpsm_log_set_level(int level) { atomic_store(&log_level, level); }
int tcpsm_log_level(void) { return atomic_load(&log_level); }

void tcpsm_write_all(int fd, const char *buf, unsigned long len)
{
    while (len > 0) {
        long n = syscall(SYS_write, fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (unsigned long)n;
    }
}

void tcpsm_log(int level, const char *fmt, ...)
{
    if (level > atomic_load(&log_level))
        return;
    int saved = errno;
    char line[512];
    int n = snprintf(line, sizeof(line), "tcpsm: ");
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
    va_end(ap);
    if (m < 0)
        m = 0;
    size_t len = (size_t)n + (size_t)m;
    if (len > sizeof(line) - 2)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    tcpsm_write_all(2, line, len);
    errno = saved;
}
