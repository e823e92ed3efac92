-- How each kind of failure is classified: broken and oversized responses
-- from a scripted server (spec/support/raw_server.lua), dirty strings from
-- the server, TLS failures, bad credentials, bad endpoints and URLs without
-- a host. Each error table must say what happened, whether a retry can help
-- and whether the request went out.
local ecdn = require "ecdn"
local cjson = require "cjson"
local sim = require "support.sim"
local proc = require "support.proc"

local ID, KEY = "AKIDclassifyspec0001", "classify-spec-key"
local URLS = { "https://www.example.com/a.jpg" }
local V = assert(loadfile("spec/support/raw_server.lua"))("--values")

local function client(endpoint, extra)
  local opts = { secret_id = ID, secret_key = KEY, endpoint = endpoint, timeout = 20 }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return assert(ecdn.client(opts))
end

local read_file = proc.read_file

local with_server = require("support.raw").with

-- Runs bin/ecdn-purge with this spec's interpreter and the given environment
-- assignments (name = value, false to unset); returns stdout, stderr, exit code.
local function cli(env, args)
  local err_file = proc.tmpname()
  local cmd = "env -u TENCENTCLOUD_SESSION_TOKEN -u TENCENTCLOUD_SECRET_ID -u TENCENTCLOUD_SECRET_KEY"
  for k, v in pairs(env) do cmd = cmd .. " " .. proc.quote(k .. "=" .. v) end
  cmd = cmd .. " " .. proc.lua .. " bin/ecdn-purge"
  for _, a in ipairs(args) do cmd = cmd .. " " .. proc.quote(a) end
  local out, rc = proc.run(cmd .. " </dev/null 2>" .. err_file)
  local err = read_file(err_file) or ""
  os.remove(err_file)
  return out, err, rc
end

local function is_valid_utf8(s)
  local i, n = 1, #s
  while i <= n do
    local b = s:byte(i)
    local len = b < 0x80 and 1 or (b >= 0xC2 and b <= 0xDF) and 2 or (b >= 0xE0 and b <= 0xEF) and 3
      or (b >= 0xF0 and b <= 0xF4) and 4 or nil
    if not len then return false end
    for k = i + 1, i + len - 1 do
      local c = s:byte(k)
      if not c or c < 0x80 or c > 0xBF then return false end
    end
    i = i + len
  end
  return true
end

describe("broken and oversized responses", function()
  it("the connection closes in the middle of the headers: partial_headers, retryable, sent", function()
    with_server("partial_headers", function(endpoint)
      local c = client(endpoint)
      local res, err = c:purge(URLS)
      assert.is_nil(res)
      assert.equal("ClientError.NetworkError", err.code)
      assert.equal("network", err.kind)
      assert.equal("partial_headers", err.detail)
      assert.is_true(err.retryable)
      assert.is_true(err.sent)
      assert.is_nil(err.status)
      assert.is_string(err.message)
      c:close()
    end)
  end)

  it("a 200 with a body over 16 MiB: ResponseTooLarge, body_too_large, not retryable, sent", function()
    with_server("big_body", function(endpoint)
      local c = client(endpoint)
      local res, err = c:purge(URLS)
      assert.is_nil(res)
      assert.equal("ClientError.ResponseTooLarge", err.code, tostring(err))
      assert.equal("http", err.kind)
      assert.equal("body_too_large", err.detail)
      assert.is_false(err.retryable)
      assert.is_true(err.sent)
      assert.equal(200, err.status)
      c:close()
    end)
  end)

  it("many small headers over 64 KiB in total: headers_too_large, not retryable", function()
    with_server("many_headers", function(endpoint)
      local c = client(endpoint)
      local res, err = c:purge(URLS)
      assert.is_nil(res)
      assert.equal("ClientError.ResponseTooLarge", err.code, tostring(err))
      assert.equal("http", err.kind)
      assert.equal("headers_too_large", err.detail)
      assert.is_false(err.retryable)
      assert.is_true(err.sent)
      c:close()
    end)
  end)

  it("one 150 KB header line: headers_too_large, not retryable", function()
    with_server("long_header", function(endpoint)
      local c = client(endpoint)
      local res, err = c:purge(URLS)
      assert.is_nil(res)
      assert.equal("ClientError.ResponseTooLarge", err.code, tostring(err))
      assert.equal("headers_too_large", err.detail)
      assert.is_false(err.retryable)
      c:close()
    end)
  end)

  it("the raw server's ok mode is a success (the harness itself works)", function()
    with_server("ok", function(endpoint)
      local c = client(endpoint)
      local res, err = c:purge(URLS)
      assert.is_nil(err)
      assert.same({ task_id = "raw-task-1", request_id = "raw-request-1", attempts = 1 }, res)
      c:close()
    end)
  end)
end)

describe("strings from the server are cleaned", function()
  local CLEAN_TASK = "task-\\x1B[31m-\\x00-\\xFF\\xFE-é-\\xC2\\x85-\\x7F-end"
  local CLEAN_REQUEST = ("r"):rep(125) .. "..."
  local CLEAN_CODE = "Bad\\x09Code\\xE2\\x82" .. ("c"):rep(106) .. "..."
  local CLEAN_MESSAGE = "\\x01" .. ("m"):rep(1017) .. "..."

  it("the expected values hold (lengths at the caps)", function()
    assert.equal(128, #CLEAN_REQUEST)
    assert.equal(128, #CLEAN_CODE)
    assert.equal(1024, #CLEAN_MESSAGE)
    -- the server's raw values are what the cleaning must mend
    assert.truthy(V.TASK_ID:find("\255", 1, true))
    assert.equal(5000, #V.REQUEST_ID)
  end)

  it("TaskId and RequestId of a success", function()
    with_server("dirty_task", function(endpoint)
      local c = client(endpoint)
      local res, err = c:purge(URLS)
      assert.is_nil(err)
      assert.equal(CLEAN_TASK, res.task_id)
      assert.equal(CLEAN_REQUEST, res.request_id)
      c:close()
    end)
  end)

  it("Error.Code, Error.Message and RequestId of an API error", function()
    with_server("dirty_error", function(endpoint)
      local c = client(endpoint)
      local res, err = c:purge(URLS)
      assert.is_nil(res)
      assert.equal("api", err.kind)
      assert.equal(CLEAN_CODE, err.code)
      assert.equal(CLEAN_MESSAGE, err.message)
      assert.equal(CLEAN_REQUEST, err.request_id)
      assert.is_false(err.retryable)
      assert.is_true(err.sent)
      assert.equal(200, err.status)
      local line = tostring(err)
      assert.is_nil(line:find("[%z\1-\31\127]"), "tostring(err) has a control byte")
      assert.is_true(is_valid_utf8(line))
      c:close()
    end)
  end)

  it("ecdn.decode.clean cuts on a character boundary", function()
    local clean = require("ecdn.decode").clean
    assert.equal(("m"):rep(1020) .. "...", clean(("m"):rep(1020) .. "ééé", 1024))
    assert.equal("ok", clean("ok", 128))
    assert.equal("a\\x0Ab", clean("a\nb", 128))
    assert.equal("\\xC0\\xAF", clean("\192\175", 128)) -- an overlong '/' (decimal escapes: Lua 5.1 has no \x)
    assert.equal("\\xED\\xA0\\x80", clean("\237\160\128", 128)) -- a UTF-16 surrogate
    assert.is_nil(clean(42, 128))
  end)

  it("the CLI's --json output for such an error is valid JSON without raw control bytes", function()
    with_server("dirty_error", function(endpoint)
      local out, _, rc = cli({ TENCENTCLOUD_SECRET_ID = ID, TENCENTCLOUD_SECRET_KEY = KEY },
        { "--endpoint", endpoint, "--json", URLS[1] })
      assert.equal(1, rc)
      local body = out:gsub("\n$", "")
      assert.is_nil(body:find("[%z\1-\31\127]"), "raw control byte in " .. body)
      assert.is_true(is_valid_utf8(body))
      local doc = assert(cjson.decode(body))
      assert.equal(CLEAN_CODE, doc.error.code)
      assert.equal(CLEAN_MESSAGE, doc.error.message)
      assert.equal(CLEAN_REQUEST, doc.error.request_id)
    end)
  end)
end)

describe("TLS failures are permanent", function()
  local base = proc.tmpname()
  local servers = {}

  local function tls_server(cert, key)
    local port_file = proc.tmpname()
    servers[#servers + 1] = proc.spawn("lua5.4 spec/support/tls_server.lua " .. cert .. " " .. key .. " " .. port_file)
    local port = tonumber(proc.wait_file(port_file, 10))
    os.remove(port_file)
    assert(port, "TLS server did not start")
    return "https://127.0.0.1:" .. port
  end

  local self_cert, self_key, wrong_cert, wrong_key, garbage, self_url, wrong_url

  setup(function()
    self_cert, self_key = proc.self_signed()
    wrong_cert, wrong_key = base .. "-wrong-cert.pem", base .. "-wrong-key.pem"
    local _, rc = proc.run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
      .. " -keyout " .. wrong_key .. " -out " .. wrong_cert .. " -days 1 -subj /CN=wrong.example"
      .. " -addext subjectAltName=DNS:wrong.example >/dev/null 2>&1")
    assert(rc == 0, "openssl req failed")
    garbage = base .. "-garbage.pem"
    local f = assert(io.open(garbage, "wb"))
    f:write("this is not a certificate\n", ("\1\2garbage\255"):rep(200))
    f:close()
    self_url = tls_server(self_cert, self_key)
    wrong_url = tls_server(wrong_cert, wrong_key)
  end)

  teardown(function()
    for _, pid in ipairs(servers) do proc.kill(pid) end
    for _, p in ipairs { self_cert, self_key, wrong_cert, wrong_key, garbage } do os.remove(p) end
  end)

  local function tls_error(res, err)
    assert.is_nil(res)
    assert.is_table(err)
    assert.equal("ClientError.NetworkError", err.code, tostring(err))
    assert.equal("network", err.kind)
    assert.is_true(err.tls)
    assert.is_false(err.retryable, tostring(err))
    assert.equal("TLS: ", err.message:sub(1, 5))
    assert.is_false(err.sent)
    return err
  end

  it("the servers work with the right trust (the harness itself)", function()
    local c = client(self_url, { cafile = self_cert })
    assert.equal("tls-task-1", assert(c:purge(URLS)).task_id)
    c:close()
  end)

  it("a self-signed certificate", function()
    local c = client(self_url)
    local err = tls_error(c:purge(URLS))
    assert.truthy(err.detail == "CURLE_PEER_FAILED_VERIFICATION" or err.detail == "CURLE_SSL_CACERT", err.detail)
    c:close()
  end)

  it("a trusted certificate for another name", function()
    local c = client(wrong_url, { cafile = wrong_cert })
    local err = tls_error(c:purge(URLS))
    assert.equal("CURLE_PEER_FAILED_VERIFICATION", err.detail)
    c:close()
  end)

  it("an unreadable cafile", function()
    local c = client(self_url, { cafile = "/nonexistent/ca.pem" })
    local err = tls_error(c:purge(URLS))
    assert.is_string(err.detail)
    c:close()
  end)

  it("a cafile holding garbage", function()
    local c = client(self_url, { cafile = garbage })
    tls_error(c:purge(URLS))
    c:close()
  end)

  it("call() classifies the same way", function()
    local c = client(wrong_url, { cafile = wrong_cert })
    tls_error(c:call("DescribePurgeQuota"))
    c:close()
  end)
end)

describe("credentials", function()
  local LONG = ("A"):rep(65537)
  local BAD = {
    { what = "CR in the SecretId", id = "AKIDsecret\rVALUE1", key = "key", problem = "CR, LF or NUL" },
    { what = "LF in the SecretKey", id = "AKIDgood", key = "secretVALUE2\nmore", problem = "CR, LF or NUL" },
    { what = "a SecretKey over 65536 bytes", id = "AKIDgood", key = LONG, problem = "longer than 65536 bytes" },
    { what = "LF in the session token", id = "AKIDgood", key = "key", token = "tokVALUE3\nx",
      problem = "CR, LF or NUL" },
    { what = "a session token over 65536 bytes", id = "AKIDgood", key = "key", token = LONG,
      problem = "longer than 65536 bytes" },
  }

  local function credential_error(res, err, case)
    assert.is_nil(res)
    assert.is_table(err, case.what)
    assert.equal("ClientError.CredentialError", err.code, case.what)
    assert.is_false(err.retryable)
    assert.is_false(err.sent)
    assert.truthy(err.message:find(case.problem, 1, true), err.message)
    for _, v in ipairs { case.id, case.key, case.token } do
      if v ~= "AKIDgood" and v ~= "key" then
        assert.is_nil(err.message:find(v:sub(1, 12), 1, true), "the message quotes the value")
      end
    end
  end

  for _, case in ipairs(BAD) do
    it("options: " .. case.what .. " -> nil, CredentialError (no raise)", function()
      local ok, res, err = pcall(ecdn.client, { secret_id = case.id, secret_key = case.key, token = case.token,
                                               endpoint = "http://127.0.0.1:1" })
      assert.is_true(ok, tostring(res))
      credential_error(res, err, case)
    end)

    it("environment: " .. case.what .. " -> nil, CredentialError", function()
      local env = { TENCENTCLOUD_SECRET_ID = case.id, TENCENTCLOUD_SECRET_KEY = case.key,
                    TENCENTCLOUD_SESSION_TOKEN = case.token }
      local saved = os.getenv
      os.getenv = function(name) return env[name] end -- luacheck: ignore (the resolver reads os.getenv)
      local ok, res, err = pcall(ecdn.client, { endpoint = "http://127.0.0.1:1" })
      os.getenv = saved -- luacheck: ignore
      assert.is_true(ok, tostring(res))
      credential_error(res, err, case)
    end)

    it("CLI: " .. case.what .. " in the environment -> exit 2, the problem named, never the value", function()
      local s = sim.start { args = { "--rate", "0" } }
      local env = { TENCENTCLOUD_SECRET_ID = case.id, TENCENTCLOUD_SECRET_KEY = case.key,
                    TENCENTCLOUD_SESSION_TOKEN = case.token }
      local out, err, rc = cli(env, { "--endpoint", s.url, URLS[1] })
      local requests = s:stats().requests
      s:stop()
      assert.equal(2, rc, err)
      assert.equal("", out)
      assert.truthy(err:find(case.problem, 1, true), err)
      assert.truthy(err:find("CredentialError", 1, true), err)
      for _, v in ipairs { "VALUE1", "VALUE2", "VALUE3", "AAAAAAAAAAAAAAAA" } do
        assert.is_nil(err:find(v, 1, true), "stderr quotes the value")
      end
      assert.equal(0, requests)
    end)
  end
end)

describe("endpoints", function()
  local BAD = {
    "http://h:80:80", "http://127.0.0.1:42555.0", "http://127.0.0.1:0", "http://127.0.0.1:65536",
    "http://user@host", "http://host/path", "http://host?x", "ftp://host",
    "https://someone:PASSWORD-77@host:443",
  }
  local GOOD = {
    ["http://127.0.0.1:8080"] = { "http://127.0.0.1:8080/", "127.0.0.1:8080" },
    ["https://ECDN.tencentcloudapi.com/"] = { "https://ecdn.tencentcloudapi.com/", "ecdn.tencentcloudapi.com" },
    ["http://[::1]:8080"] = { "http://[::1]:8080/", "[::1]:8080" },
  }
  local parse = require("ecdn.endpoint").parse

  for _, ep in ipairs(BAD) do
    it("ecdn.client raises at the caller's line for " .. ep, function()
      local function make() -- not a tail call: the caller's frame must exist
        local c = ecdn.client { secret_id = ID, secret_key = KEY, endpoint = ep }
        return c
      end
      local line = debug.getinfo(make, "S").linedefined + 1
      local ok, msg = pcall(make)
      assert.is_false(ok)
      local where, rest = tostring(msg):match("^([^:]+:%d+): (.*)$")
      assert.equal("client_classify_spec.lua:" .. line, where and where:match("[^/]*$"), msg)
      assert.equal("ecdn.client: field 'endpoint' ", rest:sub(1, 30))
      local url, why = parse(ep)
      assert.is_nil(url)
      assert.equal("ecdn.client: field 'endpoint' " .. why, rest)
      assert.is_nil(rest:find("PASSWORD-77", 1, true), "the endpoint is never quoted")
    end)

    it("the CLI refuses --endpoint " .. ep .. " with exit 2 and the same reason", function()
      local out, err, rc = cli({ TENCENTCLOUD_SECRET_ID = ID, TENCENTCLOUD_SECRET_KEY = KEY },
        { "--endpoint", ep, URLS[1] })
      assert.equal(2, rc, err)
      assert.equal("", out)
      local _, why = parse(ep)
      assert.truthy(err:find(why, 1, true), err)
      assert.is_nil(err:find("traceback", 1, true), err)
      assert.is_nil(err:find("PASSWORD-77", 1, true), err)
    end)
  end

  for ep, want in pairs(GOOD) do
    it("accepts " .. ep, function()
      assert.same(want, { parse(ep) })
      local c = ecdn.client { secret_id = ID, secret_key = KEY, endpoint = ep }
      assert.equal(want[1], c:info().endpoint)
      c:close()
    end)
  end
end)

describe("URLs without a host", function()
  local s
  setup(function() s = sim.start { args = { "--rate", "0" }, log = true } end)
  teardown(function() s:stop() end)

  for _, url in ipairs { "https://@/x", "https://:80/x", "https://user@:80/x" } do
    it("are refused locally: " .. url, function()
      local c = client(s.url, { secret_id = s.secret_id, secret_key = s.secret_key })
      local before = s:stats()
      local res, err = c:purge { "https://www.example.com/fine", url }
      assert.is_nil(res)
      assert.equal("ClientError.InvalidParameter", err.code)
      assert.equal("client", err.kind)
      assert.equal("no_host", err.problem)
      assert.equal(2, err.index)
      assert.is_false(err.sent)
      assert.is_false(err.retryable)
      local after = s:stats()
      assert.equal(before.requests, after.requests)
      assert.equal(before.connections, after.connections)
      assert.equal("", s:log_text())
      c:close()
    end)
  end
end)

describe("programming errors raise at the caller's line", function()
  it("purge with a string", function()
    local c = client("http://127.0.0.1:1")
    local function bad() local r = c:purge("https://www.example.com/"); return r end
    local line = debug.getinfo(bad, "S").linedefined
    local ok, msg = pcall(bad)
    assert.is_false(ok)
    assert.truthy(msg:find("client_classify_spec.lua:" .. line
      .. ": ecdn.client:purge: urls must be a table (got string)", 1, true), msg)
    c:close()
  end)

  it("purge on a closed client", function()
    local c = client("http://127.0.0.1:1")
    c:close()
    local function bad() local r = c:purge(URLS); return r end
    local line = debug.getinfo(bad, "S").linedefined
    local ok, msg = pcall(bad)
    assert.is_false(ok)
    assert.truthy(msg:find("client_classify_spec.lua:" .. line .. ": ecdn.client:purge: the client is closed", 1, true),
      msg)
  end)
end)
