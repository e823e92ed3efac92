# Safety net (issue 5): `make fuzz`, `make asan`, `make valgrind`.
# Included by the main Makefile; everything goes under build/{fuzz,asan,valgrind}.

.PHONY: fuzz fuzz-build asan asan-build valgrind

SAFETY_CC ?= clang
ASAN_RT = $(shell $(SAFETY_CC) -print-file-name=libclang_rt.asan-x86_64.so)

# ---- libFuzzer ------------------------------------------------------------
# Targets link only the C files that have no Lua in them.
FUZZ_SECONDS ?= 60
FUZZ_TARGETS := $(patsubst fuzz/%.c,%,$(wildcard fuzz/fuzz_*.c))
FUZZ_CORE := $(filter-out src/lua_% src/core.c,$(wildcard src/*.c))
FUZZ_FLAGS := -g -O1 -std=c99 -D_POSIX_C_SOURCE=200809L -Wall -Wextra -Werror -Isrc \
              -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
              $(shell pkg-config --cflags libcurl libcrypto)
FUZZ_BINS := $(patsubst %,build/fuzz/%,$(FUZZ_TARGETS))

build/fuzz/fuzz_%: fuzz/fuzz_%.c $(wildcard fuzz/*.h) $(FUZZ_CORE) $(wildcard src/*.h)
	@mkdir -p $(dir $@)
	$(SAFETY_CC) $(FUZZ_FLAGS) -o $@ $< $(FUZZ_CORE) $(PKG_LIBS)

fuzz-build: $(FUZZ_BINS)

# Each target starts from the committed seeds plus what earlier runs found
# (build/fuzz/corpus/<target>), runs FUZZ_SECONDS, and any crash, leak,
# sanitizer report or failed check stops `make` with the reproducer saved
# as build/fuzz/<target>-crash-*.
fuzz: fuzz-build
	@rc=0; : > build/fuzz/summary.txt; for t in $(FUZZ_TARGETS); do \
	  mkdir -p build/fuzz/corpus/$$t; \
	  echo "fuzz: $$t for $(FUZZ_SECONDS) s"; \
	  build/fuzz/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 \
	    -print_final_stats=1 -artifact_prefix=build/fuzz/$$t- \
	    build/fuzz/corpus/$$t fuzz/corpus/$$t > build/fuzz/$$t.log 2>&1 || { rc=1; tail -n 40 build/fuzz/$$t.log; }; \
	  awk -v t=$$t '/stat::number_of_executed_units/ { n = $$2 } /stat::new_units_added/ { u = $$2 } \
	    END { printf "fuzz: %s: %s executions, %s new corpus units\n", t, n, u }' build/fuzz/$$t.log \
	    | tee -a build/fuzz/summary.txt; \
	done; \
	if [ $$rc -ne 0 ]; then echo "fuzz: FINDINGS (see build/fuzz/*.log)"; fi; exit $$rc

# ---- AddressSanitizer + UBSan over the whole busted suite (Lua 5.4) ---------
# gcc's ASan (the project's compiler; libasan8 comes with gcc 12). Objects in
# build/obj/lua5.4-asan, module in build/asan/ecdn/core.so.
# (-DECDN_SHA256_EVP: the signer's EVP digests, src/sign.c's other way, run the suite here.)
ASAN_FLAGS := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined \
              -DECDN_SHA256_EVP

asan-build:
	@$(MAKE) --no-print-directory LUA=lua5.4 VARIANT=-asan CC=gcc OUT=build/asan \
	  MODULE=build/asan/ecdn/core.so CFLAGS='$(ASAN_FLAGS)' LDFLAGS='-fsanitize=address,undefined' \
	  build/asan/ecdn/core.so

asan: asan-build
	@$(MAKE) --no-print-directory LUA=luajit # nginx (resty specs) loads the LuaJIT module
	tools/asan-run.sh

# ---- valgrind memcheck over tools/valgrind-stress.lua (Lua 5.4) -------------
# Any invalid access or byte definitely/indirectly lost fails (exit 99).
# STRESS_CLIENTS (default 10000) and STRESS_NET (default 40) size the run.
VALGRIND := valgrind -q --tool=memcheck --error-exitcode=99 --leak-check=full \
            --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
            --num-callers=30 $(patsubst %,--suppressions=%,$(wildcard tools/valgrind-*.supp))

valgrind: $(MODULE)
	@mkdir -p build/valgrind
	@# Self-check: a leak planted in a loaded module must fail the run.
	@gcc -shared -fPIC -g $(shell pkg-config --cflags lua5.4) -o build/valgrind/canary.so tools/asan-canary.c
	@if LUA_CPATH='build/valgrind/?.so' $(VALGRIND) lua5.4 -e 'require "canary".leak()' 2>/dev/null; then \
	  echo "valgrind: the planted leak was not reported; the set-up is broken"; exit 1; fi
	LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='build/?.so;;' \
	  $(VALGRIND) lua5.4 tools/valgrind-stress.lua
