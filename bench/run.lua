-- `make bench`: one table, each figure beside its floor or peer, from one run.
--   lua5.4 bench/run.lua            (make bench builds what it needs first)
-- Environment: BENCH_SECONDS (per signing case, default 0.3), BENCH_PURGE_SECONDS
-- (per purge case, default 0.5), BENCH_ROUNDS (default 5; the best of them is
-- kept, to stand up to other jobs on the machine), BENCH_NODE_DIR (where
-- tencentcloud-sdk-nodejs is installed; the Node column is skipped without it),
-- BENCH_PAIRS (default 20) and BENCH_PAIR_SECONDS (0.15): the back-to-back
-- runs of the curl floor and client:purge whose ratios are compared,
-- BENCH_STAGES=0 to skip the stage timings, BENCH_INSTRUCTIONS=0 to skip the
-- instruction counts (bench/instructions.lua, under valgrind: about 20 s).
-- It starts nginx (a fixed JSON answer, 127.0.0.1, free ports, everything
-- under a temporary prefix, `daemon off`) and stops it at the end.
local socket = require "socket"

local SECONDS = tonumber(os.getenv("BENCH_SECONDS")) or 0.3
local PURGE_SECONDS = tonumber(os.getenv("BENCH_PURGE_SECONDS")) or 0.5
local ROUNDS = tonumber(os.getenv("BENCH_ROUNDS")) or 5
local NODE_DIR = os.getenv("BENCH_NODE_DIR") or ""
local STAGES = os.getenv("BENCH_STAGES") ~= "0"
local INSTRUCTIONS = os.getenv("BENCH_INSTRUCTIONS") ~= "0"
local PAIRS = tonumber(os.getenv("BENCH_PAIRS")) or 20
local PAIR_SECONDS = tonumber(os.getenv("BENCH_PAIR_SECONDS")) or 0.15
local B = "build/bench/"
local function env(cpath) return "LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='" .. cpath .. ";;' " end
local ENV54, ENVJIT = env("build/?.so"), env("build/luajit/?.so")
-- With the curl_floor module too (bench/interleaved.lua).
local ENV54_FLOOR, ENVJIT_FLOOR = env("build/?.so;build/bench/?.so"), env("build/luajit/?.so;build/bench/luajit/?.so")
local ANSWER = '{"Response":{"TaskId":"1-abcdefgh","RequestId":"r"}}'

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

local function run(cmd)
  local p = assert(io.popen(cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  return out, ok
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- "key<TAB>value" lines -> table (numbers where they parse).
local function parse(out)
  local t = {}
  for k, v in out:gmatch("([%w_]+)\t([^\n]*)") do t[k] = tonumber(v) or v end
  return t
end

local function check(name, out, ok)
  if not ok then error(name .. " failed:\n" .. out, 0) end
  return parse(out)
end

local function free_port()
  local s = assert(socket.bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return port
end

-- ---- nginx ----------------------------------------------------------------
local nginx = {}

function nginx.start()
  local prefix = assert(run("mktemp -d /tmp/lua-ecdn-bench.XXXXXX")):gsub("%s+$", "")
  local fast, logged = free_port(), free_port()
  local conf = ([[
daemon off;
master_process off;
worker_processes 1;
error_log PREFIX/error.log warn;
pid PREFIX/nginx.pid;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path PREFIX/client_body;
  proxy_temp_path PREFIX/proxy;
  fastcgi_temp_path PREFIX/fastcgi;
  uwsgi_temp_path PREFIX/uwsgi;
  scgi_temp_path PREFIX/scgi;
  keepalive_requests 1000000000;
  keepalive_timeout 300s;
  default_type application/json;
  log_format sizes '$request_length $content_length';
  server {
    listen 127.0.0.1:FAST;
    location / { return 200 'ANSWER'; }
  }
  server {
    listen 127.0.0.1:LOGGED;
    access_log PREFIX/sizes.log sizes;
    location / { return 200 'ANSWER'; }
  }
}
]]):gsub("PREFIX", prefix):gsub("FAST", fast):gsub("LOGGED", logged):gsub("ANSWER", ANSWER)
  local f = assert(io.open(prefix .. "/nginx.conf", "w"))
  f:write(conf)
  f:close()
  local pid = run(("nginx -p %s -c %s -e %s > %s 2>&1 & echo $!"):format(q(prefix), q(prefix .. "/nginx.conf"),
    q(prefix .. "/error.log"), q(prefix .. "/stdout.log"))):match("%d+")
  local self = { prefix = prefix, pid = pid, fast = "http://127.0.0.1:" .. fast,
                 logged = "http://127.0.0.1:" .. logged }
  for _ = 1, 100 do
    local c = socket.connect("127.0.0.1", logged)
    if c then
      c:close()
      local c2 = socket.connect("127.0.0.1", fast)
      if c2 then c2:close() return self end
    end
    socket.sleep(0.05)
  end
  local log = run("cat " .. q(prefix .. "/stdout.log") .. " " .. q(prefix .. "/error.log"))
  nginx.stop(self)
  error("nginx did not start:\n" .. log, 0)
end

function nginx.stop(self)
  if self.pid then
    os.execute("kill " .. self.pid .. " 2>/dev/null")
    for _ = 1, 100 do
      if not os.execute("kill -0 " .. self.pid .. " 2>/dev/null") then break end
      socket.sleep(0.02)
    end
  end
  os.execute("rm -rf " .. q(self.prefix))
end

-- ---- the measurements -------------------------------------------------------
local have_jit = exists("build/luajit/ecdn/core.so") and run("command -v luajit"):find("luajit") ~= nil
local sdk = NODE_DIR ~= "" and exists(NODE_DIR .. "/node_modules/tencentcloud-sdk-nodejs/package.json")
            and run("command -v node"):find("node") ~= nil

local best = {}
local function keep(prefix, t, higher)
  for k, v in pairs(t) do
    if type(v) == "number" then
      local key = prefix .. k
      local old = best[key]
      if old == nil or (higher and v > old) or (not higher and v < old) then best[key] = v end
    else
      best[prefix .. k] = v
    end
  end
end

local srv = nginx.start()
local ok, err = pcall(function()
  local reqfile = srv.prefix .. "/purge-request"
  check("bench/purge.lua --request-out",
    run(ENV54 .. "lua5.4 bench/purge.lua " .. srv.fast .. " --request-out " .. q(reqfile)))

  -- The floor sends what the client sends: nginx logs the request sizes on
  -- its second port; both must agree (the signature and timestamp vary,
  -- their lengths do not).
  local function sizes()
    local f = io.open(srv.prefix .. "/sizes.log")
    local t = {}
    if f then
      for l in f:lines() do t[l] = true end
      f:close()
      os.remove(srv.prefix .. "/sizes.log")
      os.execute("kill -USR1 " .. srv.pid) -- reopen the log
      socket.sleep(0.1)
    end
    local list = {}
    for k in pairs(t) do list[#list + 1] = k end
    table.sort(list)
    return table.concat(list, ", ")
  end
  check("purge.lua (sizes)", run(ENV54 .. "lua5.4 bench/purge.lua " .. srv.logged .. " 0.05 --tsv"))
  local ours_sizes = sizes()
  check("curl_floor (sizes)", run(B .. "curl_floor " .. srv.logged .. " 0.05 " .. q(reqfile) .. " --tsv"))
  local floor_sizes = sizes()
  best.same_request = ours_sizes == floor_sizes and ours_sizes ~= ""
  best.sizes = ("client %s, curl floor %s"):format(ours_sizes, floor_sizes)

  for round = 1, ROUNDS do
    io.stderr:write(("bench: round %d of %d\n"):format(round, ROUNDS))
    if sdk then
      keep("", check("node", run("node bench/node_sign3.js " .. q(NODE_DIR) .. " " .. SECONDS .. " --tsv")), true)
    end
    keep("lua54_", check("sign.lua", run(ENV54 .. "lua5.4 bench/sign.lua " .. SECONDS .. " --tsv")), true)
    if have_jit then
      keep("jit_", check("sign.lua (LuaJIT)", run(ENVJIT .. "luajit bench/sign.lua " .. SECONDS .. " --tsv")), true)
    end
    keep("", check("sign_floor", run(B .. "sign_floor " .. SECONDS .. " --tsv")), true)
    local floor = B .. "curl_floor " .. srv.fast .. " " .. PURGE_SECONDS .. " " .. q(reqfile) .. " --tsv"
    keep("", check("curl_floor", run(floor)), false)
    -- The floor driven the way src/http.c drives libcurl.
    keep("http_like_", check("curl_floor --multi --slist-each", run(floor .. " --multi --slist-each")), false)
    keep("lua54_", check("purge.lua", run(ENV54 .. "lua5.4 bench/purge.lua " .. srv.fast .. " " .. PURGE_SECONDS
      .. " --tsv" .. (STAGES and " --stages" or ""))), false)
    if have_jit then
      keep("jit_", check("purge.lua (LuaJIT)", run(ENVJIT .. "luajit bench/purge.lua " .. srv.fast .. " "
        .. PURGE_SECONDS .. " --tsv")), false)
    end
  end
  -- This machine's speed moves by 2-3x within seconds: ours and the floor
  -- are compared in pairs run back to back (each PAIR_SECONDS), and the
  -- ratio is the median of the pairs' ratios.
  local ratios = { lua54_wall = {}, lua54_cpu = {}, jit_wall = {}, jit_cpu = {} }
  -- The order of the runs rotates from pair to pair: no side always runs
  -- first, or right after the same other one.
  local sides = {
    { "floor", "curl_floor", B .. "curl_floor " .. srv.fast .. " " .. PAIR_SECONDS .. " " .. q(reqfile) .. " --tsv" },
    { "lua54", "purge.lua", ENV54 .. "lua5.4 bench/purge.lua " .. srv.fast .. " " .. PAIR_SECONDS .. " --tsv" },
  }
  if have_jit then
    sides[3] = { "jit", "purge.lua (LuaJIT)", ENVJIT .. "luajit bench/purge.lua " .. srv.fast .. " " .. PAIR_SECONDS
      .. " --tsv" }
  end
  for pair = 1, PAIRS do
    io.stderr:write(("bench: pair %d of %d\n"):format(pair, PAIRS))
    local got = {}
    for k = 0, #sides - 1 do
      local side = sides[(pair + k) % #sides + 1]
      got[side[1]] = check(side[2], run(side[3]))
    end
    for _, name in ipairs { "lua54", "jit" } do
      if got[name] then
        table.insert(ratios[name .. "_wall"], got[name].purge_wall_us / got.floor.curl_wall_us)
        table.insert(ratios[name .. "_cpu"], got[name].purge_cpu_us / got.floor.curl_cpu_us)
      end
    end
  end
  for k, list in pairs(ratios) do
    if #list > 0 then
      table.sort(list)
      best["pair_" .. k] = list[math.floor((#list + 1) / 2)]
      best["pair_" .. k .. "_range"] = ("%.1f-%.1f"):format(list[1], list[#list])
    end
  end
  -- The same comparison in one process (bench/interleaved.lua): the floor
  -- as a Lua module and client:purge in alternating batches of 50, a few
  -- milliseconds apart, so both see the machine in the same state. On this
  -- virtual machine what moves the figures most is where the client runs
  -- against nginx: on the same CPU a request costs no wake-up across CPUs
  -- (about 70 us for the floor), on two CPUs it does (150-500 us); left
  -- alone, the scheduler switches between the two. So nginx and the client
  -- are pinned (taskset), both ways, and left alone as well.
  local cpus = tonumber(run("nproc"):match("%d+")) or 1
  local pin = run("command -v taskset"):find("taskset") ~= nil
  local placements = { { "", "" } }
  if pin then
    placements[#placements + 1] = { "same_", "taskset -c 0 ", 0 }
    if cpus >= 2 then placements[#placements + 1] = { "split_", "taskset -c 1 ", 0 } end
  end
  local il = " bench/interleaved.lua " .. srv.fast .. " " .. q(reqfile) .. " --tsv"
  for _, place in ipairs(placements) do
    io.stderr:write(("bench: client:purge and the curl floor in one process%s\n"):format(
      place[3] and (" (pinned: " .. place[1]:gsub("_", "") .. " CPU)") or ""))
    run("taskset -pc " .. (place[3] or ("0-" .. (cpus - 1))) .. " " .. srv.pid .. " >/dev/null 2>&1")
    keep("lua54_" .. place[1], check("interleaved.lua", run(ENV54_FLOOR .. place[2] .. "lua5.4" .. il)), false)
    if have_jit then
      local out, ok = run(ENVJIT_FLOOR .. place[2] .. "luajit" .. il)
      keep("jit_" .. place[1], check("interleaved.lua (LuaJIT)", out, ok), false)
    end
  end
  if pin then run("taskset -pc 0-" .. (cpus - 1) .. " " .. srv.pid .. " >/dev/null 2>&1") end
  -- Instructions do not depend on the machine's load: one run is enough.
  if INSTRUCTIONS and run("command -v valgrind"):find("valgrind") then
    io.stderr:write("bench: counting instructions under callgrind\n")
    keep("", check("instructions.lua", run("lua5.4 bench/instructions.lua " .. srv.fast .. " " .. q(reqfile)
      .. " --tsv")), false)
  end
end)
nginx.stop(srv)
if not ok then error(err, 0) end

-- ---- the table ------------------------------------------------------------------
local function int(n)
  local s = ("%.0f"):format(n)
  return (s:reverse():gsub("(%d%d%d)", "%1,"):reverse():gsub("^,", ""))
end
local function rate(key) return best[key] and (int(best[key]) .. "/s") or "-" end
local function us(key) return best[key] and ("%.1f us"):format(best[key]) or "-" end
local function ratio(a, b, fmt)
  if not (best[a] and best[b]) then return "" end
  return (fmt or "%.1fx"):format(best[a] / best[b])
end

local rows = {}
local function row(what, ours, peer_name, peer, r) rows[#rows + 1] = { what, ours, peer_name, peer, r } end
local function section(title) rows[#rows + 1] = { title } end

local node_name = sdk and "Node SDK sign3" or "Node SDK sign3 (not installed)"
section("TC3 signatures per second (one-URL body, a new payload and timestamp every call; CPU time)")
row("core.sign_tc3, Lua 5.4", rate("lua54_tc3_one"), node_name, rate("node_sign3"),
    ratio("lua54_tc3_one", "node_sign3"))
row("core.sign_tc3, LuaJIT", rate("jit_tc3_one"), node_name, rate("node_sign3"), ratio("jit_tc3_one", "node_sign3"))
row("core.sign_tc3{debug = false}, Lua 5.4", rate("lua54_tc3_one_nodebug"), node_name, rate("node_sign3"),
    ratio("lua54_tc3_one_nodebug", "node_sign3"))
row("core.sign_tc3{debug = false}, LuaJIT", rate("jit_tc3_one_nodebug"), node_name, rate("node_sign3"),
    ratio("jit_tc3_one_nodebug", "node_sign3"))
-- The prepared signer (core.tc3_signer): :authorization gives what sign3
-- gives (the Authorization value); :sign also the headers table.
for _, interp in ipairs { { "lua54_", "Lua 5.4" }, { "jit_", "LuaJIT" } } do
  row("tc3_signer:authorization, " .. interp[2], rate(interp[1] .. "prepared_authorization"), node_name,
      rate("node_sign3"), ratio(interp[1] .. "prepared_authorization", "node_sign3"))
  row("tc3_signer:sign, " .. interp[2], rate(interp[1] .. "prepared_sign"), node_name, rate("node_sign3"),
      ratio(interp[1] .. "prepared_sign", "node_sign3"))
end
row("ecdn_sign_tc3, the C signer (no Lua)", rate("ours_c"), "C floor, day key cached", rate("floor_cached"),
    ratio("ours_c", "floor_cached", "%.2fx"))
row("ecdn_sign_tc3, omit_debug", rate("ours_c_nodebug"), "C floor, day key cached", rate("floor_cached"),
    ratio("ours_c_nodebug", "floor_cached", "%.2fx"))
row("C floor, key chain every signature", rate("floor_fresh"), "one-shot HMAC(), chain each", rate("oneshot_fresh"),
    ratio("floor_fresh", "oneshot_fresh"))
row("C floor, day key cached", rate("floor_cached"), "one-shot HMAC(), key cached", rate("oneshot_cached"),
    ratio("floor_cached", "oneshot_cached"))
row("core.sign_tc3, 1,000-URL body (46 KB), Lua 5.4", rate("lua54_tc3_thousand"), "", "", "")

section("One-URL purge on a kept-alive connection to nginx (return 200), microseconds each (lower is better)")
local PLACES = { { "same_", "nginx and client on one CPU" }, { "split_", "on two CPUs" }, { "", "not pinned" } }
for _, place in ipairs(PLACES) do
  for _, v in ipairs { { "Lua 5.4", "lua54_" }, { "LuaJIT", "jit_" } } do
    local k = v[2] .. place[1] .. "il_"
    if best[k .. "wall_ratio"] then
      local function spread(what)
        return ("%.2fx (%.2f-%.2f)"):format(best[k .. what], best[k .. what .. "_q1"], best[k .. what .. "_q3"])
      end
      row("one process, " .. place[2] .. ", " .. v[1] .. ": wall / CPU", spread("wall_ratio"),
          ("median (quartiles) of %d pairs"):format(best[k .. "pairs"]), spread("cpu_ratio"), "")
      local function both(side) return us(k .. side .. "_wall_us") .. " / " .. us(k .. side .. "_cpu_us") end
      row("  per request (median batch), wall / CPU", both("purge"), "curl floor", both("floor"), "")
    end
  end
end
if best.pair_lua54_wall then
  local function paired(key)
    return ("%.2fx"):format(best["pair_" .. key]) .. " (" .. best["pair_" .. key .. "_range"] .. ")"
  end
  row("client:purge / curl floor, separate processes, Lua 5.4, wall / CPU", paired("lua54_wall"), "median of "
      .. PAIRS .. " back-to-back pairs", paired("lua54_cpu"), "")
  if best.pair_jit_wall then
    row("client:purge / curl floor, separate processes, LuaJIT, wall / CPU", paired("jit_wall"),
        "(range in brackets)", paired("jit_cpu"), "")
  end
end
for _, m in ipairs { { "wall-clock", "wall" }, { "client CPU", "cpu" } } do
  for _, v in ipairs { { "Lua 5.4", "lua54" }, { "LuaJIT", "jit" } } do
    local ours, floor = v[2] .. "_purge_" .. m[2] .. "_us", "curl_" .. m[2] .. "_us"
    row("client:purge, " .. v[1] .. ", " .. m[1] .. " (best runs)", us(ours), "curl floor, " .. m[1], us(floor),
        ratio(ours, floor))
  end
end
section("Where a purge's time goes (Lua 5.4; the curl floor driven the way src/http.c drives libcurl)")
row("curl floor + multi interface, header list each, wall", us("http_like_curl_wall_us"), "curl floor, wall-clock",
    us("curl_wall_us"), ratio("http_like_curl_wall_us", "curl_wall_us"))
row("curl floor + multi interface, header list each, CPU", us("http_like_curl_cpu_us"), "curl floor, client CPU",
    us("curl_cpu_us"), ratio("http_like_curl_cpu_us", "curl_cpu_us"))
if STAGES then
  row("core.http:request alone (src/http.c), wall", us("lua54_stage_send_wall_us"), "the line above",
      us("http_like_curl_wall_us"), ratio("lua54_stage_send_wall_us", "http_like_curl_wall_us"))
  row("core.http:request alone (src/http.c), CPU", us("lua54_stage_send_cpu_us"), "the line above",
      us("http_like_curl_cpu_us"), ratio("lua54_stage_send_cpu_us", "http_like_curl_cpu_us"))
  row("stage: body (request.purge_urls), CPU", us("lua54_stage_body_cpu_us"), "", "", "")
  row("stage: signature (signer.tc3, in Lua), CPU", us("lua54_stage_sign_cpu_us"), "", "", "")
  row("stage: signature (signer.prepare():request), CPU", us("lua54_stage_sign_prepared_cpu_us"), "", "", "")
  row("stage: decoding (decode.task), CPU", us("lua54_stage_decode_cpu_us"), "", "", "")
end
if best.instr_curl then
  local function instr(key) return best[key] and int(best[key]) or "-" end
  section("Instructions per one-URL purge (callgrind, user space; they do not move with the machine's load)")
  row("client:purge, Lua 5.4", instr("instr_purge54"), "curl floor", instr("instr_curl"),
      ratio("instr_purge54", "instr_curl", "%.2fx"))
  row("client:purge, LuaJIT", instr("instr_purgejit"), "curl floor", instr("instr_curl"),
      ratio("instr_purgejit", "instr_curl", "%.2fx"))
  row("  the client's own work, Lua 5.4", best.instr_purge54 and int(best.instr_purge54 - best.instr_curl) or "-",
      "(signing over-counted: valgrind", "has no SHA-NI)", "")
end

-- The bulk engine and the nginx client, each from its own script (their own
-- simulator; the full runs with more cases: bench/bulk.lua, bench/resty_purge.lua).
section("Bulk (issue 9) and OpenResty (issue 10), against the simulator")
local ENV_SPEC = "LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='build/?.so;;' "
local bulk = run(ENV_SPEC .. "lua5.4 bench/bulk.lua job1 2>&1")
local secs, rle, rss = bulk:match("concurrency 4: ([%d.]+) s .-(%d+) RequestLimitExceeded, peak RSS ([%d.]+) MiB")
if secs then
  row("purge_all: 100,000 URLs at 20 req/s, 200 ms RTT", secs .. " s", "floor (100 requests at 20/s)", "5.00 s",
      ("%.2fx"):format(tonumber(secs) / 5))
  row("  its URLs/s, RequestLimitExceeded, peak RSS", int(100000 / tonumber(secs)) .. "/s", rle .. " RLE",
      rss .. " MiB", "")
else
  row("purge_all (bench/bulk.lua)", "failed", bulk:sub(1, 60), "", "")
end
if have_jit and run("command -v nginx"):find("nginx") then
  local resty = run(ENV_SPEC .. "lua5.4 bench/resty_purge.lua 2000 2>&1")
  local one = resty:match("1 light thread%s+%d+ purges%s+(%d+)/s")
  local cpu = resty:match("1 light thread.-client CPU%s+(%d+) us/purge")
  local plain = resty:match("ecdn.client[^\n]-%d+ purges%s+(%d+)/s")
  if one then
    row("resty.ecdn: purges/s, 1 worker, 1 light thread", one .. "/s", "ecdn.client, Lua 5.4", (plain or "?") .. "/s",
        plain and ("%.2fx"):format(tonumber(one) / tonumber(plain)) or "")
    row("  the worker's CPU per purge", (cpu or "?") .. " us", "(the simulator is the limit here)", "", "")
  else
    row("resty.ecdn (bench/resty_purge.lua)", "failed", resty:sub(1, 60), "", "")
  end
else
  row("resty.ecdn per nginx worker", "skipped", "needs nginx and build/luajit", "", "")
end

local w = { 0, 0, 0, 0, 0 }
for _, r in ipairs(rows) do
  if #r > 1 then for i = 1, 5 do w[i] = math.max(w[i], #r[i]) end end
end
print()
print(("lua-ecdn benchmark, best of %d rounds (%s s per signing case, %s s per purge case)"):format(ROUNDS, SECONDS,
  PURGE_SECONDS))
print("The machine has 2 cores shared with other jobs: figures move by 10-30% between runs; ratios within a run are")
print("the figures to compare. " .. (best.lua54_interpreter or "") .. ", " .. (best.jit_interpreter or "no LuaJIT")
  .. ", " .. (run("openssl version"):match("^(%S+ %S+)") or "OpenSSL") .. ", " .. (best.node_sdk or "no Node SDK"))
for _, r in ipairs(rows) do
  if #r == 1 then
    print()
    print(r[1])
  else
    print(("  %-" .. w[1] .. "s  %" .. w[2] .. "s   %-" .. w[3] .. "s  %" .. w[4] .. "s  %s"):format(
      r[1], r[2], r[3], r[4], r[5]))
  end
end
print()
print(("The curl floor sends the same request as client:purge: %s (nginx $request_length: %s)."):format(
  best.same_request and "yes" or "NO", best.sizes or "?"))
if best.node_sign3_wall then
  print(("Node SDK sign3 per second of wall-clock time (its collector runs on the other core): %s/s."):format(
    int(best.node_sign3_wall)))
end
if not sdk then
  print("Node SDK column skipped: set BENCH_NODE_DIR to a directory with tencentcloud-sdk-nodejs in node_modules"
    .. " (make bench installs it into a temporary directory when npm is present).")
end
