-- Signing speed of the C signer, in-process, no network:
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/sign.lua [seconds] [--tsv]
--   (LuaJIT: LUA_CPATH='build/luajit/?.so;;' luajit bench/sign.lua)
-- Every call signs a different payload with a different timestamp (nothing
-- can be memoised; only the derived signing key is cached, as in real use),
-- with the key and service of one account. CPU time, in batches of 2,000: the
-- rate is that of the fastest tenth of the batches (the machine is shared).
-- Prints signatures per second for
-- a one-URL body (with and without the debug strings), the prepared signer
-- (core.tc3_signer: :sign, and :authorization, which gives the Authorization
-- value alone as the SDKs' sign3 does), a 1,000-URL body (the payload hash
-- dominates there), and v1 for a one-URL query. --tsv prints
-- "name<TAB>per second" lines for `make bench`.
local core = require "ecdn.core"

local seconds, tsv = 2, false
for _, a in ipairs(arg or {}) do
  if a == "--tsv" then tsv = true else seconds = tonumber(a) or seconds end
end
local clock = os.clock

local function body(n, tag)
  local urls = {}
  for i = 1, n do urls[i] = ('"https://www.example.com/static/%06d-%d.jpg"'):format(i, tag) end
  return '{"Urls":[' .. table.concat(urls, ",") .. "]}"
end

-- The fastest tenth of `samples` (seconds per batch): the machine is shared,
-- and a batch that another job interrupted says nothing about this code.
local function fast_decile(samples)
  table.sort(samples)
  return samples[math.floor(#samples / 10) + 1]
end

-- Runs fn(i) with i = 1, 2, ... in batches of 2,000 (milliseconds each: the
-- collector's work is in them) for `seconds` of CPU time; the rate is that
-- of the fastest tenth of the batches.
local function measure(name, key, fn, bytes)
  local n, samples, t0 = 0, {}, clock()
  local deadline = t0 + seconds
  local b0 = t0
  local now
  repeat
    for _ = 1, 2000 do
      n = n + 1
      fn(n)
    end
    now = clock()
    samples[#samples + 1] = now - b0
    b0 = now
  until now >= deadline
  local rate = 2000 / fast_decile(samples)
  if tsv then
    print(("%s\t%.0f"):format(key, rate))
  else
    print(("%-40s %9.0f signatures/s  %7.2f us each%s"):format(name, rate, 1e6 / rate,
      bytes and ("  %6.0f MB/s hashed"):format(bytes * rate / 1e6) or ""))
  end
end

local ID, KEY = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
local T0 = 1795820000

-- A different payload (cycling through 1,024, or 16 large ones) and timestamp each call.
local function tc3(payloads, debug)
  local np = #payloads
  local t = { secret_id = ID, secret_key = KEY, service = "ecdn", host = "ecdn.tencentcloudapi.com",
              action = "PurgeUrlsCache", version = "2019-10-12", timestamp = T0, payload = payloads[1],
              debug = debug }
  return function(i)
    t.payload = payloads[i % np + 1]
    t.timestamp = T0 + i
    return core.sign_tc3(t)
  end
end

local ones, thousands = {}, {}
for i = 1, 1024 do ones[i] = body(1, i) end
for i = 1, 16 do thousands[i] = body(1000, i) end

measure("sign_tc3, 1 URL (" .. #ones[1] .. " B)", "tc3_one", tc3(ones), #ones[1])
measure("sign_tc3, 1 URL, debug = false", "tc3_one_nodebug", tc3(ones, false), #ones[1])
-- The prepared signer (core.tc3_signer): the account's fields read once.
local prepared = core.tc3_signer { secret_id = ID, secret_key = KEY, service = "ecdn",
                                   host = "ecdn.tencentcloudapi.com", version = "2019-10-12" }
measure("tc3_signer:sign, 1 URL", "prepared_sign", function(i)
  return prepared:sign("PurgeUrlsCache", ones[i % 1024 + 1], T0 + i)
end, #ones[1])
measure("tc3_signer:authorization, 1 URL", "prepared_authorization", function(i)
  return prepared:authorization("PurgeUrlsCache", ones[i % 1024 + 1], T0 + i)
end, #ones[1])
measure("sign_tc3, 1000 URLs (" .. #thousands[1] .. " B)", "tc3_thousand", tc3(thousands), #thousands[1])
local v1 = { secret_id = ID, secret_key = KEY, host = "ecdn.tencentcloudapi.com", action = "PurgeUrlsCache",
             version = "2019-10-12", timestamp = T0, nonce = 1, params = { ["Urls.0"] = "" } }
measure("sign_v1, 1 URL", "v1_one", function(i)
  v1.timestamp, v1.nonce = T0 + i, i
  v1.params["Urls.0"] = ones[i % 1024 + 1]
  return core.sign_v1(v1)
end)
if tsv then
  print("interpreter\t" .. (jit and jit.version or _VERSION))
else
  print("interpreter " .. (jit and jit.version or _VERSION))
end
