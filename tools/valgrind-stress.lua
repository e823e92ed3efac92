-- Stress run for `make valgrind`: creates, uses, closes and collects clients
-- so that memcheck sees every allocation path of the C core.
--   Pure part (STRESS_CLIENTS, default 10000 clients): create with varied
--   options, tostring/info, every local validation error of purge, programming
--   errors raised from C (wrong types, core.new failing half-way), signers
--   (success and refusal); each client is released by close(), by <close>, or
--   by being dropped for the collector, a third each.
--   Network part (STRESS_NET rounds, default 40): a new client per request for
--   success, API errors, connection refused, garbage body, HTTP 5xx, dropped
--   connection and timeout, against simulators on 127.0.0.1 (the simulators
--   run outside valgrind); plus one client reused for STRESS_NET purges.
-- Every call's outcome is checked, so an error path that silently stopped
-- being exercised fails the run. Prints counts per path.
local ecdn = require "ecdn"
local core = require "ecdn.core"
local sim = require "support.sim"

local N = tonumber(os.getenv("STRESS_CLIENTS") or "10000")
local NET = tonumber(os.getenv("STRESS_NET") or "40")
local ID, KEY = sim.DEFAULT_SECRET_ID, sim.DEFAULT_SECRET_KEY
local count = {}
local function tick(name) count[name] = (count[name] or 0) + 1 end

-- expect_err(what, code or nil, f()) : f's two results come last so none is cut.
local function expect_err(what, code, res, err)
  assert(res == nil and type(err) == "table", what .. ": expected an error")
  assert(code == nil or err.code == code, what .. ": got " .. tostring(err.code) .. ", want " .. tostring(code))
  assert(type(tostring(err)) == "string")
  tick(what)
  return err
end

local function expect_raise(what, f, ...)
  local ok, msg = pcall(f, ...)
  assert(not ok and type(msg) == "string", what .. ": expected a Lua error")
  tick(what)
end

-- A to-be-closed variable needs Lua 5.4 syntax; compiled at run time so the
-- file stays parsable by every tool.
local with_close = assert(load([[
  local make, use = ...
  local c <close> = make()
  use(c)
]]))

local TC3 = { secret_id = ID, secret_key = KEY, service = "ecdn", host = "ecdn.tencentcloudapi.com",
              action = "PurgeUrlsCache", version = "2019-10-12", timestamp = 1700000000,
              payload = '{"Urls":["https://a.com/x"]}', region = "ap-guangzhou", token = "tok" }
local V1 = { secret_id = ID, secret_key = KEY, host = "cdn.tencentcloudapi.com", action = "PurgeUrlsCache",
             version = "2018-06-06", timestamp = 1700000000, nonce = 42,
             params = { ["Urls.0"] = "https://a.com/ä b", Limit = 20, Ratio = 0.5 } }

local function pure_round(i)
  local opts = { secret_id = ID .. i, secret_key = KEY, endpoint = "http://127.0.0.1:9" }
  if i % 2 == 0 then opts.token = "token-" .. i; opts.region = "ap-guangzhou" end
  if i % 5 == 0 then opts.service = "cdn"; opts.language = "zh-CN" end
  local function make() return assert(ecdn.client(opts)) end
  local function use(c)
    assert(tostring(c):find("ecdn.client", 1, true))
    assert(c:info().endpoint)
    expect_err("local: empty list", nil, c:purge{})
    expect_err("local: scheme", nil, c:purge{ "ftp://a.com/x" })
    expect_err("local: wildcard", nil, c:purge{ "https://a.com/x", "https://*.a.com/y" })
    expect_err("local: whitespace", nil, c:purge{ "https://a.com/a b" })
    expect_err("local: invalid utf-8", nil, c:purge{ "https://a.com/\xff" })
    expect_err("local: not a string", nil, c:purge{ "https://a.com/x", 42 })
    expect_raise("raise: purge(non-table)", c.purge, c, "https://a.com/x")
    expect_raise("raise: call(bad action)", c.call, c, "not an action")
    expect_raise("raise: _purge(bad timestamp)", c._purge, c, { "https://a.com/x" }, -1)
  end
  local mode = i % 3
  if mode == 0 then
    local c = make()
    use(c)
    assert(c:close())
    assert(c:close()) -- idempotent
    expect_raise("raise: purge after close", c.purge, c, { "https://a.com/x" })
    tick("released: close()")
  elseif mode == 1 then
    with_close(make, use)
    tick("released: <close>")
  else
    use(make())
    tick("released: garbage collector")
  end
  -- Option errors raised from C after some buffers were copied: __gc frees them.
  expect_raise("raise: core.new fails half-way", core.new, { secret_id = "id", secret_key = "k", service = "ecdn",
               host = "h", version = "v", url = "ftp://h/" })
  expect_raise("raise: client{} bad option", ecdn.client, { secret_id = ID, secret_key = KEY, timeout = "1" })
  expect_err("client{} credential error", "ClientError.CredentialError",
             ecdn.client{ secret_id = ID, secret_key = " " .. KEY })
  -- Signers.
  assert(#core.sign_tc3(TC3).signature == 64)
  assert(core.sign_v1(V1).query:find("&Signature=", 1, true))
  expect_raise("raise: sign_tc3 bad field", core.sign_tc3, { secret_id = ID })
  expect_raise("raise: sign_v1 duplicate param", core.sign_v1, setmetatable({ params = { Action = "x" } },
               { __index = V1 }))
  if i % 1000 == 0 then collectgarbage() end
end

local function net_round(s, faults, closed_port)
  local url = { "https://www.example.com/a.jpg", "https://www.example.com/ä\"q\"\\%" }
  local function client(endpoint, extra)
    local o = { secret_id = ID, secret_key = KEY, endpoint = endpoint, timeout = 5 }
    for k, v in pairs(extra or {}) do o[k] = v end
    return assert(ecdn.client(o))
  end
  local c = client(s.url)
  local res = assert(c:purge(url))
  assert(type(res.task_id) == "string")
  assert(c:call("DescribePurgeQuota", {}))
  tick("net: success (purge + call)")
  expect_err("net: api InvalidAction", "InvalidAction", c:call("NoSuchAction", {}))
  -- Credentials replaced on the live client (the old ones are wiped and freed).
  assert(c:set_credentials{ secret_id = ID, secret_key = KEY, token = "tok" })
  expect_err("net: token refused after rotation", "AuthFailure.TokenFailure", c:purge(url))
  assert(c:set_credentials{ secret_id = ID, secret_key = KEY })
  assert(c:purge(url))
  expect_raise("raise: set_credentials on a bad table", c.set_credentials, c, "x")
  tick("net: set_credentials")
  assert(c:purge_paths({ "https://www.example.com/dir/" }, { flush_type = "delete" }))
  tick("net: purge_paths")
  c:close()

  -- Many requests in flight (libcurl multi slots), signature v1, the quota shape.
  local b = client(s.url, { rate = 0 })
  local many = {}
  for i = 1, 40 do many[i] = "https://www.example.com/bulk/" .. i end
  local rep = assert(b:purge_all(many, { batch = 5, concurrency = 4 }))
  assert(rep.ok == 40, "purge_all")
  assert(b:quota().urls.available)
  b:close()
  local v = client(s.url, { signature = "v1", rate = 0 })
  assert(v:purge(url))
  assert(v:call("DescribePurgeQuota", {}))
  v:close()
  tick("net: purge_all, v1, quota")

  -- The pipeline's stages by hand, through the transport userdata.
  local tr = core.http { timeout = 5 }
  local target = { url = s.url, host = s.url:match("^https?://([^/]+)"), service = "ecdn", version = "2019-10-12" }
  local body = assert(require("ecdn.request").purge_urls(url))
  local req = require("ecdn.signer").tc3(target, { secret_id = ID, secret_key = KEY }, "PurgeUrlsCache", body,
                                         os.time())
  assert(require("ecdn.decode").task(tr:request(req)))
  expect_raise("raise: http request without url", tr.request, tr, { body = "x" })
  tr:close()
  tick("net: stages by hand")

  c = client(s.url, { secret_key = KEY .. "x" })
  expect_err("net: api SignatureFailure", "AuthFailure.SignatureFailure", c:purge(url))
  c = nil -- luacheck: ignore
  expect_err("net: refused", "ClientError.NetworkError", client("http://127.0.0.1:" .. closed_port):purge(url))
  expect_err("net: garbage body", "ClientError.ParseJsonError", client(faults.garbage.url):purge(url))
  local _, e = client(faults.fail.url):purge(url)
  assert(e and (e.kind == "http" or e.code == "InternalError"), "fail-rate: " .. tostring(e and e.code))
  tick("net: http 5xx or InternalError")
  expect_err("net: dropped connection", "ClientError.NetworkError", client(faults.drop.url):purge(url))
  local t = client(faults.slow.url, { timeout = 0.05 })
  local err = expect_err("net: timeout", "ClientError.NetworkError", t:purge(url))
  assert(err.detail == "CURLE_OPERATION_TIMEDOUT", tostring(err.detail))
  t:close()
end

local t0 = os.clock()
for i = 1, N do pure_round(i) end
collectgarbage()
collectgarbage()
local t_pure = os.clock() - t0

local servers = {}
local ok, err = pcall(function()
  local args = { "--rate", "0", "--quota", "100000000", "--seed", "1" }
  servers.main = sim.start{ args = args }
  local function fault(...) return sim.start{ args = { "--rate", "0", "--seed", "1", ... } } end
  local faults = { garbage = fault("--garbage-rate", "1"), fail = fault("--fail-rate", "1"),
                   drop = fault("--drop-rate", "1"), slow = fault("--delay-ms", "400") }
  for k, v in pairs(faults) do servers[k] = v end
  local sock = require("socket").bind("127.0.0.1", 0)
  local _, closed_port = sock:getsockname()
  sock:close()
  for _ = 1, NET do net_round(servers.main, faults, closed_port) end
  -- One client reused for many requests (keep-alive path).
  local c = assert(ecdn.client{ secret_id = ID, secret_key = KEY, endpoint = servers.main.url, rate = 0 })
  for _ = 1, NET do assert(c:purge{ "https://www.example.com/k.css" }) end
  tick("net: reused client purges")
  c:close()
  collectgarbage()
  collectgarbage()
end)
for _, s in pairs(servers) do s:stop() end
if not ok then error(err, 0) end

local names = {}
for k in pairs(count) do names[#names + 1] = k end
table.sort(names)
for _, k in ipairs(names) do print(string.format("%8d  %s", count[k], k)) end
print(string.format("stress: %d clients (pure part %.1f s cpu), %d network rounds: ok", N, t_pure, NET))
