# lua-ecdn build. `make` builds for Lua 5.4 (build/ecdn/core.so); `make LUA=luajit`
# for LuaJIT 2.1 (the Lua 5.1 ABI that OpenResty runs, build/luajit/); `make
# LUA=lua5.1`, `LUA=lua5.2`, `LUA=lua5.3` for those (build/<LUA>/), all from the
# same sources. `make test` runs the whole suite on 5.4 and LuaJIT, and the
# client specs (OLD_LUA_SPECS) on 5.1, 5.2 and 5.3.

LUA ?= lua5.4
OLD_LUAS := lua5.1 lua5.2 lua5.3
ifeq ($(LUA),luajit)
  LUA_PC := luajit
  OUT := build/luajit
else ifneq ($(filter $(LUA),$(OLD_LUAS)),)
  LUA_PC := $(LUA)
  OUT := build/$(LUA)
else
  LUA_PC := lua5.4
  OUT := build
endif

CC ?= cc
CFLAGS ?= -O2 -g
PKG_CFLAGS := $(shell pkg-config --cflags $(LUA_PC) libcurl libcrypto)
PKG_LIBS := $(shell pkg-config --libs libcurl libcrypto)
ECDN_CFLAGS := -std=c99 -D_POSIX_C_SOURCE=200809L -fPIC -fvisibility=hidden \
               -Wall -Wextra -Werror $(PKG_CFLAGS)
SRCS := $(wildcard src/*.c)
OBJDIR := build/obj/$(LUA_PC)$(VARIANT)
OBJS := $(patsubst src/%.c,$(OBJDIR)/%.o,$(SRCS))
MODULE := $(OUT)/ecdn/core.so

# How to run things from the work tree, for each interpreter.
LUA_PATH_DEV := lua/?.lua;lua/?/init.lua;;
RUN54 := LUA_PATH='$(LUA_PATH_DEV)' LUA_CPATH='build/?.so;;'
RUNJIT := LUA_PATH='$(LUA_PATH_DEV)' LUA_CPATH='build/luajit/?.so;;'
BUSTED ?= /usr/bin/busted
# Tests never ask the real CVM metadata service (the default credential
# chain's last step) for credentials.
export ECDN_METADATA_ENDPOINT ?= off
BUSTED_ARGS ?=

.PHONY: all deps both old-luas test test-old-luas lint clean

all: $(MODULE)

$(MODULE): $(OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared $(LDFLAGS) -o $@ $(OBJS) $(PKG_LIBS)
	@nm -D --defined-only $@ | awk '$$2 == "T" && $$3 != "luaopen_ecdn_core" { print "unexpected export: " $$3; bad = 1 } END { exit bad }'

$(OBJDIR)/%.o: src/%.c $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ECDN_CFLAGS) $(CFLAGS) -c -o $@ $<

# Debian packages that are missing (tools/debian-packages.txt); quick when none is.
deps:
	@sh tools/install-deps.sh

both:
	$(MAKE) LUA=lua5.4
	$(MAKE) LUA=luajit

old-luas:
	@for v in $(OLD_LUAS); do $(MAKE) --no-print-directory LUA=$$v || exit 1; done

# bin/ scripts have no .lua suffix, so they are named one by one.
lint:
	luacheck -q $(wildcard lua spec bench tools) $(wildcard bin/*)

# The specs run on Lua 5.1, 5.2 and 5.3: the client's, the pipeline's, the
# CLI's, the credential providers' and the limiter's. The simulator and every other child
# server still run on 5.4. Tests tagged #lua54 (5.4-only features such as
# `<close>`) are left out there.
OLD_LUA_SPECS ?= $(wildcard spec/client_*_spec.lua spec/pipeline_stages_spec.lua spec/cli_spec.lua \
                            spec/credentials_*_spec.lua spec/sign_prepared_spec.lua spec/limiter_spec.lua)
OLD_LUA_RUNS = for v in $(OLD_LUAS); do \
	  LUA_PATH='$(LUA_PATH_DEV)' LUA_CPATH="build/$$v/?.so;;" $$v $(BUSTED) -o TAP --exclude-tags=lua54 \
	    $(BUSTED_ARGS) $(OLD_LUA_SPECS) > build/test-$$v.tap || rc=1; \
	done;
TEST_TAPS := build/test-lua5.4.tap build/test-luajit.tap $(patsubst %,build/test-%.tap,$(OLD_LUAS))

# Each interpreter writes TAP to build/test-<lua>.tap; tools/test-summary.lua
# turns them all into the closing "N passed, N failed" line.
test: deps both old-luas lint
	@mkdir -p build
	@rc=0; \
	$(RUN54) lua5.4 $(BUSTED) -o TAP $(BUSTED_ARGS) spec > build/test-lua5.4.tap || rc=1; \
	$(RUNJIT) luajit $(BUSTED) -o TAP $(BUSTED_ARGS) spec > build/test-luajit.tap || rc=1; \
	$(OLD_LUA_RUNS) \
	lua5.4 tools/test-summary.lua $(TEST_TAPS) || rc=1; \
	exit $$rc

# Only the 5.1-5.3 runs (and their summary): `make test-old-luas`.
test-old-luas: old-luas
	@mkdir -p build
	@rc=0; \
	$(OLD_LUA_RUNS) \
	lua5.4 tools/test-summary.lua $(patsubst %,build/test-%.tap,$(OLD_LUAS)) || rc=1; \
	exit $$rc

clean:
	rm -rf build

# Each area of work keeps its own targets in mk/*.mk (simulator, client, safety net).
-include $(wildcard mk/*.mk)
