# Benchmarks (issue 12): `make bench` prints one table, each figure beside its
# floor or peer (bench/run.lua): TC3 signatures/s on Lua 5.4 and LuaJIT
# against the official Node SDK's sign3 and a C floor (bench/sign_floor.c),
# and microseconds per purge against a bare libcurl loop (bench/curl_floor.c),
# both against the same local nginx. Benchmarks print; tests never assert on
# timing.
#   make bench BENCH_ROUNDS=5 BENCH_SECONDS=0.3 BENCH_PURGE_SECONDS=0.5   (the defaults; ~1 min)
# The Node SDK is installed with npm into BENCH_NODE_DIR (a temporary
# directory, never the repository) the first time, when npm is present;
# without it the Node column is skipped. BENCH_NODE=off skips it outright.

BENCH_ROUNDS ?= 5
BENCH_SECONDS ?= 0.3
BENCH_PURGE_SECONDS ?= 0.5
BENCH_NODE ?= auto
BENCH_NODE_DIR ?= $(or $(TMPDIR),/tmp)/lua-ecdn-bench-node
BENCH_CFLAGS := -O2 -g -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -Isrc \
                $(shell pkg-config --cflags libcurl libcrypto)

.PHONY: bench bench-build bench-node-sdk

build/bench/sign_floor: bench/sign_floor.c src/sign.c src/buf.c src/sign.h src/buf.h
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -o $@ bench/sign_floor.c src/sign.c src/buf.c $(shell pkg-config --libs libcrypto)

build/bench/curl_floor: bench/curl_floor.c bench/floor_request.c bench/floor_request.h
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) -o $@ bench/curl_floor.c bench/floor_request.c $(shell pkg-config --libs libcurl)

# The floor as a Lua module (bench/interleaved.lua), for Lua 5.4 and LuaJIT.
FLOOR_LUA_SRCS := bench/curl_floor_lua.c bench/floor_request.c
build/bench/curl_floor.so: $(FLOOR_LUA_SRCS) bench/floor_request.h
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) $(shell pkg-config --cflags lua5.4) -fPIC -shared -o $@ $(FLOOR_LUA_SRCS) \
	  $(shell pkg-config --libs libcurl)

build/bench/luajit/curl_floor.so: $(FLOOR_LUA_SRCS) bench/floor_request.h
	@mkdir -p $(dir $@)
	$(CC) $(BENCH_CFLAGS) $(shell pkg-config --cflags luajit) -fPIC -shared -o $@ $(FLOOR_LUA_SRCS) \
	  $(shell pkg-config --libs libcurl)

bench-build: build/bench/sign_floor build/bench/curl_floor build/bench/curl_floor.so build/bench/luajit/curl_floor.so
	@$(MAKE) --no-print-directory LUA=lua5.4 all
	@$(MAKE) --no-print-directory LUA=luajit all

# Quick when it is there; a failed install only costs the Node column.
bench-node-sdk:
	@if [ "$(BENCH_NODE)" = off ]; then exit 0; fi; \
	if [ -f '$(BENCH_NODE_DIR)/node_modules/tencentcloud-sdk-nodejs/package.json' ]; then exit 0; fi; \
	if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then \
	  echo "bench: node or npm missing: no Node SDK column"; exit 0; fi; \
	echo "bench: installing tencentcloud-sdk-nodejs into $(BENCH_NODE_DIR) (outside the repository)"; \
	mkdir -p '$(BENCH_NODE_DIR)' && cd '$(BENCH_NODE_DIR)' && \
	  timeout 300 npm install --prefix '$(BENCH_NODE_DIR)' --no-audit --no-fund --no-save --silent \
	    tencentcloud-sdk-nodejs >/dev/null 2>&1 || echo "bench: npm install failed: no Node SDK column"

bench: bench-build bench-node-sdk
	@BENCH_ROUNDS='$(BENCH_ROUNDS)' BENCH_SECONDS='$(BENCH_SECONDS)' BENCH_PURGE_SECONDS='$(BENCH_PURGE_SECONDS)' \
	  BENCH_NODE_DIR='$(if $(filter off,$(BENCH_NODE)),,$(BENCH_NODE_DIR))' lua5.4 bench/run.lua
