-- The TC3 signer's derived-key cache (issue 12): a cached signing key is
-- used only for its own (secret key, UTC date, service), so signatures
-- across a UTC midnight, across a key change (core.sign_tc3 and a client's
-- set_credentials), across services and past the cache's capacity are the
-- same as a fresh computation: the official vectors, an independent
-- implementation (the openssl command line), or the simulator's own
-- verifier. Also: debug = false changes nothing but the debug strings, and a
-- finalizer that signs while sign_tc3 builds its answer does not disturb it.
local core = require "ecdn.core"

local gc = require "support.gc"
local openssl = require "support.openssl"
-- The whole TC3 algorithm again, fresh every time (no cache anywhere):
-- the signature and the UTC date it used.
local function reference(q)
  local r = openssl.tc3(q)
  return r.signature, r.date
end

local P1 = '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
local P2 = '{"Limit": 1, "Filters": [{"Values": ["unnamed"], "Name": "instance-name"}]}'
local STARS = ("*"):rep(32)
local KEY_A = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"

local function vector(over)
  local t = {
    secret_id = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", secret_key = KEY_A,
    service = "cvm", host = "cvm.tencentcloudapi.com", action = "DescribeInstances", version = "2017-03-12",
    timestamp = 1551113065, payload = P1, content_type = "application/json; charset=utf-8",
  }
  for k, v in pairs(over or {}) do t[k] = v end
  return t
end

-- The official vectors (facts file §1.8): A, C (x-tc-action, key of 32 stars), D (P2).
local VECTORS = {
  A = { vector(), "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168" },
  C = { vector { secret_key = STARS, sign_action = true },
        "10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f" },
  D = { vector { secret_key = STARS, payload = P2 },
        "a7b8551448762bd123d6f79e81815e31a92013640a6cef36a08ad4b292a4d2f2" },
}

local function stats() return core.sign_cache_stats() end

local function delta(before, after, field) return after[field] - before[field] end

describe("the TC3 signer's derived-key cache", function()

  it("is bounded and reports itself", function()
    local s = stats()
    assert.is_true(s.capacity >= 1 and s.capacity <= 1024, "capacity " .. s.capacity)
    assert.is_true(s.entries <= s.capacity)
    for _, f in ipairs { "hits", "misses", "evictions", "replaced" } do assert.is_number(s[f]) end
  end)

  it("is really used: the same key, date and service sign from the cache", function()
    core.sign_tc3(vector())
    local before = stats()
    for _ = 1, 5 do assert.equal(VECTORS.A[2], core.sign_tc3(vector()).signature) end
    local after = stats()
    assert.equal(5, delta(before, after, "hits"))
    assert.equal(0, delta(before, after, "misses"))
  end)

  it("reproduces the official vectors when the key changes between every call", function()
    local order = { "A", "C", "A", "D", "C", "D", "A", "A", "C" }
    local before = stats()
    for i, name in ipairs(order) do
      local v = VECTORS[name]
      assert.equal(v[2], core.sign_tc3(v[1]).signature, "call " .. i .. ", vector " .. name)
    end
    -- A and C/D have different keys: each switch between them had to derive.
    assert.is_true(delta(before, stats(), "hits") >= 3)
  end)

  it("derives afresh for a key that differs by one byte, or is a prefix or an extension", function()
    local keys = { KEY_A, KEY_A:sub(1, -2) .. "F", KEY_A:sub(1, -2), KEY_A .. "0", "X" .. KEY_A:sub(2) }
    local want = {}
    for i, k in ipairs(keys) do want[i] = reference(vector { secret_key = k }) end
    for round = 1, 2 do
      for i, k in ipairs(keys) do
        assert.equal(want[i], core.sign_tc3(vector { secret_key = k }).signature, ("round %d key %d"):format(round, i))
      end
    end
    for i = 2, #keys do assert.are_not.equal(want[1], want[i]) end
  end)

  it("signs across a UTC midnight with each day's own key", function()
    -- 2019-02-25 23:59:58 and 23:59:59, then 2019-02-26 00:00:00 and 00:00:01, back and forth.
    local times = { 1551139198, 1551139199, 1551139200, 1551139201, 1551139199, 1551139200, 1551139198 }
    local want = {}
    for _, ts in ipairs(times) do
      if not want[ts] then want[ts] = { reference(vector { timestamp = ts }) } end
    end
    local before = stats()
    for i, ts in ipairs(times) do
      local r = core.sign_tc3(vector { timestamp = ts })
      assert.equal(want[ts][1], r.signature, "call " .. i .. " at " .. ts)
      assert.truthy(r.authorization:find("/" .. want[ts][2] .. "/cvm/tc3_request", 1, true))
    end
    local after = stats()
    -- Every change of day derived a key (the newer day replaces the older
    -- one's entry): 4 changes in the list, and the first call may have been
    -- a hit or a miss.
    assert.is_true(delta(before, after, "misses") >= 4, "misses " .. delta(before, after, "misses"))
  end)

  it("keeps services apart", function()
    local want = {}
    for _, svc in ipairs { "cvm", "ecdn", "cdn", "cvm" } do
      want[svc] = want[svc] or reference(vector { service = svc })
      assert.equal(want[svc], core.sign_tc3(vector { service = svc }).signature, svc)
    end
    assert.are_not.equal(want.cvm, want.ecdn)
    -- A service too long to cache is still signed right.
    local long = ("s"):rep(100)
    assert.equal(reference(vector { service = long }), core.sign_tc3(vector { service = long }).signature)
  end)

  it("stays right past its capacity (entries are evicted, never reused for another key)", function()
    local cap = stats().capacity
    local n = cap + 3
    local want = {}
    for i = 1, n do want[i] = reference(vector { secret_key = "rotating-key-" .. i }) end
    local before = stats()
    for round = 1, 3 do
      for i = 1, n do
        assert.equal(want[i], core.sign_tc3(vector { secret_key = "rotating-key-" .. i }).signature,
          ("round %d key %d"):format(round, i))
      end
    end
    local after = stats()
    assert.is_true(delta(before, after, "evictions") >= n, "evictions " .. delta(before, after, "evictions"))
    assert.is_true(after.entries <= after.capacity)
  end)

  it("is emptied by sign_cache_clear, and signs right afterwards", function()
    core.sign_tc3(vector())
    core.sign_cache_clear()
    assert.equal(0, stats().entries)
    local before = stats()
    assert.equal(VECTORS.A[2], core.sign_tc3(vector()).signature)
    assert.equal(1, delta(before, stats(), "misses"))
  end)

  it("forgets one key on sign_cache_forget, and keeps the others", function()
    local other = vector { secret_key = STARS }
    core.sign_tc3(vector())
    core.sign_tc3(other)
    core.sign_cache_forget(KEY_A)
    local before = stats()
    assert.equal(VECTORS.A[2], core.sign_tc3(vector()).signature)
    local mid = stats()
    assert.equal(1, delta(before, mid, "misses"))
    core.sign_tc3(other)
    assert.equal(1, delta(mid, stats(), "hits"))
    core.sign_cache_forget("a key never used") -- harmless
  end)

  it("varies the signature with every payload and timestamp (results are never memoised)", function()
    local seen = {}
    for i = 1, 50 do
      local r = core.sign_tc3(vector { payload = '{"Urls":["https://a.example/' .. i .. '"]}',
                                       timestamp = 1551113065 + i })
      assert.is_nil(seen[r.signature])
      seen[r.signature] = true
    end
    local q = vector { payload = '{"Urls":["https://a.example/31"]}', timestamp = 1551113065 + 31 }
    assert.equal(reference(q), core.sign_tc3(q).signature)
  end)
end)

describe("sign_tc3 debug = false", function()
  it("gives the same signature, authorization and headers, without the debug strings", function()
    for name, v in pairs(VECTORS) do
      local full = core.sign_tc3(v[1])
      local q = vector(v[1])
      q.debug = false
      local lean = core.sign_tc3(q)
      assert.equal(v[2], lean.signature, name)
      assert.equal(full.authorization, lean.authorization, name)
      assert.same(full.headers, lean.headers, name)
      assert.is_nil(lean.canonical_request)
      assert.is_nil(lean.string_to_sign)
      q.debug = true
      assert.equal(full.canonical_request, core.sign_tc3(q).canonical_request)
    end
  end)

  it("refuses a debug that is not a boolean", function()
    assert.has_error(function() core.sign_tc3(vector { debug = "no" }) end,
      "sign_tc3: field 'debug' must be a boolean (got string)")
  end)
end)

describe("sign_tc3 with finalizers that sign", function()
  it("answers every call right when the collector runs a signing finalizer in the middle", function()
    local inner_key = "finalizer-key"
    local want_inner = reference(vector { secret_key = inner_key, payload = "{}" })
    local inner_ok, inner_runs = true, 0
    local function on_gc()
      local r = core.sign_tc3(vector { secret_key = inner_key, payload = "{}" })
      inner_runs = inner_runs + 1
      if r.signature ~= want_inner then inner_ok = false end
    end
    for i = 1, 3000 do
      gc.garbage(on_gc)
      local r = core.sign_tc3(vector())
      assert.equal(VECTORS.A[2], r.signature, "call " .. i)
      assert.equal("cvm.tencentcloudapi.com", r.headers.Host)
      assert.equal("1551113065", r.headers["X-TC-Timestamp"])
      if i % 500 == 0 then collectgarbage("step") end
    end
    collectgarbage()
    collectgarbage()
    assert.is_true(inner_ok, "a signature made inside a finalizer was wrong")
    assert.is_true(inner_runs > 0, "no finalizer ran")
  end)

  it("recovers after a refused call", function()
    assert.has_error(function() core.sign_tc3(vector { host = "a\nb" }) end)
    assert.equal(VECTORS.A[2], core.sign_tc3(vector()).signature)
  end)
end)

describe("ecdn.client signs with the current key and day (the simulator verifies)", function()
  local ecdn = require "ecdn"
  local sim = require "support.sim"
  local ID = "AKIDcacherotation000000000000000000"
  local OLD, NEW = "OldSecretKeyForTheCacheSpec00000", "NewSecretKeyForTheCacheSpec00000"
  local OTHER_ID = "AKIDcacherotation111111111111111111"
  local MIDNIGHT = 1551139200 -- 2019-02-26 00:00:00 UTC
  local s

  setup(function()
    s = sim.start { args = { "--rate", "0", "--secret", ID .. ":" .. NEW, "--secret", OTHER_ID .. ":" .. OLD,
                             "--fake-clock", tostring(MIDNIGHT) } }
  end)
  teardown(function() s:stop() end)

  local function purge(c, tag)
    return c:purge { "https://www.example.com/cache-spec/" .. tag }
  end

  it("after set_credentials: the new key is accepted, the old key is used again when set back", function()
    local now = MIDNIGHT
    local c = assert(ecdn.client { secret_id = ID, secret_key = OLD, endpoint = s.url, rate = 0,
                                   clock = function() return now end })
    local res, err = purge(c, "old-1")
    assert.is_nil(res)
    assert.equal("AuthFailure.SignatureFailure", err.code)
    assert(c:set_credentials { secret_id = ID, secret_key = NEW })
    for i = 1, 3 do assert(purge(c, "new-" .. i)) end
    assert(c:set_credentials { secret_id = ID, secret_key = OLD })
    res, err = purge(c, "old-2")
    assert.is_nil(res)
    assert.equal("AuthFailure.SignatureFailure", err.code, "signed with the previous (cached) key")
    -- Same key, another SecretId that owns it: accepted.
    assert(c:set_credentials { secret_id = OTHER_ID, secret_key = OLD })
    assert(purge(c, "other-1"))
    c:close()
  end)

  it("across a UTC midnight, back and forth, every request is accepted", function()
    local now = MIDNIGHT - 2
    local c = assert(ecdn.client { secret_id = ID, secret_key = NEW, endpoint = s.url, rate = 0,
                                   clock = function() return now end })
    for i, t in ipairs { -2, -1, 0, 1, -1, 0, 2, -2 } do
      now = MIDNIGHT + t
      local res, err = purge(c, "midnight-" .. i)
      assert(res, ("at midnight %+d s: %s"):format(t, tostring(err)))
    end
    c:close()
  end)
end)
