-- Simulator throughput: one-URL PurgeUrlsCache requests over 8 keep-alive
-- connections, rate limit off, every request signed with ecdn.core.sign_tc3.
-- The load generator is a Lua 5.4 + cqueues process (one coroutine per
-- connection); the simulator runs in its own process.
--
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' \
--     lua5.4 bench/sim_throughput.lua [seconds=5] [connections=8] [log]
-- With "log" the simulator also writes its --log file (one flushed line per purge).
package.path = "spec/?.lua;" .. package.path -- the simulator launcher lives in spec/support
local cqueues = require "cqueues"
local csocket = require "cqueues.socket"
local gettime = require("socket").gettime
local sim = require "support.sim"

local seconds = tonumber(arg[1]) or 5
local nconn = tonumber(arg[2]) or 8
local with_log = arg[3] == "log"

-- CPU seconds (user + system) the process pid has used so far.
local function cpu_seconds(pid)
  local f = assert(io.open("/proc/" .. pid .. "/stat"))
  local stat = f:read("*a")
  f:close()
  local fields = {}
  for x in stat:match("%) (.*)$"):gmatch("%S+") do fields[#fields + 1] = x end
  return (tonumber(fields[12]) + tonumber(fields[13])) / 100 -- utime, stime in clock ticks (USER_HZ 100)
end

local s = sim.start { args = { "--rate", "0", "--quota", "1000000000", "--seed", "1" }, log = with_log }
local ok, err = pcall(function()
  local cq = cqueues.new()
  local done, failures = 0, 0
  local deadline = gettime() + seconds
  local started = gettime()
  local cpu0 = cpu_seconds(s.pid)

  local function client(n)
    local con = csocket.connect("127.0.0.1", s.port)
    con:setmode("b", "bn")
    local i = 0
    while gettime() < deadline do
      i = i + 1
      local body = string.format('{"Urls":["http://bench.example.com/c%d/%d"]}', n, i)
      local req = sim.build_request(s.port, "PurgeUrlsCache", body)
      assert(con:xwrite(req, "bn"))
      local status = assert(con:xread("*l", "t"))
      local length
      while true do
        local line = assert(con:xread("*l", "t"))
        if line == "" then break end
        length = length or tonumber(line:match("^[Cc]ontent%-[Ll]ength:%s*(%d+)"))
      end
      local rbody = assert(con:xread(length, "b"))
      if status:find(" 200 ", 1, true) and rbody:find('"TaskId"', 1, true) then
        done = done + 1
      else
        failures = failures + 1
      end
    end
    con:close()
  end

  for n = 1, nconn do cq:wrap(client, n) end
  assert(cq:loop())
  local elapsed = gettime() - started
  local busy = (cpu_seconds(s.pid) - cpu0) / elapsed
  local stats = s:stats()
  print(string.format("sim_throughput: %d one-URL purges in %.2f s over %d keep-alive connections%s = %.0f req/s "
                      .. "(%d failures; server saw %d connections; simulator CPU %.0f%% of one core)",
                      done, elapsed, nconn, with_log and " with --log" or "", done / elapsed, failures,
                      stats.connections, busy * 100))
end)
s:stop()
if not ok then error(err, 0) end
