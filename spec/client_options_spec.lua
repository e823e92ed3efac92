-- ecdn.client construction, local validation and the userdata's lifecycle:
-- requests go to a closed port at most, except where the lifecycle needs a
-- live connection (the simulator).
local ecdn = require "ecdn"
local gc = require "support.gc"
local proc = require "support.proc"
local raw = require "support.raw"
local sim = require "support.sim"

local ID, KEY = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"

local function new(extra)
  local opts = { secret_id = ID, secret_key = KEY, endpoint = "http://127.0.0.1:" .. proc.closed_port() }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return assert(ecdn.client(opts))
end

describe("ecdn.client options", function()
  it("raises on an unknown option name or a wrong type", function()
    assert.has_error(function() ecdn.client { secret_id = ID, secret_key = KEY, secretkey = "x" } end,
      "ecdn.client: unknown option 'secretkey'")
    assert.has_error(function() ecdn.client { secret_id = ID, secret_key = KEY, timeout = "10" } end,
      "ecdn.client: field 'timeout' must be a number (got string)")
    assert.has_error(function() ecdn.client "x" end, "ecdn.client: options must be a table (got string)")
    assert.has_error(function() ecdn.client { secret_id = ID, secret_key = KEY, service = "cvm" } end)
    assert.has_error(function() ecdn.client { secret_id = ID, secret_key = KEY, language = "fr" } end)
    assert.has_error(function() ecdn.client { secret_id = ID, secret_key = KEY, endpoint = "ftp://x" } end)
    assert.has_error(function() ecdn.client { secret_id = ID, secret_key = KEY, endpoint = "https://h/p" } end)
    assert.has_error(function() ecdn.client { secret_id = ID, secret_key = KEY, timeout = -1 } end)
    assert.has_error(function() ecdn.client { secret_id = ID, secret_key = KEY, timeout = 0 / 0 } end)
  end)

  it("refuses a clock that does not give unix seconds", function()
    for _, bad in ipairs { "1700000000", -1, 0 / 0 } do
      assert.has_error(function()
        ecdn.client { secret_id = ID, secret_key = KEY, clock = function() return bad end }
      end, "ecdn.client: clock() must return unix seconds")
    end
  end)

  it("a clock that goes bad later fails each call before the limiter is asked, with the same message", function()
    local bad, acquired = false, 0
    local counting = { take = function() return 0 end, penalize = function() end,
                       acquire = function() acquired = acquired + 1 end }
    local c = new { clock = function() if bad then return -1 end return os.time() end, limiter = counting }
    bad = true
    for _, call in ipairs { function() c:purge { "https://a.example.com/x" } end,
                            function() c:call("DescribePurgeQuota", {}) end } do
      local ok, err = pcall(call)
      assert.is_false(ok)
      assert.equal("ecdn.client: clock() must return unix seconds", err)
    end
    assert.equal(0, acquired)
    c:close()
  end)

  it("refuses ids and keys with surrounding whitespace, without echoing them", function()
    for _, opts in ipairs {
      { secret_id = " " .. ID, secret_key = KEY },
      { secret_id = ID, secret_key = KEY .. "\n" },
      { secret_id = ID .. "\t", secret_key = KEY },
    } do
      local c, err = ecdn.client(opts)
      assert.is_nil(c)
      assert.equal("ClientError.CredentialError", err.code)
      assert.equal("client", err.kind)
      assert.is_false(err.retryable)
      assert.is_nil(tostring(err):find(KEY, 1, true))
      assert.is_nil(tostring(err):find(ID, 1, true))
    end
  end)

  it("reports a missing half of the credentials", function()
    local _, err = ecdn.client { secret_id = ID }
    assert.equal("ClientError.CredentialError", err.code)
    _, err = ecdn.client { secret_id = ID, secret_key = "" }
    assert.equal("ClientError.CredentialError", err.code)
  end)

  it("shows only the endpoint and 8 characters of the SecretId in tostring", function()
    local c = new { token = "TOKENSECRET" }
    local s = tostring(c)
    assert.truthy(s:find(ID:sub(1, 8), 1, true))
    assert.is_nil(s:find(ID:sub(1, 9), 1, true))
    assert.is_nil(s:find(KEY, 1, true))
    assert.is_nil(s:find("TOKENSECRET", 1, true))
    assert.truthy(s:find("http://127.0.0.1:", 1, true))
    c:close()
  end)

  it("defaults the endpoint and version from the service", function()
    local e = assert(ecdn.client { secret_id = ID, secret_key = KEY }):info()
    assert.same({ "ecdn", "https://ecdn.tencentcloudapi.com/", "ecdn.tencentcloudapi.com", "2019-10-12" },
      { e.service, e.endpoint, e.host, e.version })
    local c = assert(ecdn.client { secret_id = ID, secret_key = KEY, service = "cdn" }):info()
    assert.same({ "cdn", "https://cdn.tencentcloudapi.com/", "cdn.tencentcloudapi.com", "2018-06-06" },
      { c.service, c.endpoint, c.host, c.version })
  end)

  it("close() is idempotent and a closed client raises at the caller's line", function()
    local c = new()
    assert.is_true(c:close())
    assert.is_true(c:close())
    assert.equal("ecdn.client (closed)", tostring(c))
    local ok, msg = pcall(function() c:purge { "https://www.example.com/a" } end)
    assert.is_false(ok)
    assert.truthy(msg:find("^spec/client_options_spec%.lua:%d+: ecdn%.client:purge: the client is closed$"), msg)
    assert.is_true(c:info().closed)
  end)

  -- The destructor really runs: the client's connection (a file descriptor
  -- of this process) is gone after close(), after <close> and after the
  -- collector took an unreachable client.
  it("close, __gc and __close each close the connection", function()
    local s = sim.start { args = { "--rate", "0" } }
    finally(function() s:stop() end)
    local fds = proc.open_fds
    local function connected()
      local c = new { endpoint = "http://127.0.0.1:" .. s.port, secret_id = s.secret_id, secret_key = s.secret_key }
      assert(c:purge { "https://www.example.com/gc" })
      return c
    end
    collectgarbage()
    collectgarbage()
    local base = fds()
    local c = connected()
    assert.is_true(fds() > base)
    c:close()
    assert.equal(base, fds(), "close()")
    c = nil -- luacheck: ignore 311
    connected() -- unreachable at once
    assert.is_true(fds() > base)
    collectgarbage()
    collectgarbage()
    assert.equal(base, fds(), "__gc")
    if _VERSION == "Lua 5.4" and not jit then
      local chunk = assert(load([[
        local connected, fds, base = ...
        do
          local x <close> = connected()
          assert(fds() > base)
        end
        return fds()
      ]]))
      assert.equal(base, chunk(connected, fds, base), "__close")
    end
  end)

  -- A finalizer may close the client while C reports answers through Lua
  -- (under make asan: no use of freed memory). The close is put off until
  -- _wait returns; calls that allocate re-check before they send.
  it("a close() from a finalizer in the middle of a call takes effect when the call is over", function()
    local endpoint, pid, requests = raw.start("ok")
    finally(function()
      proc.kill(pid)
      os.remove(requests)
    end)
    finally(gc.restless())
    -- (Lua 5.2 and 5.3 collect far more slowly with a pause of 0: fewer rounds there.)
    local rounds = (_VERSION == "Lua 5.2" or _VERSION == "Lua 5.3") and 30 or 300
    local closed_clients = {}
    for round = 1, rounds do
      local c = new { endpoint = endpoint, rate = 0 }
      local function on_gc() c:close() end
      for i = 1, 3 do
        assert(c:_start("PurgeUrlsCache", '{"Urls":["https://www.example.com/close/' .. round .. "-" .. i .. '"]}'))
      end
      local got = 0
      while got < 3 do
        for _ = 1, 100 do
          gc.garbage(on_gc)
        end
        local ok, r = pcall(c._wait, c, 1)
        if not ok then
          assert.matches("closed", r) -- closed before _wait began
          break
        end
        got = got + #r
      end
      closed_clients[#closed_clients + 1] = c
    end
    collectgarbage()
    collectgarbage()
    for _, c in ipairs(closed_clients) do
      assert.is_true(c:info().closed)
      assert.has_error(function() c:purge { "https://www.example.com/after" } end)
    end
  end)

  it("signs and sends the endpoint's host in lower case, as the canonical form has it", function()
    local c = new { endpoint = "https://ECDN.TencentCloudAPI.com:8443" }
    assert.equal("ecdn.tencentcloudapi.com:8443", c:info().host)
    assert.equal("https://ecdn.tencentcloudapi.com:8443/", c:info().endpoint)
    c:close()
  end)

  it("hides its metatable", function()
    assert.equal("ecdn.client", getmetatable(new()))
  end)
end)

describe("ecdn.client credentials from the environment", function()
  local function run(env, code)
    return proc.run(env .. " " .. proc.env .. " " .. proc.lua .. " -e " .. proc.quote(code) .. " 2>&1")
  end

  it("reads TENCENTCLOUD_SECRET_ID/KEY/SESSION_TOKEN", function()
    local out = run("TENCENTCLOUD_SECRET_ID=AKIDfromenv1234 TENCENTCLOUD_SECRET_KEY=k TENCENTCLOUD_SESSION_TOKEN=t",
      [[local c = assert(require("ecdn").client()) io.write(tostring(c))]])
    assert.truthy(out:find("secret_id AKIDfrom...", 1, true), out)
  end)

  it("never quotes a proxy taken from the environment in an error", function()
    local out = run("http_proxy='socks9://alice:S3cretPass@127.0.0.1:1' https_proxy= all_proxy=",
      [[local c = assert(require("ecdn").client{ secret_id = "AKIDx", secret_key = "k",
          endpoint = "http://127.0.0.1:1" })
        local _, e = c:purge{ "https://www.example.com/" } io.write(e.kind, " ", tostring(e))]])
    assert.truthy(out:find("^network "), out)
    assert.is_nil(out:find("S3cretPass", 1, true), out)
  end)

  it("returns CredentialError when neither fields nor variables are set", function()
    local out = run("env -u TENCENTCLOUD_SECRET_ID -u TENCENTCLOUD_SECRET_KEY",
      [[local c, e = require("ecdn").client() io.write(tostring(c), " ", e.code, " ", e.kind)]])
    assert.equal("nil ClientError.CredentialError client", out)
  end)
end)

describe("client:purge local validation", function()
  local c
  setup(function() c = new() end)
  teardown(function() c:close() end)

  local function refused(urls)
    local res, err = c:purge(urls)
    assert.is_nil(res)
    assert.equal("client", err.kind)
    assert.is_false(err.retryable)
    return err
  end

  it("raises for a non-table argument", function()
    local ok, msg = pcall(function() c:purge("https://www.example.com/") end)
    assert.is_false(ok)
    local want = "^spec/client_options_spec%.lua:%d+: ecdn%.client:purge: urls must be a table %(got string%)$"
    assert.truthy(msg:find(want), msg)
    assert.has_error(function() c:purge() end)
  end)

  it("refuses an empty list", function()
    local err = refused {}
    assert.equal("ClientError.InvalidParameter", err.code)
    assert.is_nil(err.index)
  end)

  it("names the 1-based index and the reason", function()
    local cases = {
      { { "https://a.example.com/", 42 }, 2, "not_string" },
      { { "https://a.example.com/", "https://a.example.com/", {} }, 3, "not_string" },
      { { "www.example.com/a" }, 1, "scheme" },
      { { "ftp://www.example.com/a" }, 1, "scheme" },
      { { "https:///a" }, 1, "no_host" },
      { { "https://www.example.com/a b" }, 1, "space" },
      { { " https://www.example.com/a" }, 1, "space" },
      { { "https://www.example.com/a\n" }, 1, "space" },
      { { "https://www.example.com/a\0b" }, 1, "control" },
      { { "https://www.example.com/a\127" }, 1, "control" },
      { { "https://www.example.com/a\194\160" }, 1, "space" },    -- U+00A0
      { { "https://www.example.com/\227\128\128" }, 1, "space" }, -- U+3000
      { { "https://www.example.com/\255" }, 1, "utf8" },
      { { "https://www.example.com/\237\160\128" }, 1, "utf8" },  -- a surrogate
    }
    for _, case in ipairs(cases) do
      local err = refused(case[1])
      assert.equal("ClientError.InvalidParameter", err.code)
      assert.equal(case[2], err.index)
      assert.equal(case[3], err.problem)
      assert.truthy(err.message:find("URL #" .. case[2], 1, true), err.message)
    end
  end)

  it("reports problems in list order, a bad URL before a later non-string", function()
    local err = refused { "https://a.example.com/", "ftp://b.example.com/", 7 }
    assert.equal(2, err.index)
    assert.equal("scheme", err.problem)
    err = refused { 7, "ftp://b.example.com/" }
    assert.equal(1, err.index)
    assert.equal("not_string", err.problem)
  end)

  it("refuses a list with holes at the first hole, without sizing anything by its raw length", function()
    local urls = { "https://a.example.com/", "https://b.example.com/" }
    for bit = 2, 40 do urls[2 ^ bit] = "https://c.example.com/" end -- #urls may be 2^40
    local err = refused(urls)
    assert.equal(3, err.index)
    assert.equal("not_string", err.problem)
  end)

  it("accepts any case in the scheme (it is case-insensitive) and sends the URL", function()
    local _, err = c:purge { "HTTPS://www.example.com/A", "Http://www.example.com/b" }
    assert.equal("network", err.kind) -- got past validation to the (closed) port
  end)

  it("uses the service's own code for a wildcard host", function()
    local err = refused { "https://www.example.com/", "https://*.example.com/a.jpg" }
    assert.equal("InvalidParameter.EcdnPurgeWildcardNotAllowed", err.code)
    assert.equal(2, err.index)
    local cdn = new { service = "cdn" }
    local _, e2 = cdn:purge { "http://*.example.com/" }
    assert.equal("InvalidParameter.CdnPurgeWildcardNotAllowed", e2.code)
    cdn:close()
  end)

  it("checks call's arguments", function()
    assert.has_error(function() c:call("purge urls", {}) end)
    assert.has_error(function() c:call(nil, {}) end)
    assert.has_error(function() c:call("DescribePurgeQuota", "x") end)
    assert.has_error(function() c:call("DescribePurgeQuota", { f = function() end }) end)
  end)
end)
