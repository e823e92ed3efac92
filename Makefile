# lua-ecdn build. `make` builds for Lua 5.4; `make LUA=luajit` for LuaJIT 2.1
# (the Lua 5.1 ABI that OpenResty runs). `make test` runs the whole suite on both.

LUA ?= lua5.4
ifeq ($(LUA),luajit)
  LUA_PC := luajit
  OUT := build/luajit
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
BUSTED_ARGS ?=

.PHONY: all deps both test lint clean

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

# bin/ scripts have no .lua suffix, so they are named one by one.
lint:
	luacheck -q $(wildcard lua spec bench tools) $(wildcard bin/*)

# Each interpreter writes TAP to build/test-<lua>.tap; tools/test-summary.lua
# turns both into the closing "N passed, N failed" line.
test: deps both lint
	@mkdir -p build
	@rc=0; \
	$(RUN54) lua5.4 $(BUSTED) -o TAP $(BUSTED_ARGS) spec > build/test-lua5.4.tap || rc=1; \
	$(RUNJIT) luajit $(BUSTED) -o TAP $(BUSTED_ARGS) spec > build/test-luajit.tap || rc=1; \
	lua5.4 tools/test-summary.lua build/test-lua5.4.tap build/test-luajit.tap || rc=1; \
	exit $$rc

clean:
	rm -rf build

# Each area of work keeps its own targets in mk/*.mk (simulator, client, safety net).
-include $(wildcard mk/*.mk)
