# tcpsm — a user-space TCP/IP stack shipped as an LD_PRELOAD library.
# `make help` lists the targets.

CC      ?= gcc
SAN     ?= 0
V       ?= 0

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes
CFLAGS  ?= -O2 -g
CFLAGS  += -std=c11 -D_GNU_SOURCE -fPIC -fvisibility=hidden $(WARN) -Iinclude -Istack -MMD -MP
LDLIBS  := -ldl -lpthread

ifeq ($(SAN),1)
  B       := build/san
  CFLAGS  += -O1 -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
  LDFLAGS += -fsanitize=address,undefined
else
  B       := build
endif

ifeq ($(V),0)
  Q := @
endif

CORE_SRC  := $(wildcard stack/*.c)
SHIM_SRC  := $(wildcard shim/*.c)
UNIT_SRC  := $(wildcard tests/unit/*.c)
TOOL_SRC  := $(wildcard tests/tools/*.c)

CORE_OBJ  := $(CORE_SRC:%.c=$(B)/obj/%.o)
SHIM_OBJ  := $(SHIM_SRC:%.c=$(B)/obj/%.o)
UNIT_OBJ  := $(UNIT_SRC:%.c=$(B)/obj/%.o)
TOOLS     := $(TOOL_SRC:tests/tools/%.c=build/tools/%)

.PHONY: all lib tools unit test integration demo bench fuzz deps clean help
.DEFAULT_GOAL := all

all: build/libtcpsm.so build/tcpsm tools ## build the library, the wrapper and the test tools

lib: build/libtcpsm.so

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS) -c $< -o $@

$(B)/libtcpsm-core.a: $(CORE_OBJ)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

build/libtcpsm.so: $(CORE_SRC:%.c=build/obj/%.o) $(SHIM_SRC:%.c=build/obj/%.o)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) -shared -o $@ $^ $(LDLIBS) -Wl,-z,defs -Wl,--version-script=shim/exports.map

build/tcpsm: shim/tcpsm.sh
	@mkdir -p build
	$(Q)cp $< $@ && chmod +x $@

tools: $(TOOLS)

build/tools/%: tests/tools/%.c $(B)/libtcpsm-core.a
	@mkdir -p build/tools
	@$(if $(Q),echo "  CC      $@")
	$(Q)$(CC) $(filter-out -fvisibility=hidden,$(CFLAGS)) -o $@ $< $(B)/libtcpsm-core.a $(LDLIBS)

$(B)/unit_tests: $(UNIT_OBJ) $(B)/libtcpsm-core.a
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(UNIT_OBJ) $(B)/libtcpsm-core.a -lcriterion $(LDLIBS)

deps: ## install the Debian packages the build and tests need (as root, only what is missing)
	$(Q)bash tests/lib/deps.sh

unit: deps $(B)/unit_tests ## run the Criterion unit tests (SAN=1: under ASan+UBSan)
	$(Q)$(B)/unit_tests --jobs 2

integration: deps all ## run the integration tests (real programs, network namespaces; root)
	$(Q)bash tests/integration/run.sh

test: unit ## unit tests, then integration tests (SAN=1: unit tests under sanitizers only)
ifneq ($(SAN),1)
	$(Q)$(MAKE) --no-print-directory integration
endif

demo: deps all ## curl through the stack against a kernel HTTP server in a namespace
	$(Q)bash tests/demo.sh

bench: deps all ## throughput, latency and connection rate vs the kernel stack, as ratios
	$(Q)bash bench/run.sh

fuzz: deps ## run the packet-parser fuzzers for a bounded time (clang libFuzzer)
	$(Q)bash tests/fuzz/run.sh

clean: ## remove build outputs
	rm -rf build

help: ## this list
	@echo "tcpsm make targets:"
	@grep -hE '^[a-z]+:.*## ' Makefile | sed -E 's/^([a-z]+):.*## (.*)/  \1\t\2/' | expand -t 16
	@echo "variables: SAN=1 (sanitizer build of the unit tests), V=1 (show commands)"

-include $(shell find build -name '*.d' 2>/dev/null)
