-- Signing speed of the C signer, in-process, no network:
--   LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/sign.lua [seconds]
--   (LuaJIT: LUA_CPATH='build/luajit/?.so;;' luajit bench/sign.lua)
-- Prints signatures per second for a one-URL body and a 1,000-URL body (the
-- payload hash dominates there), and v1 for a one-URL query.
local core = require "ecdn.core"
local seconds = tonumber(arg and arg[1]) or 2
local clock = os.clock

local function body(n)
  local urls = {}
  for i = 1, n do urls[i] = ('"https://www.example.com/static/%06d.jpg"'):format(i) end
  return '{"Urls":[' .. table.concat(urls, ",") .. "]}"
end

local function measure(name, fn, bytes)
  local n, t0 = 0, clock()
  local deadline = t0 + seconds
  repeat
    for _ = 1, 100 do fn() end
    n = n + 100
  until clock() >= deadline
  local dt = clock() - t0
  print(("%-36s %9.0f signatures/s  %7.2f us each%s"):format(name, n / dt, dt / n * 1e6,
    bytes and ("  %6.0f MB/s hashed"):format(bytes * n / dt / 1e6) or ""))
end

local function tc3(payload)
  local t = { secret_id = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", secret_key = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
              service = "ecdn", host = "ecdn.tencentcloudapi.com", action = "PurgeUrlsCache",
              version = "2019-10-12", timestamp = 1795820000, payload = payload }
  return function() return core.sign_tc3(t) end
end

local one, thousand = body(1), body(1000)
measure("sign_tc3, 1 URL (" .. #one .. " B)", tc3(one), #one)
measure("sign_tc3, 1000 URLs (" .. #thousand .. " B)", tc3(thousand), #thousand)
local v1 = { secret_id = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", secret_key = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
             host = "ecdn.tencentcloudapi.com", action = "PurgeUrlsCache", version = "2019-10-12",
             timestamp = 1795820000, nonce = 1, params = { ["Urls.0"] = "https://www.example.com/a.jpg" } }
measure("sign_v1, 1 URL", function() return core.sign_v1(v1) end)
print("interpreter " .. (jit and jit.version or _VERSION))
