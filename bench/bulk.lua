-- purge_all benchmarks against the simulator (issue 9). Prints; asserts nothing.
--   LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/bulk.lua
-- 1. 100,000 URLs at --rate 20 --delay-ms 200 (a far region's round trip):
--    wall time (the floor is 5.0 s: 100 requests at 20/s), RequestLimitExceeded
--    answers, peak RSS of this process; with the default concurrency (4) and
--    with 8.
-- 2. 20,000 URLs under faults (fail 10%, drop 10%, garbage 5%; half of the
--    drops after the purge was applied): URLs lost, URLs purged twice,
--    requests, retries, time.
-- 3. The job of 1. as a plain loop of client:purge calls (1,000 URLs each).
local ecdn = require "ecdn"
local sim = require "support.sim"
local core = require "ecdn.core"

local function urls(n, tag)
  local t = {}
  for i = 1, n do t[i] = "https://www.example.com/" .. tag .. "/" .. i end
  return t
end

local function peak_rss_kb()
  local f = io.open("/proc/self/status")
  local s = f and f:read("*a") or ""
  if f then f:close() end
  return tonumber(s:match("VmHWM:%s*(%d+)")) or 0
end


local function client(s)
  return assert(ecdn.client { secret_id = s.secret_id, secret_key = s.secret_key, endpoint = s.url })
end

local function rle(s)
  return (s:stats().codes or {})["RequestLimitExceeded"] or 0
end

local function job1(concurrency)
  local s = sim.start { args = { "--rate", "20", "--delay-ms", "200", "--quota", "100000000" } }
  local list = urls(100000, "bench" .. concurrency)
  local rep = assert(client(s):purge_all(list, { concurrency = concurrency }))
  print(string.format("1. purge_all 100,000 URLs, rate 20/s, 200 ms RTT, concurrency %d: %.2f s (floor 5.00 s), "
    .. "%d requests, %d RequestLimitExceeded, peak RSS %.1f MiB, %d purged", concurrency, rep.seconds, rep.requests,
    rle(s), peak_rss_kb() / 1024, rep.ok))
  s:stop()
  return rep.seconds
end

local function job2()
  local s = sim.start { args = { "--rate", "20", "--quota", "100000000", "--fail-rate", "0.1", "--drop-rate", "0.1",
                                 "--garbage-rate", "0.05", "--seed", "42" }, log = true }
  local list = urls(20000, "faults")
  local rep = assert(client(s):purge_all(list, { batch = 100 }))
  local count = s:url_counts()
  local lost, twice = 0, 0
  for _, u in ipairs(list) do
    if not count[u] then lost = lost + 1 elseif count[u] > 1 then twice = twice + 1 end
  end
  print(string.format("2. purge_all 20,000 URLs under faults: %d lost, %d purged twice, %d requests, %d retries, "
    .. "%.2f s, report ok %d / failed %d", lost, twice, rep.requests, rep.retries, rep.seconds, rep.ok, rep.failed))
  s:stop()
end

local function job3(t_bulk)
  local s = sim.start { args = { "--rate", "20", "--delay-ms", "200", "--quota", "100000000" } }
  local list = urls(100000, "loop")
  local c = client(s)
  local t0 = core.now()
  for i = 1, #list, 1000 do
    local part = {}
    for k = i, math.min(#list, i + 999) do part[#part + 1] = list[k] end
    assert(c:purge(part))
  end
  local t = core.now() - t0
  print(string.format("3. the same 100,000 URLs as a loop of purge calls: %.2f s (%.1fx purge_all's time)", t,
    t / t_bulk))
  s:stop()
end

-- `lua5.4 bench/bulk.lua job1`: only the first job (make bench's table).
if arg[1] == "job1" then
  job1(4)
  return
end
local t_bulk = job1(4) -- the default
job1(8)
job2()
job3(t_bulk)
