-- The prepared TC3 signer (core.tc3_signer, issue 12): the fields of one
-- account read and checked once, the day's signing key kept. It must sign
-- exactly as core.sign_tc3 does (which the official vectors and an
-- independent implementation pin down), derive a new key for every UTC
-- date, never see later changes to the table it was made from, refuse bad
-- fields and arguments with clear messages, and wipe itself on close.
local core = require "ecdn.core"
local signer = require "ecdn.signer"

local gc = require "support.gc"
local openssl = require "support.openssl"

local ID, KEY = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
local P1 = '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
local VECTOR_A = "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"

-- Rounds of the finalizer specs: a restless collector makes Lua 5.2 and 5.3
-- slow (a minute for the full count), and the asan suite runs 5.4.
local ROUNDS = (_VERSION == "Lua 5.4" or rawget(_G, "jit")) and 2000 or 300

local function fields(over)
  local t = { secret_id = ID, secret_key = KEY, service = "cvm", host = "cvm.tencentcloudapi.com",
              version = "2017-03-12", content_type = "application/json; charset=utf-8" }
  for k, v in pairs(over or {}) do t[k] = v end
  return t
end

-- sign_tc3's table for the same signature.
local function one_shot(f, action, payload, ts)
  local t = {}
  for k, v in pairs(f) do t[k] = v end
  t.action, t.payload, t.timestamp = action, payload, ts
  return core.sign_tc3(t)
end

local function same_result(want, got, what)
  for _, k in ipairs { "signature", "authorization", "canonical_request", "string_to_sign" } do
    assert.equal(want[k], got[k], what .. ": " .. k)
  end
  for name, value in pairs(want.headers) do assert.equal(value, got.headers[name], what .. ": " .. name) end
  for name in pairs(got.headers) do assert.is_not_nil(want.headers[name], what .. ": extra header " .. name) end
end

-- Random printable text of 1..n bytes (no CR, LF or NUL).
local function text(n)
  local t = {}
  for i = 1, math.random(1, n) do t[i] = string.char(math.random(32, 126)) end
  return table.concat(t)
end

describe("core.tc3_signer", function()
  it("reproduces official vector A with :sign and :authorization", function()
    local s = core.tc3_signer(fields())
    assert.equal(VECTOR_A, s:sign("DescribeInstances", P1, 1551113065).signature)
    assert.equal("TC3-HMAC-SHA256 Credential=" .. ID .. "/2019-02-25/cvm/tc3_request, SignedHeaders=content-type;host, "
      .. "Signature=" .. VECTOR_A, s:authorization("DescribeInstances", P1, 1551113065))
  end)

  it("signs exactly as sign_tc3 does, over 2,000 random accounts and requests", function()
    math.randomseed(12)
    for i = 1, 2000 do
      local f = {
        secret_id = text(40), secret_key = text(64), service = text(12), host = text(40), version = text(12),
        region = math.random() < 0.5 and text(16) or nil, token = math.random() < 0.3 and text(200) or nil,
        language = math.random() < 0.3 and text(8) or nil,
        content_type = math.random() < 0.3 and text(40) or nil, sign_action = math.random() < 0.5,
      }
      local s = core.tc3_signer(f)
      for _ = 1, 3 do
        local action, payload = text(30), text(300)
        local ts = math.floor(math.random() * 4102444800) -- (5.1's random takes no range this wide)
        local want = one_shot(f, action, payload, ts)
        local got = s:sign(action, payload, ts, true)
        same_result(want, got, "case " .. i)
        local lean = s:sign(action, payload, ts)
        assert.is_nil(lean.canonical_request)
        assert.is_nil(lean.string_to_sign)
        assert.equal(want.signature, lean.signature)
        assert.equal(want.authorization, s:authorization(action, payload, ts))
      end
      s:close()
    end
  end)

  it("derives each UTC day's key on its own across midnight, and back (checked with openssl)", function()
    local s = core.tc3_signer(fields())
    local midnight = 1551139200 -- 2019-02-26T00:00:00Z
    for _, ts in ipairs { midnight - 1, midnight, midnight + 1, midnight - 1, midnight + 86400, midnight } do
      local q = fields()
      q.action, q.payload, q.timestamp = "DescribeInstances", P1, ts
      local want = openssl.tc3(q)
      local got = s:sign("DescribeInstances", P1, ts)
      assert.equal(want.signature, got.signature, "at " .. ts)
      assert.truthy(got.authorization:find("/" .. want.date .. "/cvm/", 1, true), got.authorization)
    end
  end)

  it("keeps its own copy of the fields: later changes to the table do not reach it", function()
    local f = fields()
    local s = core.tc3_signer(f)
    f.secret_key, f.secret_id, f.host, f.service = "another key", "AKIDother", "x.example.com", "cdn"
    f = nil -- luacheck: ignore 311
    collectgarbage()
    collectgarbage()
    assert.equal(VECTOR_A, s:sign("DescribeInstances", P1, 1551113065).signature)
    assert.equal("cvm.tencentcloudapi.com", s:sign("DescribeInstances", P1, 1551113065).headers.Host)
  end)

  it("gives a different key a different signature (two signers side by side)", function()
    local a = core.tc3_signer(fields())
    local b = core.tc3_signer(fields { secret_key = KEY .. "x" })
    local sa, sb = a:sign("DescribeInstances", P1, 1551113065), b:sign("DescribeInstances", P1, 1551113065)
    assert.equal(VECTOR_A, sa.signature)
    assert.equal(one_shot(fields { secret_key = KEY .. "x" }, "DescribeInstances", P1, 1551113065).signature,
      sb.signature)
    assert.are_not.equal(sa.signature, sb.signature)
  end)

  it("refuses bad fields with sign_tc3's rules, naming the field and never its value", function()
    local cases = { -- field, value, message
      { "secret_id", nil, "tc3_signer: field 'secret_id' is missing" },
      { "secret_key", "", "tc3_signer: field 'secret_key' is empty" },
      { "host", "a\r\nb", "tc3_signer: field 'host' is empty, invalid, or contains CR, LF or NUL" },
      { "region", "ap\nX-Evil: 1", "tc3_signer: field 'region' is empty, invalid, or contains CR, LF or NUL" },
      { "token", "tok\0en", "tc3_signer: field 'token' is empty, invalid, or contains CR, LF or NUL" },
      { "version", 20171012, "tc3_signer: field 'version' must be a string (got number)" },
      { "sign_action", "yes", "tc3_signer: field 'sign_action' must be a boolean (got string)" },
    }
    for _, c in ipairs(cases) do
      local f = fields()
      f[c[1]] = c[2]
      local ok, err = pcall(core.tc3_signer, f)
      assert.is_false(ok)
      assert.truthy(tostring(err):find(c[3], 1, true), tostring(err))
      assert.is_nil(tostring(err):find(KEY, 1, true))
    end
    assert.has_error(function() core.tc3_signer("key") end)
  end)

  it("refuses bad arguments to :sign and :authorization", function()
    local s = core.tc3_signer(fields())
    local function fails(fn, msg)
      local ok, err = pcall(fn)
      assert.is_false(ok)
      assert.truthy(tostring(err):find(msg, 1, true), tostring(err))
    end
    fails(function() s:sign(nil, P1, 1) end, "bad argument #1")
    fails(function() s:sign("A", nil, 1) end, "bad argument #2")
    fails(function() s:sign("", P1, 1) end, "tc3_signer:sign: action is empty or contains CR, LF or NUL")
    fails(function() s:sign("A\r\nB", P1, 1) end, "tc3_signer:sign: action is empty or contains CR, LF or NUL")
    fails(function() s:sign("A", P1, "1") end, "tc3_signer:sign: timestamp must be a number (got string)")
    fails(function() s:sign("A", P1, 1.5) end, "timestamp must be an integer in [0, 253402300799]")
    fails(function() s:sign("A", P1, -1) end, "timestamp must be an integer in [0, 253402300799]")
    fails(function() s:sign("A", P1, 253402300800) end, "timestamp must be an integer in [0, 253402300799]")
    fails(function() s:sign("A", P1, 1, "yes") end, "bad argument #4")
    fails(function() s:authorization("A", P1) end, "tc3_signer:authorization: timestamp must be a number (got nil)")
    fails(function() s.sign({}, "A", P1, 1) end, "ecdn.tc3_signer expected")
    fails(function() s.authorization(io.stdout, "A", P1, 1) end, "ecdn.tc3_signer expected")
    -- and still signs right afterwards
    assert.equal(VECTOR_A, s:sign("DescribeInstances", P1, 1551113065).signature)
  end)

  it("is closed by close() (idempotent), after which it raises; close and the collector free it", function()
    collectgarbage()
    collectgarbage()
    local function live() return core.sign_cache_stats().prepared end
    collectgarbage("stop") -- (the dropped one below must not go before it is counted)
    local before = live()
    local s = core.tc3_signer(fields())
    core.tc3_signer(fields()) -- dropped at once
    assert.equal(before + 2, live())
    collectgarbage("restart")
    collectgarbage()
    collectgarbage()
    assert.equal(before + 1, live())
    assert.is_true(s:close())
    assert.equal(before, live())
    assert.is_true(s:close())
    assert.has_error(function() s:sign("DescribeInstances", P1, 1) end, "tc3_signer:sign: the signer is closed")
    assert.has_error(function() s:authorization("DescribeInstances", P1, 1) end,
      "tc3_signer:authorization: the signer is closed")
  end)

  it("answers every call right when the collector runs a signing finalizer in the middle", function()
    local s = core.tc3_signer(fields())
    local inner = core.tc3_signer(fields { secret_key = "finalizer-key" })
    local want_inner = one_shot(fields { secret_key = "finalizer-key" }, "DescribeInstances", "{}", 1551113065)
    local inner_ok, inner_runs = true, 0
    local function on_gc()
      local r = inner:sign("DescribeInstances", "{}", 1551113065)
      local a = core.sign_tc3 { secret_id = ID, secret_key = "finalizer-key", service = "cvm", host = "h",
                                action = "A", version = "v", payload = "{}", timestamp = 1 }
      inner_runs = inner_runs + 1
      if r.signature ~= want_inner.signature or not a.signature then inner_ok = false end
    end
    local restore = gc.restless()
    for i = 1, ROUNDS do
      gc.garbage(on_gc)
      local r = s:sign("DescribeInstances", P1, 1551113065)
      assert.equal(VECTOR_A, r.signature, "call " .. i)
      assert.equal("cvm.tencentcloudapi.com", r.headers.Host)
      assert.equal("DescribeInstances", r.headers["X-TC-Action"])
    end
    restore()
    collectgarbage()
    assert.is_true(inner_ok, "a signature made inside a finalizer was wrong")
    assert.is_true(inner_runs > 0, "no finalizer ran")
  end)
end)

describe("core.tc3_signer closed by a finalizer in the middle of a call", function()
  -- A call's answer borrows the signer's fields while Lua allocates; a
  -- finalizer run by one of those allocations may close the signer. The call
  -- must then either answer right or raise "closed", never read freed
  -- memory (the asan suite runs this), and the key must be wiped at the end.
  local function hammer(method, rounds)
    collectgarbage()
    collectgarbage()
    local before = core.sign_cache_stats().prepared
    local restore = gc.restless()
    local answered, refused = 0, 0
    for i = 1, rounds do
      local s = core.tc3_signer(fields { token = "a-session-token", region = "ap-guangzhou" })
      for _ = 1, 3 do gc.garbage(function() s:close() end) end
      local ok, r = pcall(s[method], s, "DescribeInstances", P1, 1551113065)
      if ok then
        answered = answered + 1
        if method == "sign" then
          assert.equal(VECTOR_A, r.signature, "round " .. i)
          assert.equal("cvm.tencentcloudapi.com", r.headers.Host)
          assert.equal("a-session-token", r.headers["X-TC-Token"])
          assert.equal("ap-guangzhou", r.headers["X-TC-Region"])
          assert.equal("2017-03-12", r.headers["X-TC-Version"])
          assert.equal("application/json; charset=utf-8", r.headers["Content-Type"])
        else
          assert.truthy(r:find("Signature=" .. VECTOR_A, 1, true), r)
        end
      else
        refused = refused + 1
        assert.truthy(tostring(r):find("the signer is closed", 1, true), tostring(r))
      end
      s:close() -- (idempotent: the finalizers may have closed it already)
      assert.has_error(function() s[method](s, "DescribeInstances", P1, 1551113065) end)
    end
    restore()
    collectgarbage()
    collectgarbage()
    assert.equal(before, core.sign_cache_stats().prepared, "a closed signer was never freed")
    assert.equal(rounds, answered + refused)
  end

  it("answers :sign right or refuses it", function() hammer("sign", ROUNDS) end)
  it("answers :authorization right or refuses it", function() hammer("authorization", ROUNDS) end)

  -- On Lua 5.1 an error in a finalizer reaches the call that ran it: one
  -- raised while sign_tc3 builds its answer leaves the shared scratch busy
  -- for good, and every later call makes a result of its own (an
  -- allocation) before signing: a finalizer closing the signer there must be
  -- seen before the signer is used. (Not on LuaJIT: errors thrown from
  -- finalizers under this collector crash LuaJIT itself, with no module
  -- loaded.)
  it("with the shared scratch left busy by an error in a finalizer (Lua 5.1)", function()
    if _VERSION ~= "Lua 5.1" or rawget(_G, "jit") then return end
    -- Where the error lands is up to the collector: after each one that
    -- reached sign_tc3 (the scratch may be stuck now, or not), the finalizer
    -- rounds run again, ten times.
    local errors = 0
    local restore = gc.restless()
    for _ = 1, 20000 do
      local ok = pcall(function() -- (the garbage and the table inside: an error may land anywhere)
        gc.garbage(function() error("finalizer error", 0) end)
        return core.sign_tc3 { secret_id = ID, secret_key = KEY, service = "cvm", host = "h",
                               action = "A", version = "v", payload = P1, timestamp = 1 }
      end)
      if not ok then
        errors = errors + 1
        restore()
        while not pcall(collectgarbage) do end -- (the rest of the erring garbage)
        hammer("sign", 100)
        hammer("authorization", 100)
        if errors == 10 then break end
        restore = gc.restless()
      end
    end
    restore()
    while not pcall(collectgarbage) do end
    assert.is_true(errors > 0, "no finalizer error reached sign_tc3")
  end)
end)

describe("ecdn.signer.prepare", function()
  local target = { url = "https://ecdn.tencentcloudapi.com/", host = "ecdn.tencentcloudapi.com", service = "ecdn",
                   version = "2019-10-12", region = "ap-guangzhou", language = "en-US" }
  local cred = { secret_id = ID, secret_key = KEY, token = "a-session-token" }

  it("gives the same plain request as signer.tc3", function()
    local p = signer.prepare(target, cred)
    for ts = 1795820000, 1795820000 + 86400 * 3, 43200 do
      local body = '{"Urls":["https://www.example.com/' .. ts .. '"]}'
      local want = signer.tc3(target, cred, "PurgeUrlsCache", body, ts)
      local got = p:request("PurgeUrlsCache", body, ts)
      assert.same(want, got)
    end
    assert.is_true(p:close())
    assert.has_error(function() p:request("PurgeUrlsCache", "{}", 1) end)
  end)

  it("refuses bad target fields when prepared", function()
    local bad = {}
    for k, v in pairs(target) do bad[k] = v end
    bad.region = "ap\r\nX: 1"
    assert.has_error(function() signer.prepare(bad, cred) end,
      "tc3_signer: field 'region' is empty, invalid, or contains CR, LF or NUL")
  end)
end)
