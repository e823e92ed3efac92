-- Microseconds per one-URL purge with ecdn.client over one kept-alive
-- connection, against a fixed-answer server (`make bench` starts nginx).
-- Each purge has its own URL (body) and is signed anew.
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' \
--     lua5.4 bench/purge.lua URL [seconds] [--tsv] [--request-out FILE] [--stages] [--count N]
-- --request-out FILE: writes the request a purge sends (User-Agent, header
--   lines, empty line, body) for bench/curl_floor.c, then exits.
-- --stages: also times each stage of a purge alone (body, signature,
--   transport through core.http, decoding) to show where the time goes.
-- --count N: after the warm-up, exactly N purges and no output
--   (bench/instructions.lua counts their instructions under callgrind).
-- Wall-clock and CPU (this process) time, each from the fastest tenth of
-- batches of calls; the server's time is in the wall-clock figure only.
local ecdn = require "ecdn"
local core = require "ecdn.core"
local decode = require "ecdn.decode"
local endpoint = require "ecdn.endpoint"
local request = require "ecdn.request"
local services = require "ecdn.services"
local signer = require "ecdn.signer"
local socket = require "socket"

local url, seconds, tsv, request_out, stages, count
do
  local i = 1
  while arg[i] do
    local a = arg[i]
    if a == "--tsv" then tsv = true
    elseif a == "--stages" then stages = true
    elseif a == "--request-out" then request_out = arg[i + 1]; i = i + 1
    elseif a == "--count" then count = tonumber(arg[i + 1]); i = i + 1
    elseif not url then url = a
    else seconds = tonumber(a) end
    i = i + 1
  end
end
if not url then
  io.stderr:write("usage: bench/purge.lua URL [seconds] [--tsv] [--request-out FILE] [--stages]\n")
  os.exit(2)
end
seconds = seconds or 1

local ID, KEY = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
local URLS = {}
for i = 1, 1024 do URLS[i] = { ("https://www.example.com/static/%06d.jpg"):format(i) } end

local target_url, host = assert(endpoint.parse(url))
local target = { url = target_url, host = host, service = "ecdn", version = services.ecdn.version }
local cred = { secret_id = ID, secret_key = KEY }

-- The header lines in the order ecdn.client hands them to libcurl.
local ORDER = { "Authorization", "Content-Type", "Host", "X-TC-Action", "X-TC-Timestamp", "X-TC-Version",
                "X-TC-Region", "X-TC-Token", "X-TC-Language", "X-TC-RequestClient" }

if request_out then
  local body = assert(request.purge_urls(URLS[1]))
  local req = signer.tc3(target, cred, "PurgeUrlsCache", body, os.time())
  local f = assert(io.open(request_out, "wb"))
  f:write("User-Agent: ", core.USER_AGENT, "\n")
  for _, name in ipairs(ORDER) do
    if req.headers[name] then f:write(name, ": ", req.headers[name], "\n") end
  end
  f:write("\n", req.body)
  f:close()
  os.exit(0)
end

local function fast_decile(samples)
  table.sort(samples)
  return samples[math.floor(#samples / 10) + 1]
end

-- Runs fn(i) in batches of `batch` (default 100, several ms: the collector's
-- work is in them) for `secs` (default `seconds`) of
-- wall-clock time; returns wall and CPU us per call, each from the fastest
-- tenth of the batches (the machine is shared: a batch another job
-- interrupted says nothing about this code), and the number of calls.
local function timed(fn, secs, batch)
  secs, batch = secs or seconds, batch or 100
  for i = 1, 200 do fn(i) end -- warm-up (and the connection)
  local n, walls, cpus = 0, {}, {}
  local w0, c0 = socket.gettime(), os.clock()
  local bw, bc = w0, c0
  local w, c
  repeat
    for _ = 1, batch do
      n = n + 1
      fn(n)
    end
    w, c = socket.gettime(), os.clock()
    walls[#walls + 1], cpus[#cpus + 1] = w - bw, c - bc
    bw, bc = w, c
  until w - w0 >= secs
  return fast_decile(walls) / batch * 1e6, fast_decile(cpus) / batch * 1e6, n
end

local interp = jit and jit.version or _VERSION
local out = {}
local CPU_ONLY = math.min(seconds, 0.3) -- stages without I/O need less time to settle
local function report(key, label, wall, cpu, n)
  if tsv then
    out[#out + 1] = ("%s_wall_us\t%.2f\n%s_cpu_us\t%.2f\n%s_requests\t%d"):format(key, wall, key, cpu, key, n)
  else
    out[#out + 1] = ("%-44s %8.1f us wall %8.1f us CPU  (%d calls)"):format(label, wall, cpu, n)
  end
end

local c = assert(ecdn.client { secret_id = ID, secret_key = KEY, endpoint = url, rate = 0 })
local function purge(i)
  local res, err = c:purge(URLS[i % 1024 + 1])
  if not res then error("purge failed: " .. tostring(err)) end
  if res.task_id ~= "1-abcdefgh" then error("unexpected answer: " .. tostring(res.task_id)) end
end
if count then
  for i = 1, 200 do purge(i) end -- the warm-up, as timed() does
  for i = 1, count do purge(i) end
  c:close()
  os.exit(0)
end
report("purge", "client:purge, 1 URL (" .. interp .. ")", timed(purge))

if stages then
  -- Each stage alone, as the client runs it (the C path of client:purge
  -- does stages 1-3 in one call; these are their Lua-facing twins).
  local body = assert(request.purge_urls(URLS[1]))
  report("stage_body", "1. body: request.purge_urls", timed(function(i)
    return request.purge_urls(URLS[i % 1024 + 1])
  end, CPU_ONLY, 2000))
  report("stage_sign", "2. sign: signer.tc3", timed(function(i)
    return signer.tc3(target, cred, "PurgeUrlsCache", body, 1795820000 + i)
  end, CPU_ONLY, 2000))
  local prepared = signer.prepare(target, cred)
  report("stage_sign_prepared", "2. sign: signer.prepare():request", timed(function(i)
    return prepared:request("PurgeUrlsCache", body, 1795820000 + i)
  end, CPU_ONLY, 2000))
  prepared:close()
  local http = core.http { timeout = 10 }
  local req = signer.tc3(target, cred, "PurgeUrlsCache", body, os.time())
  local raw
  report("stage_send", "3. send: core.http:request (same request)", timed(function()
    raw = assert(http:request(req))
  end))
  report("stage_decode", "4. decode: decode.task", timed(function()
    return decode.task(raw)
  end, CPU_ONLY, 2000))
  http:close()
end
c:close()
print(table.concat(out, "\n"))
