/*
 * Preloaded with the sanitizer runtimes by build/san/tcpsm (make SAN=1), never part of
 * libtcpsm.so. It works around a deadlock of preloaded ASan (gcc 12) with glibc 2.36:
 *
 * ASan is loaded first but its constructor runs after those of the program's libraries, so it
 * initialises lazily inside the first intercepted call. In curl and wget that call is a malloc
 * from newlocale() in libp11-kit's constructor, made while newlocale holds glibc's setlocale
 * lock. ASan's initialisation looks up swift_demangle with dlsym() and clears the failure with
 * dlerror(), whose message goes through gettext, which takes and releases the same lock: the
 * lock ends up released twice, and the program's next setlocale() waits forever.
 *
 * With swift_demangle defined the lookup succeeds and dlerror() has nothing to translate.
 * ASan calls it for each symbol it prints; NULL means "not a Swift name, print it as it is".
 */
#include <stddef.h>
#include <stdint.h>

__attribute__((visibility("default")))
char *swift_demangle(const char *mangled, size_t len, char *out, size_t *out_len, uint32_t flags);

char *swift_demangle(const char *mangled, size_t len, char *out, size_t *out_len, uint32_t flags)
{
    (void)mangled, (void)len, (void)out, (void)out_len, (void)flags;
    return NULL;
}
