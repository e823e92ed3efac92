-- core.sign_v1 against the official HmacSHA1 example (facts file §2) and its rules.
local core = require "ecdn.core"

local function base(over)
  local t = {
    secret_id = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
    secret_key = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
    host = "cvm.tencentcloudapi.com", action = "DescribeInstances", version = "2017-03-12",
    timestamp = 1465185768, nonce = 11886, region = "ap-guangzhou",
    params = { ["InstanceIds.0"] = "ins-09dx96dg", Limit = 20, Offset = 0 },
  }
  for k, v in pairs(over or {}) do t[k] = v end
  return t
end

local OFFICIAL = "GETcvm.tencentcloudapi.com/?Action=DescribeInstances&InstanceIds.0=ins-09dx96dg&Limit=20"
  .. "&Nonce=11886&Offset=0&Region=ap-guangzhou&SecretId=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE"
  .. "&Timestamp=1465185768&Version=2017-03-12"

local function decode(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

local function parse_query(q)
  local out, order = {}, {}
  for pair in q:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=(.*)$")
    out[decode(k)] = decode(v)
    order[#order + 1] = decode(k)
  end
  return out, order
end

describe("sign_v1", function()
  it("matches the official HmacSHA1 example byte for byte", function()
    local r = core.sign_v1(base())
    assert.are.equal(OFFICIAL, r.string_to_sign)
    assert.are.equal("EliP9YW3pW28FpsEdkXt/+WcGeI=", r.signature)
    assert.are.equal(OFFICIAL:sub(#"GETcvm.tencentcloudapi.com/?" + 1)
      .. "&Signature=EliP9YW3pW28FpsEdkXt%2F%2BWcGeI%3D", r.query)
  end)

  it("adds SignatureMethod when HmacSHA256 is asked for, as the SDKs do", function()
    local r = core.sign_v1(base{ signature_method = "HmacSHA256" })
    assert.are.equal("A8uy2/o7WBZXYCTWEFpMrVGhGBVlEGIOioeqRM+fzFs=", r.signature)
    assert.truthy(r.string_to_sign:find("&SignatureMethod=HmacSHA256&", 1, true))
  end)

  it("sends SignatureMethod=HmacSHA1 only when explicitly given", function()
    local r = core.sign_v1(base{ signature_method = "HmacSHA1" })
    assert.truthy(r.string_to_sign:find("&SignatureMethod=HmacSHA1&", 1, true))
    assert.are_not.equal("EliP9YW3pW28FpsEdkXt/+WcGeI=", r.signature)
  end)

  it("sorts names byte-wise: InstanceIds.12 before InstanceIds.2", function()
    local r = core.sign_v1(base{ params = { ["InstanceIds.2"] = "b", ["InstanceIds.12"] = "a" } })
    local _, order = parse_query(r.query)
    assert.are.same({ "Action", "InstanceIds.12", "InstanceIds.2", "Nonce", "Region", "SecretId", "Timestamp",
                      "Version", "Signature" }, order)
  end)

  it("signs raw values and sends them RFC 3986 encoded with upper-case hex", function()
    local url = "https://www.example.com/a b/未命名?x=1&y=~_-."
    local r = core.sign_v1(base{ params = { ["Urls.0"] = url } })
    assert.truthy(r.string_to_sign:find("&Urls.0=" .. url .. "&", 1, true))
    assert.truthy(r.query:find("Urls.0=https%3A%2F%2Fwww.example.com%2Fa%20b%2F%E6%9C%AA%E5%91%BD%E5%90%8D"
      .. "%3Fx%3D1%26y%3D~_-.&", 1, true))
    assert.are.equal(url, (parse_query(r.query))["Urls.0"])
  end)

  it("formats numbers as integers, floats without loss", function()
    local r = core.sign_v1(base{ params = { A = 3, B = 2.5, C = 1e15 } })
    local q = parse_query(r.query)
    assert.are.equal("3", q.A)
    assert.are.equal("2.5", q.B)
    assert.are.equal("1000000000000000", q.C)
  end)

  it("uses POST, a path and a token in the string to sign", function()
    local r = core.sign_v1(base{ method = "POST", path = "/v2/index.php", token = "tok" })
    assert.truthy(r.string_to_sign:find("^POSTcvm%.tencentcloudapi%.com/v2/index%.php%?"))
    assert.truthy(r.string_to_sign:find("&Token=tok&", 1, true))
  end)

  it("omits Region when not given or empty", function()
    local t = base()
    t.region = nil
    assert.falsy(core.sign_v1(t).string_to_sign:find("Region=", 1, true))
    t.region = ""
    assert.falsy(core.sign_v1(t).string_to_sign:find("Region=", 1, true))
  end)

  describe("rejects programming errors, naming the field", function()
    for _, f in ipairs{ "secret_id", "secret_key", "host", "action", "version", "timestamp", "nonce" } do
      it("missing " .. f, function()
        local t = base()
        t[f] = nil
        assert.has_error(function() core.sign_v1(t) end, ("sign_v1: field '%s' is missing"):format(f))
      end)
    end
    local cases = {
      { "method", "PUT" }, { "method", 1 }, { "signature_method", "HmacMD5" }, { "path", "v2" },
      { "host", "a\r\nb" }, { "secret_id", "AK\nID" }, { "nonce", 0 }, { "nonce", -3 }, { "nonce", 1.5 },
      { "timestamp", -1 }, { "params", "x" },
    }
    for _, c in ipairs(cases) do
      it(("%s = %q"):format(c[1], tostring(c[2])), function()
        local ok, err = pcall(core.sign_v1, base{ [c[1]] = c[2] })
        assert.is_false(ok)
        assert.truthy(err:find("field '" .. c[1] .. "'", 1, true))
      end)
    end
    local pcases = {
      { "a non-string key", { [1] = "x" } },
      { "a boolean value", { A = true } },
      { "a table value", { A = {} } },
      { "a NaN value", { A = 0 / 0 } },
      { "an infinite value", { A = math.huge } },
      { "a name that repeats a common parameter", { Action = "Other" } },
      { "Signature (it is never signed)", { Signature = "x" } },
      { "SignatureMethod (it must come from signature_method)", { SignatureMethod = "HmacSHA256" } },
      { "Region", { Region = "ap-guangzhou" } },
      { "Token", { Token = "t" } }, { "Nonce", { Nonce = 1 } }, { "SecretId", { SecretId = "AKID" } },
      { "Timestamp", { Timestamp = 1 } }, { "Version", { Version = "2017-03-12" } },
      { "an empty name", { [""] = "x" } },
    }
    for _, c in ipairs(pcases) do
      it("params with " .. c[1], function()
        local ok, err = pcall(core.sign_v1, base{ params = c[2] })
        assert.is_false(ok)
        assert.truthy(err:find("field 'params'", 1, true))
      end)
    end
  end)
end)
