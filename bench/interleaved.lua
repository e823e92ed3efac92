-- client:purge against the curl floor in ONE process, in alternating
-- batches: the floor (the curl_floor module, bench/curl_floor_lua.c: the
-- loop of build/bench/curl_floor) and ecdn.client each make BATCH requests
-- in turn, on their own kept-alive connections to the same server, and
-- every pair of batches gives a ratio. This machine's speed moves 2-3x
-- within seconds; batches a few milliseconds apart see the same machine,
-- which separate processes run one after the other do not. The order
-- within a pair alternates, so neither side always runs first.
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;build/bench/?.so;;' \
--     lua5.4 bench/interleaved.lua URL REQUEST_FILE [--rounds N] [--batch K] [--tsv]
-- (LuaJIT: build/luajit/?.so;build/bench/luajit/?.so.) REQUEST_FILE is what
-- bench/purge.lua --request-out writes. Prints the medians of the pairs'
-- ratios (wall-clock, and this thread's CPU) and of each side's
-- microseconds per request.
local ecdn = require "ecdn"
local curl_floor = require "curl_floor"

local url, request_file, tsv
local rounds, batch = 200, 50
do
  local i = 1
  while arg[i] do
    local a = arg[i]
    if a == "--tsv" then tsv = true
    elseif a == "--rounds" then rounds = tonumber(arg[i + 1]); i = i + 1
    elseif a == "--batch" then batch = tonumber(arg[i + 1]); i = i + 1
    elseif not url then url = a
    else request_file = a end
    i = i + 1
  end
end
if not (url and request_file and rounds and batch and rounds >= 2 and rounds % 2 == 0 and batch >= 1) then
  io.stderr:write("usage: bench/interleaved.lua URL REQUEST_FILE [--rounds N (even)] [--batch K] [--tsv]\n")
  os.exit(2)
end

local f = assert(io.open(request_file, "rb"))
local floor = curl_floor.new(url, f:read("*a"))
f:close()

-- As bench/purge.lua: a new URL (and so a new body and signature) per purge.
local URLS = {}
for i = 1, 1024 do URLS[i] = { ("https://www.example.com/static/%06d.jpg"):format(i) } end
local c = assert(ecdn.client { secret_id = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
                               secret_key = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", endpoint = url, rate = 0 })
local n = 0
local function purges(k)
  for _ = 1, k do
    n = n + 1
    local res, err = c:purge(URLS[n % 1024 + 1])
    if not res then error("purge failed: " .. tostring(err)) end
    if res.task_id ~= "1-abcdefgh" then error("unexpected answer: " .. tostring(res.task_id)) end
  end
end
local function floor_requests(k) assert(floor:run(k)) end

-- Each side's wall-clock and CPU seconds for one batch.
local clocks = curl_floor.clocks
local function timed(fn)
  local w0, c0 = clocks()
  fn(batch)
  local w1, c1 = clocks()
  return w1 - w0, c1 - c0
end

purges(200) -- warm-up (connections made here)
floor_requests(200)
local ratio_wall, ratio_cpu, ours_wall, ours_cpu, floor_wall, floor_cpu = {}, {}, {}, {}, {}, {}
for r = 1, rounds do
  local ow, oc, fw, fc
  if r % 2 == 0 then
    ow, oc = timed(purges)
    fw, fc = timed(floor_requests)
  else
    fw, fc = timed(floor_requests)
    ow, oc = timed(purges)
  end
  ratio_wall[r], ratio_cpu[r] = ow / fw, oc / fc
  ours_wall[r], ours_cpu[r], floor_wall[r], floor_cpu[r] = ow, oc, fw, fc
end
c:close()
floor:close()

-- The value at fraction f of the sorted values (0.5: the median).
local function at(t, fraction)
  table.sort(t)
  return t[math.floor((#t - 1) * fraction + 0.5) + 1]
end
local function median(t) return at(t, 0.5) end
local function us(t) return median(t) / batch * 1e6 end
local out = {
  { "il_wall_ratio", median(ratio_wall), "client:purge / curl floor, wall-clock, median of the pairs" },
  { "il_wall_ratio_q1", at(ratio_wall, 0.25), "  its first quartile" },
  { "il_wall_ratio_q3", at(ratio_wall, 0.75), "  its third quartile" },
  { "il_cpu_ratio", median(ratio_cpu), "client:purge / curl floor, CPU, median of the pairs" },
  { "il_cpu_ratio_q1", at(ratio_cpu, 0.25), "  its first quartile" },
  { "il_cpu_ratio_q3", at(ratio_cpu, 0.75), "  its third quartile" },
  { "il_purge_wall_us", us(ours_wall), "client:purge, us wall (median batch)" },
  { "il_floor_wall_us", us(floor_wall), "curl floor, us wall (median batch)" },
  { "il_purge_cpu_us", us(ours_cpu), "client:purge, us CPU (median batch)" },
  { "il_floor_cpu_us", us(floor_cpu), "curl floor, us CPU (median batch)" },
  { "il_pairs", rounds, ("pairs of batches of %d requests"):format(batch) },
}
for _, o in ipairs(out) do
  if tsv then print(("%s\t%.3f"):format(o[1], o[2])) else print(("%-58s %9.3f"):format(o[3], o[2])) end
end
