-- Simulator authentication and routing: every AuthFailure code, the request
-- shapes official SDKs send (charset, Host with/without port, x-tc-action,
-- arbitrary SignedHeaders, unsigned payload), tokens, and the common errors
-- InvalidAction / NoSuchVersion / MissingParameter / UnknownParameter.
local sim = require "support.sim"

local BODY = '{"Urls":["http://www.example.com/a.jpg"]}'

local function code_of(decoded)
  return decoded and decoded.Response and decoded.Response.Error and decoded.Response.Error.Code
end

-- Sends and returns the error code (nil on success), asserting the envelope.
local function call(s, action, body, opts)
  local status, raw, decoded = sim.raw_request(s.port, action, body, opts)
  assert.equal(200, status, raw)
  assert.is_table(decoded, raw)
  assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$",
                 decoded.Response.RequestId)
  return code_of(decoded), decoded.Response
end

---------------------------------------------------------------------------
-- An independent TC3 signer for arbitrary SignedHeaders, built on the
-- openssl command line (so it shares no code with the simulator).

local function tmp_write(data)
  local path = os.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
  return path
end

local function openssl(args, data)
  local path = tmp_write(data)
  local p = assert(io.popen("openssl dgst -sha256 " .. args .. " " .. path .. " 2>&1"))
  local out = p:read("*a")
  p:close()
  os.remove(path)
  return assert(out:match("= (%x+)%s*$"), out)
end

local function hex(s)
  return (s:gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

local function hmac_hex(key_hex, data)
  return openssl("-mac HMAC -macopt hexkey:" .. key_hex, data)
end

-- headers: name -> value as sent; names: SignedHeaders in order.
local function tc3_signature(secret_key, service, timestamp, headers, names, body, method, query)
  local lines = {}
  for i, name in ipairs(names) do
    local v
    for k, value in pairs(headers) do
      if k:lower() == name then v = value end
    end
    v = (v or ""):match("^%s*(.-)%s*$")
    if name ~= "content-type" and name ~= "host" then v = v:lower() end
    lines[i] = name .. ":" .. v .. "\n"
  end
  local signed = table.concat(names, ";")
  local creq = (method or "POST") .. "\n/\n" .. (query or "") .. "\n" .. table.concat(lines) .. "\n"
      .. signed .. "\n" .. openssl("", body)
  local date = os.date("!%Y-%m-%d", timestamp)
  local sts = "TC3-HMAC-SHA256\n" .. timestamp .. "\n" .. date .. "/" .. service .. "/tc3_request\n"
      .. openssl("", creq)
  local k = hmac_hex(hex("TC3" .. secret_key), date)
  k = hmac_hex(k, service)
  k = hmac_hex(k, "tc3_request")
  return hmac_hex(k, sts), signed
end

-- Sends action/body signed over `names`, with extra headers.
local function call_custom(s, names, extra, opts)
  opts = opts or {}
  local ts = os.time()
  local service = opts.service or "ecdn"
  local _, signed = sim.build_request(s.port, "PurgeUrlsCache", BODY, { timestamp = ts, service = service })
  local headers = {}
  for k, v in pairs(signed.headers) do headers[k] = v end
  for k, v in pairs(extra) do headers[k] = v end
  local sig, list = tc3_signature(opts.secret_key or s.secret_key, service, ts, headers, names, BODY)
  headers.Authorization = string.format("TC3-HMAC-SHA256 Credential=%s/%s/%s/tc3_request, SignedHeaders=%s, "
                                        .. "Signature=%s", s.secret_id, os.date("!%Y-%m-%d", ts), service, list, sig)
  for k, v in pairs(opts.after or {}) do headers[k] = v end -- changed after signing
  return call(s, "PurgeUrlsCache", BODY, { timestamp = ts, service = service, headers = headers })
end

describe("simulator authentication", function()
  local s
  setup(function()
    s = sim.start { args = { "--rate", "0", "--seed", "7",
                             "--secret", sim.DEFAULT_SECRET_ID .. ":" .. sim.DEFAULT_SECRET_KEY,
                             "--secret", "AKIDTEMPORARY000000000000000000000000:tmpkey",
                             "--token", "AKIDTEMPORARY000000000000000000000000:session-token-1" } }
  end)
  teardown(function() s:stop() end)

  it("accepts the default credentials and answers a TaskId", function()
    local code, resp = call(s, "PurgeUrlsCache", BODY)
    assert.is_nil(code)
    assert.matches("^%d+%-[a-z0-9][a-z0-9][a-z0-9][a-z0-9][a-z0-9][a-z0-9][a-z0-9][a-z0-9]$", resp.TaskId)
  end)

  it("accepts what the official SDKs sign: charset, Host with or without the port, x-tc-action", function()
    assert.is_nil(call(s, "PurgeUrlsCache", BODY, { content_type = "application/json; charset=utf-8" }))
    assert.is_nil(call(s, "PurgeUrlsCache", BODY, { sign_action = true }))
    -- Signed "127.0.0.1" while the Host header carries the port, as some SDKs do.
    local _, signed = sim.build_request(s.port, "PurgeUrlsCache", BODY, { host = "127.0.0.1" })
    assert.is_nil(call(s, "PurgeUrlsCache", BODY, { host = "127.0.0.1",
                                                     headers = { Host = "127.0.0.1:" .. s.port } }))
    assert.truthy(signed.canonical_request:find("\nhost:127.0.0.1\n", 1, true))
  end)

  it("rejects a signature made for another Host", function()
    assert.equal("AuthFailure.SignatureFailure",
                 call(s, "PurgeUrlsCache", BODY, { host = "127.0.0.2", headers = { Host = "127.0.0.1:" .. s.port } }))
  end)

  it("tells ecdn from cdn by the Host or the credential scope", function()
    assert.is_nil(call(s, "PurgeUrlsCache", BODY, { service = "cdn" }))
    assert.is_nil(call(s, "PurgeUrlsCache", BODY, { service = "cdn", host = "cdn.tencentcloudapi.com" }))
    -- Host says ecdn, scope says cdn: the service signs with its own name and the signature fails.
    assert.equal("AuthFailure.SignatureFailure",
                 call(s, "PurgeUrlsCache", BODY, { service = "cdn", version = "2018-06-06",
                                                   host = "ecdn.tencentcloudapi.com" }))
    assert.equal("AuthFailure.InvalidAuthorization",
                 call(s, "PurgeUrlsCache", BODY, { service = "cvm", version = "2017-03-12" }))
  end)

  it("recomputes arbitrary SignedHeaders (an openssl-made signature)", function()
    -- First prove the test signer agrees with the project's signer.
    local ts = os.time()
    local _, signed = sim.build_request(s.port, "PurgeUrlsCache", BODY, { timestamp = ts })
    local sig = tc3_signature(s.secret_key, "ecdn", ts, signed.headers, { "content-type", "host" }, BODY)
    assert.equal(signed.signature, sig)

    assert.is_nil(call_custom(s, { "content-type", "host", "x-tc-timestamp", "x-tc-version" }, {}))
    assert.is_nil(call_custom(s, { "content-type", "host", "x-custom" }, { ["X-Custom"] = "  MiXed Value " }))
    assert.is_nil(call_custom(s, { "content-type", "host", "x-tc-action" }, {}))
    -- The same list, but a signed header changed after signing.
    assert.equal("AuthFailure.SignatureFailure",
                 call_custom(s, { "content-type", "host", "x-custom" }, { ["X-Custom"] = "a" },
                             { after = { ["X-Custom"] = "b" } }))
    assert.equal("AuthFailure.SignatureFailure",
                 call_custom(s, { "content-type", "host", "x-tc-timestamp" }, {}, { secret_key = "wrong" }))
  end)

  it("accepts GET requests signed over their query string (an SDK's ReqMethod GET)", function()
    local function get(query, sign_query)
      local ts = os.time()
      local headers = { ["Content-Type"] = "application/x-www-form-urlencoded", Host = "127.0.0.1:" .. s.port,
                        ["X-TC-Action"] = "PurgeUrlsCache", ["X-TC-Timestamp"] = tostring(ts),
                        ["X-TC-Version"] = sim.VERSIONS.ecdn }
      local sig = tc3_signature(s.secret_key, "ecdn", ts, headers, { "content-type", "host" }, "", "GET",
                                sign_query or query)
      headers.Authorization = string.format("TC3-HMAC-SHA256 Credential=%s/%s/ecdn/tc3_request, "
                                            .. "SignedHeaders=content-type;host, Signature=%s",
                                            s.secret_id, os.date("!%Y-%m-%d", ts), sig)
      local lines = { "GET /?" .. query .. " HTTP/1.1" }
      for k, v in pairs(headers) do lines[#lines + 1] = k .. ": " .. v end
      local status, raw = sim.http(s.port, table.concat(lines, "\r\n") .. "\r\nConnection: close\r\n\r\n")
      assert.equal(200, status)
      return assert(require("cjson").decode(raw)).Response
    end
    local query = "Urls.0=http%3A%2F%2Fwww.example.com%2Fget%20one&Urls.1=http%3A%2F%2Fwww.example.com%2Fg+2"
    local resp = get(query)
    assert.is_nil(resp.Error)
    local _, tasks = call(s, "DescribePurgeTasks", '{"TaskId":"' .. resp.TaskId .. '"}')
    local urls = {}
    for _, t in ipairs(tasks.PurgeLogs) do urls[#urls + 1] = t.Url end
    table.sort(urls)
    assert.same({ "http://www.example.com/g 2", "http://www.example.com/get one" }, urls)
    assert.equal("AuthFailure.SignatureFailure", get(query, query:gsub("one", "two")).Error.Code)
    assert.equal("UnknownParameter", get("Urls.0=http%3A%2F%2Fa.com%2F&Foo=1").Error.Code)
    assert.equal("InvalidParameter", get("Urls.1=http%3A%2F%2Fa.com%2F").Error.Code)
  end)

  it("accepts an unsigned payload (X-TC-Content-SHA256: UNSIGNED-PAYLOAD)", function()
    local ts = os.time()
    local _, signed = sim.build_request(s.port, "PurgeUrlsCache", "UNSIGNED-PAYLOAD", { timestamp = ts })
    assert.is_nil(call(s, "PurgeUrlsCache", BODY, {
      timestamp = ts, headers = { Authorization = signed.headers.Authorization,
                                  ["X-TC-Content-SHA256"] = "UNSIGNED-PAYLOAD" } }))
  end)

  it("answers AuthFailure.InvalidAuthorization for a missing or malformed Authorization", function()
    assert.equal("AuthFailure.InvalidAuthorization", call(s, "PurgeUrlsCache", BODY,
                                                         { headers = { Authorization = false } }))
    assert.equal("AuthFailure.InvalidAuthorization", call(s, "PurgeUrlsCache", BODY,
                                                         { headers = { Authorization = "Basic dXNlcjpwYXNz" } }))
    assert.equal("AuthFailure.InvalidAuthorization", call(s, "PurgeUrlsCache", BODY, { headers = {
      Authorization = "TC3-HMAC-SHA256 Credential=" .. s.secret_id .. "/2020-01-01/ecdn/tc3_request, "
                      .. "SignedHeaders=host, Signature=00" } }))
  end)

  it("answers AuthFailure.SecretIdNotFound for an unknown SecretId", function()
    assert.equal("AuthFailure.SecretIdNotFound",
                 call(s, "PurgeUrlsCache", BODY, { secret_id = "AKIDUNKNOWN0000000000000000000000000" }))
  end)

  it("answers AuthFailure.SignatureExpire beyond 300 s of skew, either way", function()
    assert.equal("AuthFailure.SignatureExpire", call(s, "PurgeUrlsCache", BODY, { timestamp = os.time() - 400 }))
    assert.equal("AuthFailure.SignatureExpire", call(s, "PurgeUrlsCache", BODY, { timestamp = os.time() + 400 }))
    assert.is_nil(call(s, "PurgeUrlsCache", BODY, { timestamp = os.time() - 250 }))
  end)

  it("answers AuthFailure.SignatureFailure for a wrong key or a body changed after signing", function()
    assert.equal("AuthFailure.SignatureFailure", call(s, "PurgeUrlsCache", BODY, { secret_key = "wrong" }))
    -- Signed application/json, sent with a charset (the pitfall the docs warn about).
    assert.equal("AuthFailure.SignatureFailure", call(s, "PurgeUrlsCache", BODY, {
      headers = { ["Content-Type"] = "application/json; charset=utf-8" } }))
    local ts = os.time()
    local _, signed = sim.build_request(s.port, "PurgeUrlsCache", BODY, { timestamp = ts })
    assert.equal("AuthFailure.SignatureFailure", call(s, "PurgeUrlsCache", BODY .. " ", {
      timestamp = ts, headers = { Authorization = signed.headers.Authorization } }))
  end)

  it("checks temporary credentials' token: AuthFailure.TokenFailure", function()
    local tmp = { secret_id = "AKIDTEMPORARY000000000000000000000000", secret_key = "tmpkey" }
    local function with(t) tmp.token = t return tmp end
    assert.is_nil(call(s, "PurgeUrlsCache", BODY, with("session-token-1")))
    assert.equal("AuthFailure.TokenFailure", call(s, "PurgeUrlsCache", BODY, with("other-token")))
    assert.equal("AuthFailure.TokenFailure", call(s, "PurgeUrlsCache", BODY, with(nil)))
    -- A token sent with permanent credentials is refused too.
    assert.equal("AuthFailure.TokenFailure", call(s, "PurgeUrlsCache", BODY, { token = "session-token-1" }))
  end)

  it("answers InvalidAction, NoSuchVersion and MissingParameter for bad routing headers", function()
    assert.equal("InvalidAction", call(s, "PurgeEverything", "{}"))
    assert.equal("InvalidAction", call(s, "PushUrlsCache", BODY)) -- exists in CDN only, not in ECDN
    assert.equal("NoSuchVersion", call(s, "PurgeUrlsCache", BODY, { version = "2018-06-06" }))
    assert.equal("NoSuchVersion", call(s, "PurgeUrlsCache", BODY, { service = "cdn", version = "2019-10-12" }))
    assert.equal("MissingParameter", call(s, "PurgeUrlsCache", BODY, { headers = { ["X-TC-Action"] = false } }))
    assert.equal("MissingParameter", call(s, "PurgeUrlsCache", BODY, { headers = { ["X-TC-Version"] = false } }))
    assert.equal("MissingParameter", call(s, "PurgeUrlsCache", BODY, { headers = { ["X-TC-Timestamp"] = false } }))
  end)

  it("answers MissingParameter without Urls and UnknownParameter for extra fields", function()
    local code, resp = call(s, "PurgeUrlsCache", "{}")
    assert.equal("MissingParameter", code)
    assert.truthy(resp.Error.Message:find("Urls", 1, true))
    code, resp = call(s, "PurgeUrlsCache", '{"Urls":["http://a.com/"],"Foo":1}')
    assert.equal("UnknownParameter", code)
    assert.truthy(resp.Error.Message:find("Foo", 1, true))
    -- Area and UrlEncode are CDN parameters; ECDN does not know them.
    assert.equal("UnknownParameter", call(s, "PurgeUrlsCache", '{"Urls":["http://a.com/"],"Area":"mainland"}'))
    assert.is_nil(call(s, "PurgeUrlsCache", '{"Urls":["http://a.com/"],"Area":"mainland","UrlEncode":true}',
                       { service = "cdn" }))
    assert.equal("InvalidParameter", call(s, "PurgeUrlsCache", '{"Urls":"http://a.com/"}'))
    assert.equal("InvalidParameter", call(s, "PurgeUrlsCache", "not json"))
  end)
end)

---------------------------------------------------------------------------
-- The verifier in-process (ecdn.sim.auth): the documentation's own vectors,
-- no product code in the simulator, a bounded key cache.

describe("simulator TC3 verifier (ecdn.sim.auth, in-process)", function()
  local auth = require "ecdn.sim.auth"
  local P1 = '{"Limit": 1, "Filters": [{"Values": ["\\u672a\\u547d\\u540d"], "Name": "instance-name"}]}'
  local TS = 1551113065 -- 2019-02-26 00:44 in UTC+8, scope date 2019-02-25 (UTC)

  local function doc_request(id, signed, sig)
    return {
      authorization = "TC3-HMAC-SHA256 Credential=" .. id .. "/2019-02-25/cvm/tc3_request, SignedHeaders="
                      .. signed .. ", Signature=" .. sig,
      ["content-type"] = "application/json; charset=utf-8", host = "cvm.tencentcloudapi.com",
      ["x-tc-action"] = "DescribeInstances", ["x-tc-version"] = "2017-03-12", ["x-tc-timestamp"] = tostring(TS),
    }
  end

  local function with_cvm(f) -- the vectors are for cvm; the simulator serves ecdn and cdn
    auth.SERVICES.cvm = true
    local ok, err = pcall(f)
    auth.SERVICES.cvm = nil
    assert(ok, err)
  end

  it("accepts the documentation's vector A (content-type;host) and C (x-tc-action), and nothing else", function()
    with_cvm(function()
      local id, key = "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE", "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"
      local cfg = { secrets = { [id] = key }, tokens = {} }
      local h = doc_request(id, "content-type;host", "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168")
      local who, code = auth.verify(cfg, h, P1, TS)
      assert.is_nil(code)
      assert.same({ secret_id = id, service = "cvm" }, who)
      -- the canonical request and string to sign the simulator built are the documented ones
      local creq, sts = auth.canonical(auth.parse(h.authorization), "cvm", h.host, h, TS, P1)
      assert.equal("POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n"
                   .. "content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064", creq)
      assert.equal("TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n"
                   .. "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031", sts)
      -- one changed byte anywhere is refused
      assert.equal("AuthFailure.SignatureFailure", select(2, auth.verify(cfg, h, P1 .. " ", TS)))
      local h2 = doc_request(id, "content-type;host",
                             "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525169")
      assert.equal("AuthFailure.SignatureFailure", select(2, auth.verify(cfg, h2, P1, TS)))

      local stars = ("*"):rep(32)
      local cid = "AKID" .. stars
      cfg = { secrets = { [cid] = stars }, tokens = {} }
      h = doc_request(cid, "content-type;host;x-tc-action",
                      "10b1a37a7301a02ca19a647ad722d5e43b4b3cff309d421d85b46093f6ab6c4f")
      who, code = auth.verify(cfg, h, P1, TS)
      assert.is_nil(code)
      assert.equal(cid, who.secret_id)
      local _, sts_c = auth.canonical(auth.parse(h.authorization), "cvm", h.host, h, TS, P1)
      assert.equal("7019a55be8395899b900fb5564e4200d984910f34794a27cb3fb7d10ff6a1e84", sts_c:match("(%x+)$"))
    end)
  end)

  it("uses no product code: no module of the simulator requires ecdn.* outside ecdn.sim", function()
    local root = debug.getinfo(1, "S").source:match("^@(.-)/?spec/sim_auth_spec%.lua$")
    root = (root == nil or root == "") and "." or root
    local files = { root .. "/bin/ecdn-sim" }
    local p = assert(io.popen("ls " .. root .. "/lua/ecdn/sim/*.lua"))
    for f in p:lines() do files[#files + 1] = f end
    p:close()
    assert.is_true(#files > 5)
    for _, path in ipairs(files) do
      local f = assert(io.open(path, "rb"))
      local src = f:read("*a")
      f:close()
      for name in src:gmatch("require%s*%(?%s*[\"']([%w%._]+)[\"']") do
        assert.is_falsy(name:match("^ecdn") and not name:match("^ecdn%.sim"), path .. " requires " .. name)
      end
      assert.is_nil(src:find("ecdn/bootstrap", 1, true), path)
    end
  end)

  it("keeps its derived-key cache bounded", function()
    local cfg = { secrets = {}, tokens = {} }
    for i = 1, auth.KEY_CACHE_MAX * 3 do
      local id = ("AKIDCACHE%06d"):format(i)
      cfg.secrets[id] = "key" .. i
      local h = { authorization = "TC3-HMAC-SHA256 Credential=" .. id .. "/2024-01-01/ecdn/tc3_request, "
                  .. "SignedHeaders=content-type;host, Signature=00",
                  ["content-type"] = "application/json", host = "ecdn.tencentcloudapi.com",
                  ["x-tc-timestamp"] = "1704067200" }
      assert.equal("AuthFailure.SignatureFailure", select(2, auth.verify(cfg, h, "{}", 1704067200)))
      assert.is_true(auth.key_cache_size() <= auth.KEY_CACHE_MAX)
    end
  end)
end)
