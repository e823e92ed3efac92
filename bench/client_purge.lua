-- Throughput of client:purge against the local simulator (which is usually
-- the bottleneck: it is pure Lua). Prints one line per case.
--   LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='build/?.so;;' lua5.4 bench/client_purge.lua
--   (LuaJIT: LUA_CPATH='build/luajit/?.so;;' luajit bench/client_purge.lua)
local ecdn = require "ecdn"
local sim = require "support.sim"
local socket = require "socket"

local s = sim.start { args = { "--rate", "0", "--quota", "1000000000", "--batch", "1000" } }

local function client()
  return assert(ecdn.client { secret_id = s.secret_id, secret_key = s.secret_key, endpoint = s.url, rate = 0 })
end

local function urls(n, tag)
  local t = {}
  for i = 1, n do t[i] = "https://www.example.com/" .. tag .. "/" .. i .. "/图片-\"q\"-%20.jpg" end
  return t
end

local function case(name, requests, per_request, fn)
  local t0 = socket.gettime()
  for i = 1, requests do fn(i) end
  local dt = socket.gettime() - t0
  print(string.format("%-44s %6d requests %8.0f req/s %9.0f URLs/s %7.3f ms/request",
    name, requests, requests / dt, requests * per_request / dt, dt * 1000 / requests))
end

local ok, err = pcall(function()
  local c = client()
  local one = urls(1, "one")
  case("1 URL, one kept-alive client", 1000, 1, function() assert(c:purge(one)) end)
  local many = urls(1000, "many")
  case("1000 URLs, one kept-alive client", 50, 1000, function() assert(c:purge(many)) end)
  c:close()
  case("1 URL, new client (new connection) each", 300, 1, function()
    local f = client()
    assert(f:purge(one))
    f:close()
  end)
  local cc = client()
  local bad = urls(1000, "bad")
  bad[1000] = "https://*.example.com/x"
  case("1000 URLs refused locally (validation only)", 2000, 1000, function() assert(not cc:purge(bad)) end)
  cc:close()
  print(string.format("interpreter %s; simulator connections %d", jit and jit.version or _VERSION,
    s:stats().connections))
end)
s:stop()
if not ok then error(err, 0) end
