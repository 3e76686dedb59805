/* raw_close: a close the shim cannot see, the system call instruction itself
 * (what an io_uring IORING_OP_CLOSE or a statically linked helper does). The
 * test tools use it to leave the shim a stale fd to notice. */
#ifndef TCPSM_TOOLS_RAW_SYSCALL_H
#define TCPSM_TOOLS_RAW_SYSCALL_H

#include <sys/syscall.h>

static inline long raw_close(int fd)
{
#if defined(__x86_64__)
    long r;
    __asm__ volatile("syscall" : "=a"(r) : "a"((long)SYS_close), "D"((long)fd) : "rcx", "r11", "memory");
    return r;
#elif defined(__aarch64__)
    register long x8 __asm__("x8") = SYS_close;
    register long x0 __asm__("x0") = fd;
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8) : "memory");
    return x0;
#else
#error "raw_close: add this architecture"
#endif
}

#endif
