-- Simulator signature V1 (HmacSHA1 / HmacSHA256): the official example
-- verifies, in-process and over HTTP; hand-built GET and form-POST requests
-- purge like TC3 ones (same log lines, same tasks); every AuthFailure and
-- common error; the V1 size limits; the product's own signer is accepted.
local sim = require "support.sim"
local cjson = require "cjson"

local T = 1700000000

-- The official example (facts file §2): HmacSHA1, GET, cvm.
local DOC = {
  id = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", key = "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE", ts = 1465185768,
  params = { Action = "DescribeInstances", ["InstanceIds.0"] = "ins-09dx96dg", Limit = "20", Nonce = "11886",
             Offset = "0", Region = "ap-guangzhou", SecretId = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
             Timestamp = "1465185768", Version = "2017-03-12" },
  sts = "GETcvm.tencentcloudapi.com/?Action=DescribeInstances&InstanceIds.0=ins-09dx96dg&Limit=20&Nonce=11886"
        .. "&Offset=0&Region=ap-guangzhou&SecretId=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE&Timestamp=1465185768"
        .. "&Version=2017-03-12",
  sha1 = "EliP9YW3pW28FpsEdkXt/+WcGeI=",
  sha256_with_method = "A8uy2/o7WBZXYCTWEFpMrVGhGBVlEGIOioeqRM+fzFs=", -- SignatureMethod=HmacSHA256 signed too
}

local function code_of(decoded)
  return decoded and decoded.Response and decoded.Response.Error and decoded.Response.Error.Code
end

describe("simulator V1 verifier (ecdn.sim.auth, in-process)", function()
  local auth = require "ecdn.sim.auth"

  it("builds the documented string to sign and verifies the official HmacSHA1 example", function()
    local h = { host = "cvm.tencentcloudapi.com" }
    assert.equal(DOC.sts, auth.v1_string_to_sign("GET", h.host, "/", DOC.params))
    local cfg = { secrets = { [DOC.id] = DOC.key }, tokens = {} }
    local p = {}
    for k, v in pairs(DOC.params) do p[k] = v end
    p.Signature = DOC.sha1
    local who, code = auth.verify_v1(cfg, h, p, "GET", "/", DOC.ts)
    assert.is_nil(code)
    assert.same({ secret_id = DOC.id }, who) -- cvm is no product of the simulator: routed by Version later
    -- HmacSHA256, selected by SignatureMethod (which is then signed too)
    p.SignatureMethod = "HmacSHA256"
    assert.equal("AuthFailure.SignatureFailure", select(2, auth.verify_v1(cfg, h, p, "GET", "/", DOC.ts)))
    p.Signature = DOC.sha256_with_method
    assert.is_nil(select(2, auth.verify_v1(cfg, h, p, "GET", "/", DOC.ts)))
    -- one changed byte, the method, the host, or a clock 301 s away
    p.Limit = "21"
    assert.equal("AuthFailure.SignatureFailure", select(2, auth.verify_v1(cfg, h, p, "GET", "/", DOC.ts)))
    p.Limit = "20"
    assert.equal("AuthFailure.SignatureFailure", select(2, auth.verify_v1(cfg, h, p, "POST", "/", DOC.ts)))
    assert.equal("AuthFailure.SignatureFailure",
                 select(2, auth.verify_v1(cfg, { host = "cdn.tencentcloudapi.com" }, p, "GET", "/", DOC.ts)))
    assert.equal("AuthFailure.SignatureExpire", select(2, auth.verify_v1(cfg, h, p, "GET", "/", DOC.ts + 301)))
    assert.is_nil(select(2, auth.verify_v1(cfg, h, p, "GET", "/", DOC.ts - 300)))
  end)

  it("encodes base64 like RFC 4648's test vectors", function()
    for plain, b64 in pairs { [""] = "", f = "Zg==", fo = "Zm8=", foo = "Zm9v", foob = "Zm9vYg==", fooba = "Zm9vYmE=",
                              foobar = "Zm9vYmFy", ["\255\254\253"] = "//79" } do
      assert.equal(b64, auth.base64(plain))
      assert.equal(b64, sim.base64(plain)) -- and the spec helper's own
    end
  end)

  it("the spec helper's V1 signer reproduces the official signature (it builds the requests below)", function()
    local params = {}
    for k, v in pairs(DOC.params) do params[k] = v end
    local sig, sts = sim.v1_sign(DOC.key, "GET", "cvm.tencentcloudapi.com", params)
    assert.equal(DOC.sts, sts)
    assert.equal(DOC.sha1, sig)
    params.SignatureMethod = "HmacSHA256"
    assert.equal(DOC.sha256_with_method, (sim.v1_sign(DOC.key, "GET", "cvm.tencentcloudapi.com", params)))
  end)
end)

describe("simulator V1 over HTTP", function()
  it("verifies the official example when its clock and secret match it (then: no such product version)", function()
    local s = sim.start { args = { "--rate", "0", "--fake-clock", tostring(DOC.ts),
                                   "--secret", DOC.id .. ":" .. DOC.key } }
    finally(function() s:stop() end)
    -- the example's request, as the documentation sends it (the signature URL-encoded)
    local query = DOC.sts:match("%?(.*)$") .. "&Signature=EliP9YW3pW28FpsEdkXt%2F%2BWcGeI%3D"
    local function get(q, host)
      local status, raw, headers = sim.http(s.port, "GET /?" .. q .. " HTTP/1.1\r\nHost: " .. (host or
                                            "cvm.tencentcloudapi.com") .. "\r\nConnection: close\r\n\r\n")
      assert.equal(200, status, raw)
      return code_of(cjson.decode(raw)), headers
    end
    local code, headers = get(query)
    -- Signature, SecretId, Timestamp and Nonce passed; cvm's 2017-03-12 is no version of ecdn or cdn.
    assert.equal("NoSuchVersion", code)
    assert.equal("Mon, 06 Jun 2016 04:02:48 GMT", headers.date) -- the simulator's clock: the example's time
    assert.equal("AuthFailure.SignatureFailure", (get((query:gsub("Limit=20", "Limit=21")))))
    assert.equal("AuthFailure.SignatureFailure", (get(query, "ecdn.tencentcloudapi.com")))
    assert.equal("AuthFailure.SignatureFailure", (get((query:gsub("%%2B", "+"))))) -- an unencoded "+" is a space
    s:advance(301)
    assert.equal("AuthFailure.SignatureExpire", (get(query)))
  end)

  describe("purges", function()
    local s
    local TMP = { secret_id = "AKIDTEMPORARY000000000000000000000000", secret_key = "tmpkey" }
    setup(function()
      s = sim.start { args = { "--rate", "0", "--seed", "41", "--fake-clock", tostring(T),
                               "--secret", sim.DEFAULT_SECRET_ID .. ":" .. sim.DEFAULT_SECRET_KEY,
                               "--secret", TMP.secret_id .. ":" .. TMP.secret_key,
                               "--token", TMP.secret_id .. ":session-token-1" }, log = true }
    end)
    teardown(function() s:stop() end)

    local function v1(action, params, opts)
      local o = { timestamp = T }
      for k, v in pairs(opts or {}) do o[k] = v end
      local status, raw, decoded, headers = sim.v1_request(s.port, action, params, o)
      assert.equal(200, status, raw)
      assert.is_table(decoded, raw)
      return code_of(decoded), decoded.Response, headers
    end

    local function log_entry(task_id)
      for _, e in ipairs(s:log_entries()) do
        if e.task_id == task_id then return e end
      end
    end

    it("accepts GET and form POST, HmacSHA1 and HmacSHA256, and logs them like TC3 purges", function()
      local urls = { "https://www.example.com/caf\195\169 1.jpg", "http://www.example.com/a?b=c&d=e+f%2F" }
      local _, tc3 = sim.raw_request(s.port, "PurgeUrlsCache", cjson.encode { Urls = urls }, { timestamp = T })
      local tc3_id = cjson.decode(tc3).Response.TaskId
      local ref = log_entry(tc3_id)
      for _, method in ipairs { "GET", "POST" } do
        for _, sm in ipairs { false, "HmacSHA1", "HmacSHA256" } do
          local code, resp = v1("PurgeUrlsCache", { Urls = urls }, { method = method, signature_method = sm or nil })
          assert.is_nil(code, method .. " " .. tostring(sm))
          local e = log_entry(resp.TaskId)
          -- the same line as the TC3 purge's, but for its own ids: same fields, same URL bytes
          local want = {}
          for k, v in pairs(ref) do want[k] = v end
          want.task_id, want.request_id = resp.TaskId, resp.RequestId
          assert.same(want, e)
          local logs = select(2, v1("DescribePurgeTasks", { TaskId = resp.TaskId, Limit = 5, Offset = 0 })).PurgeLogs
          assert.same(urls, { logs[1].Url, logs[2].Url })
        end
      end
      -- the log text itself: the same bytes, field for field, as the TC3 line
      local text = s:log_text()
      local at = assert(text:find('"' .. tc3_id .. '"', 1, true))
      local tc3_line = text:sub(1, at):match("([^\n]*)$") .. text:sub(at + 1):match("^[^\n]*")
      local last_line = text:match('([^\n]*)\n$')
      local function strip(line) return (line:gsub('"task_id":"[^"]*"', ""):gsub('"request_id":"[^"]*"', "")) end
      assert.equal(strip(tc3_line), strip(last_line))
    end)

    it("routes ecdn/cdn by the Host, else by Version", function()
      local code, resp = v1("PurgeUrlsCache", { Urls = { "http://a.com/v" } }, { service = "cdn" })
      assert.is_nil(code)
      assert.equal("cdn", log_entry(resp.TaskId).service)
      code, resp = v1("PurgeUrlsCache", { Urls = { "http://a.com/v" } },
                      { host = "cdn.tencentcloudapi.com", service = "cdn", method = "GET" })
      assert.is_nil(code)
      assert.equal("cdn", log_entry(resp.TaskId).service)
      assert.equal("NoSuchVersion", v1("PurgeUrlsCache", { Urls = { "http://a.com/v" } },
                                       { host = "ecdn.tencentcloudapi.com", service = "cdn" }))
      assert.equal("NoSuchVersion", v1("PurgeUrlsCache", { Urls = { "http://a.com/v" } }, { version = "2017-03-12" }))
      -- CDN parameters, flattened: Area, UrlEncode (true/false), Paths.N
      code = v1("PurgeUrlsCache", { Urls = { "http://a.com/v" }, Area = "overseas", UrlEncode = true },
                { service = "cdn" })
      assert.is_nil(code)
      assert.is_nil(v1("PurgePathCache", { Paths = { "http://a.com/d/" }, FlushType = "delete" }))
      assert.equal("InvalidParameter", v1("PurgeUrlsCache", { Urls = { "http://a.com/v" }, UrlEncode = "yes" },
                                          { service = "cdn" }))
    end)

    it("answers the TC3 error codes where they apply", function()
      local U = { Urls = { "http://a.com/e" } }
      assert.equal("AuthFailure.SecretIdNotFound", v1("PurgeUrlsCache", U, { secret_id = "AKIDNOPE" }))
      assert.equal("AuthFailure.SignatureFailure", v1("PurgeUrlsCache", U, { secret_key = "wrong" }))
      assert.equal("AuthFailure.SignatureFailure",
                   v1("PurgeUrlsCache", U, { after = { ["Urls.0"] = "http://a.com/f" } })) -- changed after signing
      -- signed for another Host than the one sent
      assert.equal("AuthFailure.SignatureFailure", v1("PurgeUrlsCache", U, {
        method = "GET", host = "127.0.0.2", headers = { Host = "127.0.0.1:" .. s.port } }))
      -- signed without the port while the Host header has it, as some clients do: accepted
      assert.is_nil(v1("PurgeUrlsCache", U, { host = "127.0.0.1", headers = { Host = "127.0.0.1:" .. s.port } }))
      assert.equal("AuthFailure.SignatureExpire", v1("PurgeUrlsCache", U, { timestamp = T - 301 }))
      assert.equal("AuthFailure.SignatureExpire", v1("PurgeUrlsCache", U, { timestamp = T + 301 }))
      assert.is_nil(v1("PurgeUrlsCache", U, { timestamp = T - 300 }))
      -- temporary credentials: Token
      assert.is_nil(v1("PurgeUrlsCache", U, { secret_id = TMP.secret_id, secret_key = TMP.secret_key,
                                              token = "session-token-1" }))
      assert.equal("AuthFailure.TokenFailure", v1("PurgeUrlsCache", U, { secret_id = TMP.secret_id,
                                                                         secret_key = TMP.secret_key }))
      assert.equal("AuthFailure.TokenFailure", v1("PurgeUrlsCache", U, { secret_id = TMP.secret_id,
                                                                         secret_key = TMP.secret_key, token = "x" }))
      assert.equal("AuthFailure.TokenFailure", v1("PurgeUrlsCache", U, { token = "session-token-1" }))
      -- missing or malformed common parameters
      for _, name in ipairs { "SecretId", "Timestamp", "Nonce", "Signature" } do
        assert.equal("MissingParameter", v1("PurgeUrlsCache", U, { after = { [name] = false } }), name)
      end
      assert.equal("MissingParameter", v1("PurgeUrlsCache", U, { common = { Action = "" } }))
      assert.equal("MissingParameter", v1("PurgeUrlsCache", U, { version = "" }))
      assert.equal("InvalidParameterValue", v1("PurgeUrlsCache", U, { timestamp = "soon" }))
      assert.equal("InvalidParameterValue", v1("PurgeUrlsCache", U, { nonce = "0" }))
      assert.equal("InvalidParameterValue", v1("PurgeUrlsCache", U, { nonce = "-5" }))
      -- SignatureMethod other than exactly HmacSHA256 means HmacSHA1 (signed as sent)
      assert.is_nil(v1("PurgeUrlsCache", U, { signature_method = "hmacsha256" }))
      -- routing and parameters
      assert.equal("InvalidAction", v1("PurgeEverything", U))
      assert.equal("InvalidAction", v1("PushUrlsCache", U)) -- CDN only
      assert.equal("UnknownParameter", v1("PurgeUrlsCache", { Urls = { "http://a.com/e" }, Foo = "1" }))
      assert.equal("UnknownParameter", v1("PurgeUrlsCache", { Urls = { "http://a.com/e" }, Area = "mainland" }))
      assert.equal("InvalidParameter", v1("PurgeUrlsCache", { ["Urls.1"] = "http://a.com/e" })) -- a hole at .0
      assert.equal("MissingParameter", v1("PurgeUrlsCache", {}))
      -- a parameter given twice: refused, whatever was signed
      local bytes = sim.build_v1(s.port, "PurgeUrlsCache", U, { timestamp = T, connection = "close" })
      local head, body = bytes:match("^(.-\r\n\r\n)(.*)$")
      body = body .. "&Urls.0=http%3A%2F%2Fa.com%2Fother"
      local status, raw = sim.http(s.port, head:gsub("Content%-Length: %d+", "Content-Length: " .. #body) .. body)
      assert.equal(200, status)
      assert.equal("InvalidParameter", code_of(cjson.decode(raw)))
    end)

    it("refuses a V1 POST over 1 MB (AuthFailure.SignatureFailure, use TC3) and a GET query over 32 KB", function()
      local function urls(n, len, char)
        local t = {}
        for i = 1, n do t[i] = ("http://a.com/%05d/"):format(i) .. (char or "x"):rep(len) end
        return t
      end
      -- 1,000 URLs of 620 bytes (300 x "é"), 1,850 once percent-encoded: over 1 MB
      local code, resp = v1("PurgeUrlsCache", { Urls = urls(1000, 300, "\195\169") })
      assert.equal("AuthFailure.SignatureFailure", code)
      assert.truthy(resp.Error.Message:find("TC3-HMAC-SHA256", 1, true), resp.Error.Message)
      code = v1("PurgeUrlsCache", { Urls = urls(40, 1000) }, { method = "GET" }) -- about 48 KB of query
      assert.equal("RequestSizeLimitExceeded", code)
      code = v1("PurgeUrlsCache", { Urls = urls(25, 1000) }, { method = "GET" }) -- about 30 KB: fine
      assert.is_nil(code)
    end)

    it("accepts what the product's own V1 signer (core.sign_v1) sends, both methods, GET and POST", function()
      local core = require "ecdn.core"
      for _, sm in ipairs { "HmacSHA1", "HmacSHA256" } do
        for _, method in ipairs { "GET", "POST" } do
          local host = "127.0.0.1:" .. s.port
          local v = core.sign_v1 { secret_id = sim.DEFAULT_SECRET_ID, secret_key = sim.DEFAULT_SECRET_KEY, host = host,
                                   action = "PurgeUrlsCache", version = sim.VERSIONS.ecdn, timestamp = T, nonce = 7,
                                   method = method, signature_method = sm,
                                   params = { ["Urls.0"] = "https://www.example.com/\228\184\173 x+y" } }
          local req = method == "GET"
              and ("GET /?" .. v.query .. " HTTP/1.1\r\nHost: " .. host .. "\r\nConnection: close\r\n\r\n")
              or ("POST / HTTP/1.1\r\nHost: " .. host .. "\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                  .. "Content-Length: " .. #v.query .. "\r\nConnection: close\r\n\r\n" .. v.query)
          local status, raw = sim.http(s.port, req)
          assert.equal(200, status)
          local resp = cjson.decode(raw).Response
          assert.is_nil(resp.Error, raw)
          assert.same({ "https://www.example.com/\228\184\173 x+y" }, log_entry(resp.TaskId).urls)
        end
      end
    end)
  end)
end)
