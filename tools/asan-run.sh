#!/bin/sh
# Runs the whole busted suite on Lua 5.4 against the ASan+UBSan build of the
# module (build/asan/ecdn/core.so, made by `make asan`). Fails on any report.
#
# - The ASan runtime is loaded with `ld.so --preload`, not LD_PRELOAD, so it is
#   not inherited by the shell tools the specs run (sed, openssl, sh would
#   otherwise report their own leaks); lua5.4 children (simulator, CLI) get it
#   through the lua5.4 wrapper first on PATH.
# - The suite runs in a shadow tree (build/asan/tree: symlinks to the sources,
#   build/ecdn/core.so -> the ASan module), so specs and the subprocesses they
#   start with LUA_CPATH=build/?.so all load the instrumented module.
# - The simulator loads none of the product's C code, so support.sim starts it
#   on the plain /usr/bin/lua5.4 (ECDN_SIM_LUA): ASan's allocator keeps freed
#   memory in quarantine and would void the simulator's own RSS bounds.
# - Every process writes its reports to build/asan/logs/; any file there fails.
# - Lua unloads C modules when a state closes, so a leak report printed at exit
#   may show our frames as "<unknown module>"; to name them, rerun the spec
#   file in a script that ends with os.exit(rc) (state left open).
#   (Preloading the module to keep it mapped made the simulator and the CLI
#   hang in a futex at exit, so it is not done.)
# - intercept_tls_get_addr=0: gcc 12's libasan (like LLVM <= 16) guesses the
#   bounds of a dynamic TLS block with a pre-2.25 glibc heuristic: a block
#   whose address is 16 mod 4096 is taken to have a {size, start} header just
#   before it. Since glibc 2.25 the block is a plain malloc() chunk, so when
#   one lands on that offset by chance (which chunk it gets shifts with any
#   change in what a process allocates, Lua code included) LSan reads the ASan
#   chunk header as that "header" and its tracer dies scanning the bogus range
#   ("Tracer caught signal 11", google/sanitizers#1322). Without the
#   interceptor the blocks are still scanned, as heap chunks reached from the
#   thread's DTV, so no leak can hide behind this.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rt=$(gcc -print-file-name=libasan.so)
ldso=$(sed -n 's/^.*interpreter: \([^]]*\)]$/\1/p' <<EOS
$(readelf -l /usr/bin/lua5.4 | grep 'interpreter')
EOS
)
out=build/asan
rm -rf "$out/tree" "$out/logs" "$out/bin"
mkdir -p "$out/tree/build/ecdn" "$out/logs" "$out/bin"

cat > "$out/bin/lua5.4" <<EOW
#!/bin/sh
exec $ldso --preload $rt /usr/bin/lua5.4 "\$@"
EOW
chmod +x "$out/bin/lua5.4"

for f in $(ls -A | grep -v -x -e build -e .git); do ln -s "$root/$f" "$out/tree/$f"; done
ln -s "$root/$out/ecdn/core.so" "$out/tree/build/ecdn/core.so"
# nginx runs OpenResty's LuaJIT: the resty specs load the plain LuaJIT module.
[ -d "$root/build/luajit" ] && ln -s "$root/build/luajit" "$out/tree/build/luajit"

# Self-check: the set-up really reports a leak made inside a loaded module,
# in a lua5.4 started by another lua5.4 (as the simulator and the CLI are).
gcc -shared -fPIC -g -fsanitize=address $(pkg-config --cflags lua5.4) -o "$out/canary.so" tools/asan-canary.c
mkdir -p "$out/selfcheck"
rm -f "$out/selfcheck"/*
PATH="$root/$out/bin:$PATH" ASAN_OPTIONS="detect_leaks=1:intercept_tls_get_addr=0:log_path=$root/$out/selfcheck/asan" \
  LSAN_OPTIONS=suppressions="$root/tools/asan-lsan.supp" LUA_CPATH="$out/?.so" \
  "$out/bin/lua5.4" -e 'os.execute("lua5.4 -e \"require [[canary]].leak()\"")'
if ! grep -q 'leak of 64 byte' "$out"/selfcheck/asan.* 2>/dev/null; then
  echo "asan: the planted leak in a child process was not reported; the set-up is broken" >&2
  exit 1
fi

status=0
(cd "$out/tree" && \
  PATH="$root/$out/bin:$PATH" \
  ASAN_OPTIONS="detect_leaks=1:intercept_tls_get_addr=0:halt_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1:log_path=$root/$out/logs/asan" \
  LSAN_OPTIONS="suppressions=$root/tools/asan-lsan.supp:print_suppressions=0" \
  UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$root/$out/logs/ubsan" \
  LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' ECDN_SIM_LUA=/usr/bin/lua5.4 \
  lua5.4 /usr/bin/busted -o TAP ${BUSTED_ARGS:-} spec) > "$out/test-asan.tap" || status=$?
grep -E '^(not )?ok' "$out/test-asan.tap" | awk '/^ok/ { p++ } /^not ok/ { f++ } END { printf "asan: busted %d passed, %d failed\n", p, f }'
grep -A8 '^not ok' "$out/test-asan.tap" | head -60 || true

reports=$(find "$out/logs" -type f -size +0 | sort)
if [ -n "$reports" ]; then
  echo "asan: sanitizer reports:" >&2
  for r in $reports; do echo "== $r" >&2; head -n 60 "$r" >&2; done
  exit 1
fi
[ "$status" -eq 0 ] || { echo "asan: busted failed (exit $status)" >&2; exit 1; }
echo "asan: zero findings"
