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
local core = require "ecdn.core"

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

  -- A lean client, so the generator costs less than the server: one sign_tc3
  -- call, one formatted request, responses parsed from a read buffer.
  local host = "127.0.0.1:" .. s.port
  local function request(body)
    local ts = os.time()
    local signed = core.sign_tc3 { secret_id = s.secret_id, secret_key = s.secret_key, service = "ecdn",
                                   host = host, action = "PurgeUrlsCache", version = "2019-10-12",
                                   timestamp = ts, payload = body }
    return string.format("POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                         .. "X-TC-Action: PurgeUrlsCache\r\nX-TC-Version: 2019-10-12\r\nX-TC-Timestamp: %d\r\n"
                         .. "Authorization: %s\r\nContent-Length: %d\r\n\r\n%s",
                         host, ts, signed.authorization, #body, body)
  end

  local function client(n)
    local con = csocket.connect("127.0.0.1", s.port)
    con:setmode("b", "bn")
    local buf = ""
    local function response() -- status text, body
      while true do
        local head_end = buf:find("\r\n\r\n", 1, true)
        if head_end then
          local length = tonumber(buf:sub(1, head_end):match("\n[Cc]ontent%-[Ll]ength:%s*(%d+)"))
          local stop = head_end + 3 + length
          if #buf >= stop then
            local status, body = buf:sub(10, 12), buf:sub(head_end + 4, stop)
            buf = buf:sub(stop + 1)
            return status, body
          end
        end
        buf = buf .. assert(con:xread(-65536, "b"))
      end
    end
    local i = 0
    while gettime() < deadline do
      i = i + 1
      assert(con:xwrite(request(string.format('{"Urls":["http://bench.example.com/c%d/%d"]}', n, i)), "bn"))
      local status, rbody = response()
      if status == "200" and rbody:find('"TaskId"', 1, true) then
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
