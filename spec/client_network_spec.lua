-- Network failures and TLS, against servers this spec starts on 127.0.0.1.
local ecdn = require "ecdn"
local socket = require "socket"
local proc = require "support.proc"

local ID, KEY = "AKIDnetworkspec0001", "network-spec-key"
local URLS = { "https://www.example.com/a.jpg" }

local function client(endpoint, extra)
  local opts = { secret_id = ID, secret_key = KEY, endpoint = endpoint }
  for k, v in pairs(extra or {}) do opts[k] = v end
  return assert(ecdn.client(opts))
end

local function network_error(res, err, name, retryable)
  assert.is_nil(res)
  assert.equal("ClientError.NetworkError", err.code)
  assert.equal("network", err.kind)
  assert.equal(retryable ~= false, err.retryable)
  assert.is_nil(err.status)
  if name then assert.equal(name, err.detail) end
  return err
end

-- TLS verification failures cannot be mended by a retry.
local function tls_error(res, err)
  network_error(res, err, nil, false)
  assert.is_true(err.tls)
  assert.is_false(err.sent)
  assert.truthy(err.message:find("^TLS: "), err.message)
  return err
end

describe("network failures", function()
  it("connection refused", function()
    local c = client("http://127.0.0.1:" .. proc.closed_port())
    local res, err = c:purge(URLS)
    network_error(res, err, "CURLE_COULDNT_CONNECT")
    res, err = c:call("DescribePurgeQuota", {})
    network_error(res, err, "CURLE_COULDNT_CONNECT")
    c:close()
  end)

  it("a failing proxy: the error never quotes the proxy URL and its password", function()
    local proxy = "http://user:PROXY-PASSWORD-42@127.0.0.1:" .. proc.closed_port()
    for _, p in ipairs{ proxy, "bogus://user:PROXY-PASSWORD-42@[" } do
      local c = client("http://127.0.0.1:" .. proc.closed_port(), { proxy = p })
      local res, err = c:purge(URLS)
      network_error(res, err)
      assert.is_nil(tostring(err):find("PROXY-PASSWORD-42", 1, true))
      assert.is_nil(err.message:find("PROXY-PASSWORD-42", 1, true))
      c:close()
    end
  end)

  it("refuses option values too long for a header line, naming the field", function()
    for _, field in ipairs{ "region", "language" } do
      local opts = { secret_id = ID, secret_key = KEY, endpoint = "http://127.0.0.1:1" }
      opts[field] = ("a"):rep(65537)
      local ok, msg = pcall(ecdn.client, opts)
      assert.is_false(ok)
      assert.truthy(msg:find("field '" .. field .. "' ", 1, true), msg)
    end
    -- Credentials are data, not code: nil, err naming which one, never its value.
    for field, name in pairs{ secret_id = "SecretId", secret_key = "SecretKey", token = "session token" } do
      local opts = { secret_id = ID, secret_key = KEY, endpoint = "http://127.0.0.1:1" }
      opts[field] = ("a"):rep(65537)
      local c, err = ecdn.client(opts)
      assert.is_nil(c)
      assert.equal("ClientError.CredentialError", err.code)
      assert.truthy(err.message:find(name .. " is longer than 65536 bytes", 1, true), err.message)
      assert.is_nil(err.message:find("aaaa", 1, true))
    end
  end)

  it("a server that never answers: a timeout error, never before the timeout", function()
    -- Listening without accepting: the kernel completes the handshake and
    -- takes the request, and no answer ever comes.
    local server = assert(socket.bind("127.0.0.1", 0))
    local _, port = server:getsockname()
    local c = client("http://127.0.0.1:" .. port, { timeout = 1.5 })
    local t0 = socket.gettime()
    local res, err = c:purge(URLS)
    local elapsed = socket.gettime() - t0
    server:close()
    c:close()
    network_error(res, err, "CURLE_OPERATION_TIMEDOUT")
    assert.is_true(err.sent) -- the kernel took the whole request: it may have been read
    -- Only the lower bound: how much later the error comes is the machine's business.
    assert.is_true(elapsed >= 1.5 - 0.01, "elapsed " .. elapsed)
  end)
end)

describe("TLS", function()
  local cert, key, pid, port

  setup(function()
    cert, key = proc.self_signed()
    local port_file = proc.tmpname()
    pid = proc.spawn("lua5.4 spec/support/tls_server.lua " .. cert .. " " .. key .. " " .. port_file)
    port = tonumber(proc.wait_file(port_file, 10))
    os.remove(port_file)
    assert(port, "TLS server did not start")
  end)

  teardown(function()
    proc.kill(pid)
    os.remove(cert)
    os.remove(key)
  end)

  it("refuses a self-signed server by default", function()
    local c = client("https://127.0.0.1:" .. port)
    local err = tls_error(c:purge(URLS))
    assert.equal("CURLE_PEER_FAILED_VERIFICATION", err.detail)
    c:close()
  end)

  it("accepts it with cafile", function()
    local c = client("https://127.0.0.1:" .. port, { cafile = cert })
    local res, err = c:purge(URLS)
    assert.is_nil(err)
    assert.same({ task_id = "tls-task-1", request_id = "tls-request-1", attempts = 1 }, res)
    c:close()
  end)

  it("accepts it with verify = false", function()
    local c = client("https://127.0.0.1:" .. port, { verify = false })
    assert.equal("tls-task-1", assert(c:purge(URLS)).task_id)
    c:close()
  end)

  it("reports an unreadable cafile as a network (TLS) error", function()
    local c = client("https://127.0.0.1:" .. port, { cafile = "/nonexistent/ca.pem" })
    tls_error(c:purge(URLS))
    c:close()
  end)
end)
