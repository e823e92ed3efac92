-- resty.ecdn in one nginx worker against the local simulator (no rate limit
-- anywhere), beside ecdn.client in plain Lua: one-URL purges per second and
-- CPU per purge (the nginx worker's, from /proc/<pid>/stat; this process's
-- for ecdn.client; the simulator's for both, as it is usually the limit).
-- Prints, asserts nothing. Needs `make LUA=luajit` (nginx loads build/luajit).
--   LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/resty_purge.lua [N]
--   (LuaJIT: LUA_CPATH='build/luajit/?.so;;' luajit bench/resty_purge.lua)
local cjson = require "cjson"
local ecdn = require "ecdn"
local nginx = require "support.nginx"
local proc = require "support.proc"
local sim = require "support.sim"
local socket = require "socket"

local N = tonumber(arg and arg[1]) or 3000
local TICK = tonumber((proc.run("getconf CLK_TCK"))) or 100

-- {user, sys} CPU seconds of a process (utime, stime: fields 14 and 15 of proc(5)).
local function cpu(pid)
  local stat = assert(proc.read_file(string.format("/proc/%d/stat", pid)))
  local rest = stat:match("^%d+ %b() (.*)$")
  local f = {}
  for x in rest:gmatch("%S+") do f[#f + 1] = x end
  return { tonumber(f[12]) / TICK, tonumber(f[13]) / TICK }
end

local function used(a, b) return { b[1] - a[1], b[2] - a[2] } end

-- This process: os.clock() is user + sys; /proc/self/stat splits them.
local function self_cpu() return cpu(tonumber(proc.read_file("/proc/self/stat"):match("^(%d+)"))) end

local s = sim.start { args = { "--rate", "0", "--quota", "1000000000" } }
local n

local function line(name, count, wall, own, simc)
  local us = 1e6 / count
  print(string.format("%-42s %5d purges %6.0f/s  client CPU %4.0f us/purge (user %3.0f, sys %3.0f)"
    .. "  simulator %4.0f us/purge", name, count, count / wall, (own[1] + own[2]) * us, own[1] * us,
    own[2] * us, (simc[1] + simc[2]) * us))
end

local ok, err = pcall(function()
  n = nginx.start {
    workers = 1,
    vars = { sim = s.port, id = s.secret_id, key = s.secret_key },
    http = [[
      init_by_lua_block {
        local ecdn = require "resty.ecdn"
        client = assert(ecdn.new { endpoint = "http://127.0.0.1:${sim}", secret_id = "${id}",
                                   secret_key = "${key}", rate = 0, keepalive_pool = 64 })
      }
    ]],
    server = [[
      location = /bench { content_by_lua_block {
        local n, c = tonumber(ngx.var.arg_n), tonumber(ngx.var.arg_c)
        local urls = { "https://www.example.com/bench/a.jpg" }
        local started, fails, first_err = 0, 0, nil
        local function run()
          while started < n do
            started = started + 1
            local res, err = client:purge(urls)
            if not res then
              fails = fails + 1
              first_err = first_err or tostring(err)
            end
          end
        end
        ngx.update_time()
        local t0 = ngx.now()
        local threads = {}
        for i = 1, c do threads[i] = ngx.thread.spawn(run) end
        for i = 1, c do ngx.thread.wait(threads[i]) end
        ngx.update_time()
        ngx.say(require("cjson").encode { wall = ngx.now() - t0, fails = fails, err = first_err,
                                          pid = ngx.worker.pid() })
      } }
    ]],
  }

  local function resty_case(name, count, threads)
    local probe = cjson.decode((select(2, n:get("/bench?n=1&c=1"))))
    local w0, s0 = cpu(probe.pid), cpu(s.pid)
    local status, body = n:get("/bench?n=" .. count .. "&c=" .. threads, { timeout = 600 })
    assert(status == 200, body)
    local r = cjson.decode(body)
    local w1, s1 = cpu(r.pid), cpu(s.pid)
    if r.fails > 0 then print("  " .. r.fails .. " failed, first: " .. tostring(r.err)) end
    line(name, count, r.wall, used(w0, w1), used(s0, s1))
  end

  resty_case("(warm-up)", 300, 4)
  resty_case("resty.ecdn, 1 worker, 1 light thread", N, 1)
  resty_case("resty.ecdn, 1 worker, 8 light threads", N, 8)

  -- ecdn.client, sequential, one kept-alive connection (its own limiter off
  -- where the client has one)
  local opts = { secret_id = s.secret_id, secret_key = s.secret_key, endpoint = s.url, rate = 0 }
  local okc, c = pcall(ecdn.client, opts)
  if not okc then
    opts.rate = nil
    c = assert(ecdn.client(opts))
  end
  local urls = { "https://www.example.com/bench/a.jpg" }
  for _ = 1, 300 do assert(c:purge(urls)) end
  local c0, s0, t0 = self_cpu(), cpu(s.pid), socket.gettime()
  for _ = 1, N do assert(c:purge(urls)) end
  local wall = socket.gettime() - t0
  line("ecdn.client (" .. (jit and "LuaJIT" or _VERSION) .. "), sequential", N, wall, used(c0, self_cpu()),
       used(s0, cpu(s.pid)))
  c:close()
  print(string.format("nginx %s; %d CPU cores; simulator connections %d",
    (proc.run("/usr/sbin/nginx -v 2>&1")):match("nginx/(%S+)") or "?",
    tonumber((proc.run("nproc"))) or 0, s:stats().connections))
end)
if n then n:stop() end
s:stop()
if not ok then error(err, 0) end
