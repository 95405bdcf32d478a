# campaign-sync — build, test, run.
#   make                       build build/campaign-sync
#   make test                  unit + integration tests
#   make test SANITIZE=address,undefined   the same under ASan and UBSan (build/san)
#   make run                   local Redis (+ CRM simulators without credentials) and serve
#   make fuzz / fuzz-run       libFuzzer targets (clang)
#   make bench                 benchmarks (bench/)
#   make chaos [CHAOS_ARGS=--short]   faults while changes flow (tests/chaos/, RELIABILITY.md)
#   make soak [SOAK_ARGS=--minutes 30] a long steady run that watches memory (bench/soak.py)
#   make screenshots           the console's browser test, writing docs/console/*.png
# Knobs: OPT (default -O2), SANITIZE, V=1 (show commands).

CC ?= cc
OPT ?= -O2
SANITIZE ?=
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo 0.1.0)
PYTHON ?= /usr/bin/python3

ifeq ($(SANITIZE),)
BUILD := build
SANFLAGS :=
else
BUILD := build/san
SANFLAGS := -fsanitize=$(SANITIZE) -fno-omit-frame-pointer -fno-sanitize-recover=all
OPT := -O1
endif

ifeq ($(V),1)
Q :=
else
Q := @
endif

PKGS := libmicrohttpd libcurl libcjson hiredis libxml-2.0 openssl gnutls
# Evaluated once, when first used (after `deps` has installed pkg-config's files).
PKG_CFLAGS = $(eval PKG_CFLAGS := $$(shell pkg-config --cflags $(PKGS)))$(PKG_CFLAGS)
PKG_LIBS = $(eval PKG_LIBS := $$(shell pkg-config --libs $(PKGS)))$(PKG_LIBS)

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wformat=2 -Wvla
CFLAGS_ALL = -std=c11 $(WARN) $(OPT) -g -D_GNU_SOURCE -DCS_VERSION='"$(VERSION)"' \
             -Iinclude -Ibuild/gen $(PKG_CFLAGS) $(SANFLAGS) -MMD -MP $(CFLAGS)
LDLIBS_ALL = $(PKG_LIBS) -lpthread -lm $(SANFLAGS) $(LDFLAGS)

SRCS := $(wildcard service/*.c)
LIB_SRCS := $(filter-out service/main.c,$(SRCS))
LIB_OBJS := $(LIB_SRCS:service/%.c=$(BUILD)/obj/%.o)
# The operator console (console/): its files become a C table at build time (routes_console.c).
CONSOLE_FILES := console/console.css console/console.js console/icon.svg
CONSOLE_GEN := build/gen/console_assets.c
LIB_OBJS += $(BUILD)/obj/console_assets.o
# The Redis scripts (service/lua/*.lua) become a C table at build time: service/lua/embed.sh
# writes build/gen/store_lua.h (STORE_LUA_<NAME> for each file, the table's type) and
# build/gen/store_lua.c (each script's text with the service/lua/lib/ helpers it names in
# `--@use FILE` lines put in their place, and its SHA1 for EVALSHA). store_priv.h includes the
# header, so every store*.c waits for it.
LUA_FILES := $(wildcard service/lua/*.lua)
LUA_LIB := $(wildcard service/lua/lib/*.lua)
LUA_GEN := build/gen/store_lua.c
LUA_GEN_H := build/gen/store_lua.h
LIB_OBJS += $(BUILD)/obj/store_lua.o
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

.PHONY: all deps test unit integration run fuzz fuzz-run bench chaos soak clean format format-check \
        screenshots
all: deps $(BUILD)/campaign-sync

deps:
	$(Q)scripts/deps.sh build

$(BUILD)/obj/%.o: service/%.c | deps
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC $<"
	$(Q)$(CC) $(CFLAGS_ALL) -c $< -o $@

$(CONSOLE_GEN): console/index.html $(CONSOLE_FILES) console/embed.sh
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  GEN $@"
	$(Q)console/embed.sh $@ console/index.html $(CONSOLE_FILES)

$(BUILD)/obj/console_assets.o: $(CONSOLE_GEN) | deps
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC $<"
	$(Q)$(CC) $(CFLAGS_ALL) -c $< -o $@

$(LUA_GEN): $(LUA_FILES) $(LUA_LIB) service/lua/embed.sh
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  GEN $@"
	$(Q)service/lua/embed.sh $(dir $@) $(LUA_FILES)

# Written with the table, and only when the list of scripts changes.
$(LUA_GEN_H): $(LUA_GEN)
	@:

$(BUILD)/obj/store_lua.o: $(LUA_GEN) | deps
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC $<"
	$(Q)$(CC) $(CFLAGS_ALL) -c $< -o $@

$(patsubst service/%.c,$(BUILD)/obj/%.o,$(wildcard service/store*.c)): | $(LUA_GEN_H)

# main.o carries the version (git describe): rebuilt whenever it changes, not only with main.c.
$(BUILD)/version.stamp: FORCE
	@mkdir -p $(dir $@)
	@echo '$(VERSION)' | cmp -s - $@ || echo '$(VERSION)' > $@
$(BUILD)/obj/main.o: $(BUILD)/version.stamp
.PHONY: FORCE
FORCE:

$(BUILD)/libcs.a: $(LIB_OBJS)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/campaign-sync: $(BUILD)/obj/main.o $(BUILD)/libcs.a
	@[ "$(V)" = 1 ] || echo "  LD $@"
	$(Q)$(CC) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libcs.a | deps
	@mkdir -p $(dir $@)
	@[ "$(V)" = 1 ] || echo "  CC $<"
	$(Q)$(CC) $(CFLAGS_ALL) -Itests/unit -o $@ $< $(BUILD)/libcs.a $(LDLIBS_ALL) -lcmocka

test: deps-test $(BUILD)/campaign-sync $(UNIT_BINS)
	$(Q)BUILD=$(BUILD) SANITIZE=$(SANITIZE) PYTHON=$(PYTHON) scripts/test.sh

unit: deps-test $(UNIT_BINS)
	$(Q)BUILD=$(BUILD) SANITIZE=$(SANITIZE) scripts/test.sh unit

integration: deps-test $(BUILD)/campaign-sync
	$(Q)BUILD=$(BUILD) SANITIZE=$(SANITIZE) PYTHON=$(PYTHON) scripts/test.sh integration

.PHONY: deps-test
deps-test:
	$(Q)scripts/deps.sh test

run: all
	$(Q)scripts/deps.sh run
	$(Q)BUILD=$(BUILD) scripts/run.sh

FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=build/fuzz/%)
FUZZ_SECONDS ?= 60
build/fuzz/%: tests/fuzz/%.c tests/fuzz/roundtrip.h $(LIB_SRCS) $(CONSOLE_GEN) $(LUA_GEN) | deps-test
	@mkdir -p $(dir $@)
	@echo "  FUZZ $@"
	$(Q)clang -std=c11 -g -O1 -D_GNU_SOURCE -Iinclude -Ibuild/gen $(PKG_CFLAGS) \
	  -fsanitize=fuzzer,address,undefined -o $@ $< $(LIB_SRCS) $(CONSOLE_GEN) $(LUA_GEN) $(PKG_LIBS) -lpthread -lm
fuzz: $(FUZZ_BINS)
fuzz-run: $(FUZZ_BINS)
	$(Q)FUZZ_SECONDS=$(FUZZ_SECONDS) scripts/fuzz.sh $(FUZZ_BINS)

CHAOS_ARGS ?= --changes 20000 --rate 150 --out build/chaos.json
chaos: deps-test $(BUILD)/campaign-sync
	$(Q)CAMPAIGN_SYNC_BIN=$(abspath $(BUILD)/campaign-sync) PYTHONPATH=$(abspath tests) \
	  $(PYTHON) tests/chaos/chaos.py $(CHAOS_ARGS)

bench: all
	$(Q)scripts/deps.sh bench
	$(Q)bench/run.sh

SOAK_ARGS ?= --minutes 20 --out build/soak.json
soak: all
	$(Q)scripts/deps.sh bench
	$(Q)CAMPAIGN_SYNC_BIN=$(abspath $(BUILD)/campaign-sync) bench/soak.sh $(SOAK_ARGS)

# The console's browser test (tests/integration/test_console.py) with its screenshots written
# where the README shows them.
screenshots: deps-test $(BUILD)/campaign-sync
	$(Q)CONSOLE_SCREENSHOTS=$(abspath docs/console) CAMPAIGN_SYNC_BIN=$(abspath $(BUILD)/campaign-sync) \
	  $(PYTHON) -m pytest -q -p no:cacheprovider tests/integration/test_console.py -k browser

FORMAT_FILES = service/*.c service/*.h include/*.h tests/unit/*.c tests/unit/*.h tests/fuzz/*.c tests/fuzz/*.h
format:
	clang-format -i $(FORMAT_FILES)

# Fails when a file differs from what `make format` would make of it (CI runs it).
format-check:
	clang-format --dry-run --Werror $(FORMAT_FILES)

clean:
	rm -rf build

-include $(LIB_OBJS:.o=.d) $(BUILD)/obj/main.d
