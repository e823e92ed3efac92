-- core.sign_tc3 against the official vectors (facts file §1.8) and its argument rules.
local core = require "ecdn.core"

local P1 = '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
local P2 = '{"Limit": 1, "Filters": [{"Values": ["unnamed"], "Name": "instance-name"}]}'
local STARS = ("*"):rep(32)

local function base(over)
  local t = {
    secret_id = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
    secret_key = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
    service = "cvm", host = "cvm.tencentcloudapi.com",
    action = "DescribeInstances", version = "2017-03-12",
    timestamp = 1551113065, payload = P1,
    content_type = "application/json; charset=utf-8",
  }
  for k, v in pairs(over or {}) do t[k] = v end
  return t
end

-- The last line of the string to sign is hex(SHA256(canonical request)).
local function hashed_canonical(r)
  return r.string_to_sign:match("\n(%x+)$")
end

local function count_keys(t)
  local n = 0
  for _ in pairs(t) do n = n + 1 end
  return n
end

describe("sign_tc3", function()
  it("matches official vector A (classic doc, P1, content-type;host)", function()
    local r = core.sign_tc3(base())
    assert.are.equal("72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168", r.signature)
    assert.are.equal("5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031", hashed_canonical(r))
    assert.are.equal("TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, "
      .. "SignedHeaders=content-type;host, "
      .. "Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168", r.authorization)
    assert.are.equal("POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n"
      .. "content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064", r.canonical_request)
    assert.are.equal("TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
      .. "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031", r.string_to_sign)
  end)

  it("matches official vector C (x-tc-action signed, key of 32 stars)", function()
    local r = core.sign_tc3(base{ secret_id = "AKID" .. STARS, secret_key = STARS, sign_action = true })
    assert.are.equal("10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f", r.signature)
    assert.are.equal("7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84", hashed_canonical(r))
    assert.are.equal("POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n"
      .. "x-tc-action:describeinstances\n\ncontent-type;host;x-tc-action\n"
      .. "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064", r.canonical_request)
    assert.are.equal("TC3-HMAC-SHA256 Credential=AKID" .. STARS .. "/2019-02-25/cvm/tc3_request, "
      .. "SignedHeaders=content-type;host;x-tc-action, "
      .. "Signature=10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f", r.authorization)
  end)

  it("matches official vector D (intl doc, P2)", function()
    local r = core.sign_tc3(base{ secret_id = "AKID" .. STARS, secret_key = STARS, payload = P2 })
    assert.are.equal("a7b8551448762bd123d6f79e81815e31a92013640a6cef36a08ad4b292a4d2f2", r.signature)
    assert.are.equal("2815843035062fffda5fd6f2a44ea8a34818b0dc46f024b8b3786976a3adda7a", hashed_canonical(r))
    assert.truthy(r.canonical_request:find("99d58dfbc6745f6747f36bfca17dee5e6881dc0428a0a36f96199342bc5b4907", 1, true))
  end)

  it("hashes the payload exactly as given (no re-serialisation)", function()
    local a = core.sign_tc3(base{ payload = '{"a":1}' })
    local b = core.sign_tc3(base{ payload = '{"a": 1}' })
    assert.are_not.equal(a.signature, b.signature)
    local empty = core.sign_tc3(base{ payload = "" })
    assert.truthy(empty.canonical_request:find("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855$"))
  end)

  describe("credential-scope date is UTC from the timestamp", function()
    local cases = {
      { 1551113065, "2019-02-25" },       -- 00:44 next day in UTC+8: the doc's trap
      { 1551139199, "2019-02-25" },       -- 23:59:59 UTC
      { 1551139200, "2019-02-26" },       -- 00:00:00 UTC
      { 0, "1970-01-01" },
      { 951782400, "2000-02-29" },        -- leap day
      { 4107542399, "2100-02-28" },       -- 2100 is not a leap year
      { 4107542400, "2100-03-01" },
      { 253402300799, "9999-12-31" },
    }
    for _, c in ipairs(cases) do
      it(("%d -> %s"):format(c[1], c[2]), function()
        local r = core.sign_tc3(base{ timestamp = c[1] })
        assert.are.equal(c[2], r.string_to_sign:match("\n(%d+%-%d+%-%d+)/"))
        assert.are.equal(tostring(c[1]), r.headers["X-TC-Timestamp"])
        assert.truthy(r.authorization:find("/" .. c[2] .. "/cvm/tc3_request", 1, true))
      end)
    end
    it("agrees with os.date('!') on random timestamps", function()
      math.randomseed(42)
      for _ = 1, 500 do
        local ts = math.random(0, 2 ^ 31 - 1)
        local r = core.sign_tc3(base{ timestamp = ts })
        assert.are.equal(os.date("!%Y-%m-%d", ts), r.string_to_sign:match("\n(%d+%-%d+%-%d+)/"))
      end
    end)
  end)

  describe("headers", function()
    it("sends exactly the six required headers when no optional field is given", function()
      local r = core.sign_tc3(base())
      assert.are.same({
        Authorization = r.authorization,
        ["Content-Type"] = "application/json; charset=utf-8",
        Host = "cvm.tencentcloudapi.com",
        ["X-TC-Action"] = "DescribeInstances",
        ["X-TC-Timestamp"] = "1551113065",
        ["X-TC-Version"] = "2017-03-12",
      }, r.headers)
    end)

    it("defaults Content-Type to application/json", function()
      local t = base()
      t.content_type = nil
      local r = core.sign_tc3(t)
      assert.are.equal("application/json", r.headers["Content-Type"])
      assert.truthy(r.canonical_request:find("\ncontent-type:application/json\n", 1, true))
    end)

    for _, f in ipairs{ { "region", "X-TC-Region", "ap-guangzhou" }, { "token", "X-TC-Token", "tok-123" },
                        { "language", "X-TC-Language", "en-US" } } do
      it(("adds %s only when %s is given, without changing the signature"):format(f[2], f[1]), function()
        local plain = core.sign_tc3(base())
        local with = core.sign_tc3(base{ [f[1]] = f[3] })
        assert.is_nil(plain.headers[f[2]])
        assert.are.equal(f[3], with.headers[f[2]])
        assert.are.equal(count_keys(plain.headers) + 1, count_keys(with.headers))
        -- only content-type and host are signed, so optional headers do not change it
        assert.are.equal(plain.signature, with.signature)
      end)

      it(("does not send %s for an empty %s"):format(f[2], f[1]), function()
        assert.is_nil(core.sign_tc3(base{ [f[1]] = "" }).headers[f[2]])
      end)
    end
  end)

  describe("rejects programming errors, naming the field", function()
    local required = { "secret_id", "secret_key", "service", "host", "action", "version", "timestamp", "payload" }
    for _, f in ipairs(required) do
      it("missing " .. f, function()
        local t = base()
        t[f] = nil
        assert.has_error(function() core.sign_tc3(t) end, ("sign_tc3: field '%s' is missing"):format(f))
      end)
    end

    local strings = { "secret_id", "secret_key", "service", "host", "action", "version", "payload",
                      "region", "token", "language", "content_type" }
    for _, f in ipairs(strings) do
      it("non-string " .. f, function()
        local ok, err = pcall(core.sign_tc3, base{ [f] = 12 })
        assert.is_false(ok)
        assert.truthy(err:find("field '" .. f .. "' must be a string", 1, true))
      end)
    end

    local header_fields = { "secret_id", "service", "host", "action", "version", "region", "token", "language",
                            "content_type" }
    for _, f in ipairs(header_fields) do
      for _, bad in ipairs{ "a\rb", "a\nb", "a\0b" } do
        it(("%s containing %q"):format(f, bad), function()
          local ok, err = pcall(core.sign_tc3, base{ [f] = bad })
          assert.is_false(ok)
          assert.truthy(err:find("field '" .. f .. "'", 1, true))
        end)
      end
    end

    for _, ts in ipairs{ -1, 1.5, 0 / 0, math.huge, 253402300800 } do
      it("timestamp " .. tostring(ts), function()
        local ok, err = pcall(core.sign_tc3, base{ timestamp = ts })
        assert.is_false(ok)
        assert.truthy(err:find("field 'timestamp'", 1, true))
      end)
    end

    it("an empty content_type", function()
      assert.has_error(function() core.sign_tc3(base{ content_type = "" }) end,
        "sign_tc3: field 'content_type' is empty, invalid, or contains CR, LF or NUL")
    end)

    it("a non-boolean sign_action", function()
      assert.has_error(function() core.sign_tc3(base{ sign_action = "yes" }) end,
        "sign_tc3: field 'sign_action' must be a boolean (got string)")
    end)

    it("a non-table argument", function()
      assert.has_error(function() core.sign_tc3("x") end)
      assert.has_error(function() core.sign_tc3() end)
    end)

    it("never puts the secret key in an error message", function()
      local canary = "CANARY-SECRET-KEY-0123456789"
      for _, f in ipairs(header_fields) do
        local _, err = pcall(core.sign_tc3, base{ secret_key = canary, [f] = "x\ny" })
        assert.falsy(err:find(canary, 1, true))
      end
      local _, err = pcall(core.sign_tc3, base{ secret_key = canary, timestamp = -5 })
      assert.falsy(err:find(canary, 1, true))
    end)
  end)

  it("accepts a secret key and payload with embedded NUL bytes", function()
    local a = core.sign_tc3(base{ secret_key = "k\0a", payload = "p\0q" })
    local b = core.sign_tc3(base{ secret_key = "k\0b", payload = "p\0q" })
    assert.are_not.equal(a.signature, b.signature)
  end)

  it("reads fields through __index (values stay alive while signing)", function()
    local proxy = setmetatable({}, { __index = function(_, k) return base()[k] end })
    assert.are.equal("72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168",
      core.sign_tc3(proxy).signature)
  end)
end)
