# tcpsm — a user-space TCP/IP stack shipped as an LD_PRELOAD library.
# `make help` lists the targets.

CC      ?= gcc
SAN     ?= 0
V       ?= 0

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(WARN) -Iinclude -Istack -Istack/runtime -MMD -MP
# The library is preloaded (LD_PRELOAD, or linked in), never dlopen()ed: its thread-locals sit in
# the static TLS block either way, and initial-exec reaches them without a __tls_get_addr call
# (about 3% of a ping-pong client's user time went to it).
CFLAGS  += -ftls-model=initial-exec
LDLIBS  := -ldl -lpthread

# SAN=1 builds everything (core, library, wrapper, tools, unit tests) under build/san with
# ASan+UBSan. build/san/tcpsm preloads the sanitizer runtimes ahead of build/san/libtcpsm.so
# (ASan must be the first object loaded into a program that is not built with it).
ifeq ($(TSAN),1)
  # ThreadSanitizer build (make tsan): build/tsan, its wrapper preloads libtsan right after
  # libtcpsm.so (shim/tcpsm.sh, sanitizer_after).
  B       := build/tsan
  CFLAGS  += -O1 -fsanitize=thread -fno-omit-frame-pointer
  LDFLAGS += -fsanitize=thread
  SAN_AFTER := $(shell $(CC) -print-file-name=libtsan.so)
else ifeq ($(SAN),1)
  B       := build/san
  CFLAGS  += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
  LDFLAGS += -fsanitize=address,undefined
  SAN_RT  := $(shell $(CC) -print-file-name=libasan.so):$(shell $(CC) -print-file-name=libubsan.so):$(CURDIR)/build/san/libswift_demangle.so
else
  B       := build
endif

ifeq ($(V),0)
  Q := @
endif

CORE_SRC  := $(wildcard stack/*.c)
RT_SRC    := $(wildcard stack/runtime/*.c)
SHIM_SRC  := $(wildcard shim/*.c)
UNIT_SRC  := $(wildcard tests/unit/*.c)
TOOL_SRC  := $(wildcard tests/tools/*.c)

CORE_OBJ  := $(CORE_SRC:%.c=$(B)/obj/%.o)
RT_OBJ    := $(RT_SRC:%.c=$(B)/obj/%.o)
SHIM_OBJ  := $(SHIM_SRC:%.c=$(B)/obj/%.o)
UNIT_OBJ  := $(UNIT_SRC:%.c=$(B)/obj/%.o)
TOOLS     := $(TOOL_SRC:tests/tools/%.c=$(B)/tools/%)
# The wrapper's subcommands (tcpsm stat, capture, ladder): Python 3 scripts in tools/,
# copied next to the wrapper (build/libexec/) and installed beside the library.
PYTOOLS   := $(wildcard tools/*.py)
PYTOOLS_B := $(PYTOOLS:tools/%=$(B)/libexec/%)

# The integration tests `make test SAN=1` runs under the sanitized library (~60 s): the cheapest
# few that cover a client (curl), a server (nginx), epoll, the shim's API edge cases, the error
# paths (RST from the peer, a vanished peer, a refused connect), exit with connections open, and
# the fd table's lifetime rules and their stress test (fd_check, fd_stress: ~25 s more), and the
# stats region and capture stream (tcpsm stat, tcpsm capture), and the IPv6 / dual-stack servers
# (python3, nginx, node on :: over both families, ~10 s), and an epoll server holding 2,000
# connections (many_conns, ~5 s).
SAN_TESTS ?= curl_download nginx_server epoll_echo epoll_semantics signals signal_longjmp api_check peer_reset peer_vanish refused exit_cleanup fd_check fd_stress stat capture ipv6_dual_listeners many_conns

.PHONY: all lib tools unit test integration demo bench fuzz deps clean help install uninstall
.DEFAULT_GOAL := all

all: $(B)/libtcpsm.so $(B)/tcpsm $(PYTOOLS_B) $(B)/libexec/tcpsm-user tools ## build the library, the wrapper (and its subcommands) and the test tools

lib: $(B)/libtcpsm.so

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(B)/libtcpsm-core.a: $(CORE_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# The runtime (stack/runtime/: threads, the AF_PACKET link, config, clock, trace and pcap
# writers) is the only part besides the shim that makes system calls.
$(B)/libtcpsm-rt.a: $(RT_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# shim/exports.map lists what leaves the library: a change to it relinks.
$(B)/libtcpsm.so: $(CORE_OBJ) $(RT_OBJ) $(SHIM_OBJ) shim/exports.map
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -shared -o $@ $(filter %.o,$^) $(LDLIBS) -Wl,-z,defs -Wl,--version-script=shim/exports.map

$(B)/tcpsm: shim/tcpsm.sh $(if $(filter 1,$(SAN)),build/san/libswift_demangle.so)
	@mkdir -p $(B)
	$(Q)sed -e 's|^sanitizer_runtimes=$$|sanitizer_runtimes=$(SAN_RT)|' -e 's|^sanitizer_after=$$|sanitizer_after=$(SAN_AFTER)|' $< >$@ && chmod +x $@

$(B)/libexec/%.py: tools/%.py
	@mkdir -p $(dir $@)
	$(Q)cp $< $@

# tcpsm --user's helper: opens the link as root, serves it to the program it runs as NAME.
$(B)/libexec/tcpsm-user: tools/tcpsm_user.c $(B)/libtcpsm-rt.a $(B)/libtcpsm-core.a
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(filter-out -fvisibility=hidden,$(CFLAGS)) $(LDFLAGS) -o $@ $< $(B)/libtcpsm-rt.a $(B)/libtcpsm-core.a $(LDLIBS)

# A workaround the sanitized wrapper preloads (see the file).
build/san/libswift_demangle.so: tests/san/swift_demangle.c
	@mkdir -p $(dir $@)
	$(Q)$(CC) -std=c11 $(WARN) -O2 -fPIC -shared -o $@ $<

tools: $(TOOLS)

$(B)/tools/%: tests/tools/%.c $(wildcard tests/tools/*.h) $(B)/libtcpsm-rt.a $(B)/libtcpsm-core.a
	@mkdir -p $(B)/tools
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(filter-out -fvisibility=hidden,$(CFLAGS)) $(LDFLAGS) -o $@ $< $(B)/libtcpsm-rt.a $(B)/libtcpsm-core.a $(LDLIBS)

$(B)/unit_tests: $(UNIT_OBJ) $(B)/libtcpsm-rt.a $(B)/libtcpsm-core.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(UNIT_OBJ) $(B)/libtcpsm-rt.a $(B)/libtcpsm-core.a -lcriterion $(LDLIBS)

deps: ## install the Debian packages the build and tests need (as root, only what is missing)
	$(Q)bash tests/lib/deps.sh

unit: deps $(B)/unit_tests ## run the Criterion unit tests (SAN=1: under ASan+UBSan)
ifeq ($(SAN),1)
	@# Criterion passes a test whose worker leaks (LeakSanitizer reports at the
	@# worker's exit, after the result): collect the reports and fail on any.
	$(Q)rm -rf $(B)/unit-reports && mkdir -p $(B)/unit-reports
	$(Q)ASAN_OPTIONS=detect_leaks=1:log_path=$(CURDIR)/$(B)/unit-reports/asan $(B)/unit_tests --jobs 2
	$(Q)if ls $(B)/unit-reports/* >/dev/null 2>&1; then cat $(B)/unit-reports/*; \
	  echo "unit: sanitizer reports above ($(B)/unit-reports)"; exit 1; fi
else
	$(Q)$(B)/unit_tests --jobs 2
endif

integration: deps all ## run the integration tests (real programs, network namespaces; root; SAN=1: sanitized)
	$(Q)TCPSM_SAN=$(SAN) bash tests/integration/run.sh $(T)

test: unit ## unit tests, then integration tests (SAN=1: all under ASan+UBSan, integration only SAN_TESTS)
ifeq ($(SAN),1)
	$(Q)$(MAKE) --no-print-directory integration T="$(SAN_TESTS)"
else
	$(Q)$(MAKE) --no-print-directory integration
endif

# ThreadSanitizer: the library, wrapper and tools built in build/tsan (TSAN=1), then the tests of
# TSAN_TESTS (fd_stress: threads opening, closing, reading and polling stack sockets, files and
# pipes for 8 s) on it; any report fails the test (suppressions, each with its reason:
# tests/tsan.supp); epoll_semantics: epoll_ctl/close/recv races on shared sockets; signals:
# handlers that make stack calls while their thread is inside one. About 30 s after the build.
TSAN_TESTS ?= fd_stress epoll_semantics signals
tsan: deps ## build under ThreadSanitizer (build/tsan) and run TSAN_TESTS on it (any report fails)
	$(Q)$(MAKE) --no-print-directory TSAN=1 all
	$(Q)TCPSM_SAN=tsan TCPSM_FD_STRESS_SECS=8 bash tests/integration/run.sh $(TSAN_TESTS)

demo: deps all ## curl through the stack against a kernel HTTP server in a namespace
	$(Q)bash tests/demo.sh

bench: deps all ## throughput, latency and connection rate vs the kernel stack, as ratios, and the picture build/bench/report.svg
	$(Q)bash bench/run.sh

fuzz: deps ## run the fuzzers for a bounded time (clang libFuzzer; FUZZ_SECONDS, FUZZ_TARGET=input|tcp|all, FUZZ_SAN=asan|ubsan, FUZZ_JOBS, FUZZ_RUNS, FUZZ_REPLAY=1)
	$(Q)bash tests/fuzz/run.sh

# make install [PREFIX=/usr/local] [DESTDIR=]: the wrapper in bin/, the preload library and the
# subcommands in lib/tcpsm/, the man pages, and the pure core for embedding (libtcpsm-core.a,
# <tcpsm/core.h>, tcpsm-core.pc). The installed wrapper finds the library beside itself
# (bin/../lib/tcpsm, so a DESTDIR tree runs in place) or at the PREFIX it was installed for.
PREFIX     ?= /usr/local
BINDIR     := $(PREFIX)/bin
LIBDIR     := $(PREFIX)/lib
PKGLIBDIR  := $(LIBDIR)/tcpsm
INCDIR     := $(PREFIX)/include
MANDIR     := $(PREFIX)/share/man
PCDIR      := $(LIBDIR)/pkgconfig
VERSION    := $(shell sed -n 's/^TCPSM_VERSION=//p' shim/tcpsm.sh)
INSTALLED  := $(BINDIR)/tcpsm $(PKGLIBDIR)/libtcpsm.so $(PYTOOLS:tools/%=$(PKGLIBDIR)/%) \
              $(PKGLIBDIR)/tcpsm-user \
              $(MANDIR)/man1/tcpsm.1 $(MANDIR)/man7/tcpsm.7 $(LIBDIR)/libtcpsm-core.a \
              $(INCDIR)/tcpsm/core.h $(PCDIR)/tcpsm-core.pc

install: ## install under PREFIX (/usr/local), staged under DESTDIR; make uninstall removes it
ifeq ($(SAN),1)
	$(error make install installs the normal build: run it without SAN=1)
endif
	$(Q)$(MAKE) --no-print-directory all build/libtcpsm-core.a
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(PKGLIBDIR) $(DESTDIR)$(INCDIR)/tcpsm \
	    $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man7 $(DESTDIR)$(PCDIR)
	sed 's|^libdir=$$|libdir=$(PKGLIBDIR)|' shim/tcpsm.sh >$(DESTDIR)$(BINDIR)/tcpsm
	chmod 755 $(DESTDIR)$(BINDIR)/tcpsm
	install -m 755 build/libtcpsm.so $(DESTDIR)$(PKGLIBDIR)/libtcpsm.so
	install -m 644 $(PYTOOLS) $(DESTDIR)$(PKGLIBDIR)/
	install -m 755 build/libexec/tcpsm-user $(DESTDIR)$(PKGLIBDIR)/tcpsm-user
	for m in 1 7; do sed -e 's|@VERSION@|$(VERSION)|g' -e 's|@LIBDIR@|$(PKGLIBDIR)|g' \
	    man/tcpsm.$$m >$(DESTDIR)$(MANDIR)/man$$m/tcpsm.$$m && \
	    chmod 644 $(DESTDIR)$(MANDIR)/man$$m/tcpsm.$$m; done
	install -m 644 build/libtcpsm-core.a $(DESTDIR)$(LIBDIR)/libtcpsm-core.a
	install -m 644 include/tcpsm/core.h $(DESTDIR)$(INCDIR)/tcpsm/core.h
	printf '%s\n' 'prefix=$(PREFIX)' 'libdir=$(LIBDIR)' 'includedir=$(INCDIR)' '' \
	    'Name: tcpsm-core' 'Description: the tcpsm TCP/IP protocol core (no system calls, no clock)' \
	    'Version: $(VERSION)' 'Libs: -L$${libdir} -ltcpsm-core' 'Cflags: -I$${includedir}' \
	    >$(DESTDIR)$(PCDIR)/tcpsm-core.pc

uninstall: ## remove what make install installed (same PREFIX and DESTDIR)
	rm -f $(addprefix $(DESTDIR),$(INSTALLED))
	-rmdir $(DESTDIR)$(PKGLIBDIR) $(DESTDIR)$(INCDIR)/tcpsm 2>/dev/null

clean: ## remove build outputs
	rm -rf build

help: ## this list
	@echo "tcpsm make targets:"
	@grep -hE '^[a-z]+:.*## ' Makefile | sed -E 's/^([a-z]+):.*## (.*)/  \1\t\2/' | expand -t 16
	@echo "variables: SAN=1 (ASan+UBSan build in build/san: unit tests, library, wrapper, tools),"
	@echo "           T=\"NAME...\" (integration: only tests whose names contain one of them),"
	@echo "           SAN_TESTS (the integration tests of make test SAN=1), V=1 (show commands),"
	@echo "           TSAN_TESTS (the integration tests of make tsan),"
	@echo "           PREFIX=/usr/local DESTDIR= (install, uninstall)"

-include $(shell find build -name '*.d' 2>/dev/null)
