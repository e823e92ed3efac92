-- resty.ecdn's cosocket transport (resty.ecdn.http) in a real nginx, against
-- scripted servers (more server blocks of the same nginx, raw bytes through
-- ngx.req.socket(true)) and the TLS test server: chunked and Content-Length
-- bodies, Connection: close honoured, the 16 MiB / 64 KiB caps, every
-- failure's detail/sent/retryable/attempts, no second purge on a dead
-- kept-alive connection, TLS verification. Where libcurl can meet the same
-- server, ecdn.client (run here, in plain Lua) must give the same error table.
local nginx = require "support.nginx"
local proc = require "support.proc"
local socket = require "socket"

local ID, KEY = "AKIDRESTYHTTP000000000000000000000000", "RestyHttpSecretKey00000000000000"
local OK_BODY = '{"Response":{"TaskId":"raw-task-1","RequestId":"raw-request-1"}}'

-- Scripted servers: mode -> Lua run in content_by_lua_block (with t.raw).
local MODES = {
  -- nginx's own chunked encoding (HTTP/1.1, no Content-Length), kept alive
  chunked = [[
    ngx.req.read_body()
    t.count("chunked")
    ngx.header.content_type = "application/json"
    ngx.print('{"Response":{"TaskId":"chunked-')
    ngx.flush(true)
    ngx.print('task-1","RequestId":"chunked-request-1"}}')
  ]],
  -- plain kept-alive answers, counted (for the keep-alive time)
  ka = [[
    ngx.req.read_body()
    t.count("ka")
    ngx.header.content_type = "application/json"
    ngx.header.content_length = #t.OK
    ngx.print(t.OK)
  ]],
  -- chunk extensions and a trailer, by hand
  chunked_raw = [[
    local b = '{"Response":{"TaskId":"raw-chunk-1","RequestId":"raw-chunk-req"}}'
    t.raw("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
      .. "Connection: close\r\n\r\n" .. string.format("%x", 10) .. ";name=value\r\n" .. b:sub(1, 10) .. "\r\n"
      .. string.format("%X", #b - 10) .. "\r\n" .. b:sub(11) .. "\r\n0\r\nX-Trailer: yes\r\n\r\n")
  ]],
  -- says Connection: close but keeps the socket open for a while: a client
  -- that put it back in the pool would write its next request here
  close = [[
    t.count("close")
    t.raw("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " .. #t.OK
      .. "\r\nConnection: close\r\n\r\n" .. t.OK, 1)
  ]],
  -- 16 MiB + 1 really sent (libcurl reads up to the cap; resty.ecdn stops at the header)
  big_cl = [[t.raw("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 16777217\r\n\r\n"
    .. string.rep("x", 16777217))]],
  big_cl_503 = [[t.raw("HTTP/1.1 503 Busy\r\nContent-Length: 16777217\r\n\r\n{")]],
  big_chunk = [[t.raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1000001\r\n{")]],
  many_headers = [[
    local h = {}
    for i = 1, 2000 do h[i] = string.format("X-Filler-%04d: %s\r\n", i, string.rep("v", 24)) end
    t.raw("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" .. table.concat(h)
      .. "Content-Length: " .. #t.OK .. "\r\nConnection: close\r\n\r\n" .. t.OK)
  ]],
  partial_headers = [[t.raw("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Le")]],
  partial_body = [[t.raw("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"Resp")]],
  nothing = [[ngx.req.read_body() ngx.exit(444)]],
  garbage = [[t.raw("SSH-2.0-OpenSSH_9.2\r\n\r\n")]],
  -- the first request of a connection is answered (kept alive), the second
  -- is read and the connection closed without an answer
  second_dies = [[
    ngx.req.read_body()
    t.count("second_dies")
    if ngx.var.connection_requests ~= "1" then return ngx.exit(444) end
    ngx.header.content_type = "application/json"
    ngx.header.content_length = #t.OK
    ngx.print(t.OK)
  ]],
  slow = [[ngx.req.read_body() ngx.sleep(2) ngx.print("late")]],
  -- bytes trickled for 5 s (each one restarts nginx's read timer): the head,
  -- a Content-Length body, a chunked body
  trickle_head = [[t.trickle("HTTP/1.1 200 OK\r\n", function(i) return "X-Slow-" .. i .. ": x\r\n" end)]],
  trickle_body = [[t.trickle("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", function() return "x" end)]],
  trickle_chunked = [[t.trickle("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    function() return "1\r\nx\r\n" end)]],
  -- chunked trailers without end (80 KiB, then the blank line)
  many_trailers = [[
    local h = {}
    for i = 1, 2000 do h[i] = string.format("X-Trailer-%04d: %s\r\n", i, string.rep("v", 24)) end
    t.raw("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
      .. string.format("%x", #t.OK) .. "\r\n" .. t.OK .. "\r\n0\r\n" .. table.concat(h) .. "\r\n")
  ]],
  -- a head whose lines end in bare LF (libcurl takes it)
  lf_only = [[t.raw("HTTP/1.1 200 OK\nContent-Type: application/json\nContent-Length: " .. #t.OK
    .. "\nConnection: close\n\n" .. t.OK)]],
  -- Content-Length twice: the same value (fine), differing values (refused)
  cl_twice = [[t.raw("HTTP/1.1 200 OK\r\nContent-Length: " .. #t.OK .. "\r\nContent-Length: " .. #t.OK
    .. "\r\nConnection: close\r\n\r\n" .. t.OK)]],
  cl_differ = [[t.raw("HTTP/1.1 200 OK\r\nContent-Length: " .. #t.OK .. "\r\nContent-Length: " .. (#t.OK - 1)
    .. "\r\nConnection: close\r\n\r\n" .. t.OK)]],
}

local MODE_NAMES = {}
for k in pairs(MODES) do MODE_NAMES[#MODE_NAMES + 1] = k end
table.sort(MODE_NAMES)

describe("resty.ecdn.http in nginx", function()
  local n, ports = nil, {}
  local tls = {} -- name -> { pid, port, cert, key }

  local function start_tls(name, cert, key)
    local port_file = proc.tmpname()
    local pid = proc.spawn("lua5.4 spec/support/tls_server.lua " .. cert .. " " .. key .. " " .. port_file)
    local port = tonumber(proc.wait_file(port_file, 10))
    os.remove(port_file)
    assert(port, "TLS server did not start")
    tls[name] = { pid = pid, port = port, cert = cert, key = key }
  end

  setup(function()
    -- trusted: the 127.0.0.1 certificate; untrusted: another one; other_name:
    -- trusted, but for www.other.example only
    local c1, k1 = proc.self_signed()
    local c2, k2 = proc.self_signed()
    local base = proc.tmpname()
    local c3, k3 = base .. "-other-cert.pem", base .. "-other-key.pem"
    local _, rc = proc.run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
      .. " -keyout " .. k3 .. " -out " .. c3 .. " -days 1 -subj /CN=www.other.example"
      .. " -addext subjectAltName=DNS:www.other.example >/dev/null 2>&1")
    assert(rc == 0, "openssl req failed")
    start_tls("trusted", c1, k1)
    tls.certs = { c1, k1, c2, k2, c3, k3 }
    local bundle = base .. "-bundle.pem"
    local f = assert(io.open(bundle, "w"))
    f:write(proc.read_file(c1), proc.read_file(c3))
    f:close()
    tls.bundle = bundle

    local servers, vars = {}, { id = ID, key = KEY, bundle = bundle, ok = OK_BODY }
    for _, name in ipairs(MODE_NAMES) do
      ports[name] = proc.closed_port()
      vars["p_" .. name] = ports[name]
      servers[#servers + 1] = "server { listen 127.0.0.1:${p_" .. name .. "}; lua_socket_log_errors off;\n"
        .. "  location / { content_by_lua_block { " .. MODES[name] .. " } } }\n"
    end
    -- nginx as TLS server too: untrusted certificate, trusted one for another
    -- name, and the trusted one with keep-alive (tls_server.lua closes after
    -- each answer, and stops serving once a client sends close_notify
    -- without reading its answer, as nginx does after a failed verification)
    local TLS_OK = "location / { content_by_lua_block { ngx.req.read_body() t.count(ngx.var.server_port) "
      .. "ngx.header.content_type = 'application/json' ngx.print(t.TLS) } }"
    for _, v in ipairs { { "untrusted", c2, k2 }, { "other_name", c3, k3 }, { "keepalive", c1, k1 } } do
      ports[v[1]] = proc.closed_port()
      servers[#servers + 1] = "server { listen 127.0.0.1:" .. ports[v[1]] .. " ssl; ssl_certificate " .. v[2]
        .. "; ssl_certificate_key " .. v[3] .. "; " .. TLS_OK .. " }\n"
    end
    n = nginx.start {
      workers = 1,
      helpers = true,
      vars = vars,
      http = "lua_ssl_trusted_certificate ${bundle};\n" .. table.concat(servers),
      init = [[
        local ecdn = require "resty.ecdn"
        t.OK = '${ok}'
        t.TLS = '{"Response":{"TaskId":"tls-task-1","RequestId":"tls-request-1"}}'
        function t.client(endpoint, extra)
          local o = { endpoint = endpoint, secret_id = "${id}", secret_key = "${key}", rate = 0 }
          for k, v in pairs(extra or {}) do o[k] = v end
          return assert(ecdn.new(o))
        end
        function t.count(name)
          if ngx.var.connection_requests == "1" then ngx.shared.results:incr("conns:" .. name, 1, 0) end
          ngx.shared.results:incr("reqs:" .. name, 1, 0)
        end
        -- raw bytes as the answer; `hold`: keep the connection open that long
        -- and note whether the client writes to it again
        -- `first`, then piece(i) every 0.2 s for 5 s (until the client goes)
        function t.trickle(first, piece)
          ngx.req.read_body()
          local sock = assert(ngx.req.socket(true))
          if not sock:send(first) then return end
          for i = 1, 25 do
            ngx.sleep(0.2)
            if not sock:send(piece(i)) then return end
          end
        end
        function t.raw(bytes, hold)
          ngx.req.read_body()
          local sock = assert(ngx.req.socket(true))
          sock:send(bytes)
          if hold then
            sock:settimeout(hold * 1000)
            if sock:receive(1) then ngx.shared.results:set("reused:" .. ngx.var.server_port, true) end
          end
        end
      ]],
      server = [[
        location = /purge { content_by_lua_block {
          local a = ngx.var.arg_timeout and { timeout = tonumber(ngx.var.arg_timeout) } or {}
          if ngx.var.arg_verify == "0" then a.verify = false end
          if ngx.var.arg_ka then a.keepalive_timeout = tonumber(ngx.var.arg_ka) end
          local c = t.client(ngx.unescape_uri(ngx.var.arg_endpoint), a)
          t.say(c:purge{ "https://www.example.com/http/a.jpg" })
        } }
        location = /quota { content_by_lua_block {
          local c = t.client(ngx.unescape_uri(ngx.var.arg_endpoint))
          t.say(c:call("DescribePurgeQuota", {}))
        } }
        location = /count { content_by_lua_block {
          local d = ngx.shared.results
          ngx.say(require("cjson").encode { conns = d:get("conns:" .. ngx.var.arg_name) or 0,
                                            reqs = d:get("reqs:" .. ngx.var.arg_name) or 0,
                                            reused = d:get("reused:" .. ngx.var.arg_port) or false })
        } }
      ]],
    }
  end)

  teardown(function()
    if n then n:stop() end
    if tls.trusted then proc.kill(tls.trusted.pid) end
    for _, f in ipairs(tls.certs or {}) do os.remove(f) end
    if tls.bundle then os.remove(tls.bundle) end
  end)

  local allow = {}
  before_each(function() allow = {} end)
  after_each(function() assert.same({}, n:problems(allow)) end)

  local function endpoint(mode) return "http://127.0.0.1:" .. ports[mode] end

  local function purge(ep, query)
    return assert(n:json("/purge?endpoint=" .. ep .. (query or "")))
  end

  -- ecdn.client (libcurl) against the same endpoint, from this process.
  local function curl_purge(ep)
    local c = assert(require("ecdn").client { endpoint = ep, secret_id = ID, secret_key = KEY })
    local res, err = c:purge{ "https://www.example.com/http/a.jpg" }
    c:close()
    return res, err
  end

  local SAME = { "code", "kind", "detail", "sent", "retryable", "status", "tls", "attempts" }
  local function same_as_curl(out, ep)
    local _, cerr = curl_purge(ep)
    assert.is_table(cerr)
    for _, k in ipairs(SAME) do
      local mine, theirs = out.err[k], cerr[k]
      if theirs == nil and k == "tls" then theirs = false end
      if mine == nil and k == "tls" then mine = false end
      assert.equal(theirs, mine, "field " .. k .. " differs from ecdn.client's")
    end
  end

  local function count(mode)
    return assert(n:json("/count?name=" .. mode .. "&port=" .. ports[mode]))
  end

  it("reads a chunked body (nginx's own) and keeps the connection alive", function()
    for _ = 1, 3 do
      local out = purge(endpoint("chunked"))
      assert.is_nil(out.err)
      assert.same({ task_id = "chunked-task-1", request_id = "chunked-request-1", attempts = 1 }, out.res)
    end
    assert.same({ conns = 1, reqs = 3, reused = false }, count("chunked"))
  end)

  it("reads chunk extensions and trailers", function()
    local out = purge(endpoint("chunked_raw"))
    assert.is_nil(out.err)
    assert.same({ task_id = "raw-chunk-1", request_id = "raw-chunk-req", attempts = 1 }, out.res)
  end)

  it("honours Connection: close (never writes to that connection again)", function()
    for _ = 1, 3 do
      local out = purge(endpoint("close"))
      assert.is_nil(out.err)
      assert.equal("raw-task-1", out.res.task_id)
    end
    assert.same({ conns = 3, reqs = 3, reused = false }, count("close"))
  end)

  it("a Content-Length over 16 MiB: ResponseTooLarge, body_too_large, status kept", function()
    local out = purge(endpoint("big_cl"))
    assert.equal("ClientError.ResponseTooLarge", out.err.code)
    assert.equal("body_too_large", out.err.detail)
    assert.equal(200, out.err.status)
    assert.is_true(out.err.sent)
    assert.is_false(out.err.retryable) -- a 200: the service processed it
    same_as_curl(out, endpoint("big_cl"))
    local o503 = purge(endpoint("big_cl_503"))
    assert.equal("body_too_large", o503.err.detail)
    assert.equal(503, o503.err.status)
    assert.is_true(o503.err.retryable)
  end)

  it("a chunk over 16 MiB: body_too_large before it is read", function()
    local out = purge(endpoint("big_chunk"))
    assert.equal("body_too_large", out.err.detail)
    assert.equal(200, out.err.status)
    assert.is_false(out.err.retryable)
  end)

  it("response headers over 64 KiB: headers_too_large, not retryable, as ecdn.client", function()
    local out = purge(endpoint("many_headers"))
    assert.equal("ClientError.ResponseTooLarge", out.err.code)
    assert.equal("headers_too_large", out.err.detail)
    assert.is_false(out.err.retryable)
    assert.is_true(out.err.sent)
    same_as_curl(out, endpoint("many_headers"))
  end)

  it("a connection closed inside the headers: partial_headers, as ecdn.client", function()
    local out = purge(endpoint("partial_headers"))
    assert.equal("ClientError.NetworkError", out.err.code)
    assert.equal("partial_headers", out.err.detail)
    assert.is_true(out.err.sent)
    assert.is_true(out.err.retryable)
    assert.equal(1, out.err.attempts)
    same_as_curl(out, endpoint("partial_headers"))
  end)

  it("a connection closed inside the body: CURLE_PARTIAL_FILE, as ecdn.client", function()
    local out = purge(endpoint("partial_body"))
    assert.equal("CURLE_PARTIAL_FILE", out.err.detail)
    assert.is_true(out.err.sent)
    same_as_curl(out, endpoint("partial_body"))
  end)

  it("a new connection closed with no answer: CURLE_GOT_NOTHING, sent, as ecdn.client", function()
    local out = purge(endpoint("nothing"))
    assert.equal("CURLE_GOT_NOTHING", out.err.detail)
    assert.is_true(out.err.sent)
    assert.is_true(out.err.retryable)
    same_as_curl(out, endpoint("nothing"))
  end)

  it("not HTTP at all: CURLE_WEIRD_SERVER_REPLY", function()
    local out = purge(endpoint("garbage"))
    assert.equal("CURLE_WEIRD_SERVER_REPLY", out.err.detail)
    assert.is_true(out.err.sent)
  end)

  it("a kept-alive connection dying under a purge: closed_after_send, never written twice", function()
    local ep = endpoint("second_dies")
    local first = purge(ep)
    assert.is_nil(first.err)
    local out = purge(ep) -- on the pooled connection, which the server closes after reading it
    assert.equal("closed_after_send", out.err.detail)
    assert.is_true(out.err.sent)
    assert.is_true(out.err.retryable)
    assert.equal(1, out.err.attempts)
    assert.same({ conns = 1, reqs = 2, reused = false }, count("second_dies"))
  end)

  it("a Describe* action is written again on a new connection (attempts = 2)", function()
    local ep = endpoint("second_dies")
    local before = count("second_dies")
    assert.is_nil(assert(n:json("/quota?endpoint=" .. ep)).err)
    local out = assert(n:json("/quota?endpoint=" .. ep))
    assert.is_nil(out.err)
    assert.equal(2, out.res.attempts)
    local after = count("second_dies")
    assert.equal(2, after.conns - before.conns)
    assert.equal(3, after.reqs - before.reqs)
  end)

  it("a timeout after sending: CURLE_OPERATION_TIMEDOUT, sent = true", function()
    allow = { "lua tcp socket read timed out" }
    local out = purge(endpoint("slow"), "&timeout=0.3")
    assert.equal("CURLE_OPERATION_TIMEDOUT", out.err.detail)
    assert.is_true(out.err.sent)
    assert.is_true(out.err.retryable)
  end)

  -- nginx restarts a read timer whenever bytes arrive: the deadline is ours
  for _, mode in ipairs { "trickle_head", "trickle_body", "trickle_chunked" } do
    it("timeout bounds the whole request, not each read (" .. mode .. ": a byte every 0.2 s for 5 s)", function()
      allow = { "lua tcp socket read timed out" }
      local t0 = socket.gettime()
      local out = purge(endpoint(mode), "&timeout=0.5")
      local elapsed = socket.gettime() - t0
      assert.equal("CURLE_OPERATION_TIMEDOUT", out.err.detail)
      assert.is_true(out.err.sent)
      assert.is_true(out.err.retryable)
      assert.equal(1, out.err.attempts)
      assert.is_true(elapsed < 1.5, "answered after " .. elapsed .. " s")
    end)
  end

  it("chunked trailers over 64 KiB: headers_too_large, not retryable (they count as headers, as in libcurl)",
     function()
    local out = purge(endpoint("many_trailers"))
    assert.equal("ClientError.ResponseTooLarge", out.err.code)
    assert.equal("headers_too_large", out.err.detail)
    assert.is_false(out.err.retryable)
    assert.is_true(out.err.sent)
  end)

  it("a head whose lines end in bare LF is read, as ecdn.client reads it", function()
    local out = purge(endpoint("lf_only"))
    assert.is_nil(out.err)
    assert.same({ task_id = "raw-task-1", request_id = "raw-request-1", attempts = 1 }, out.res)
    local cres = curl_purge(endpoint("lf_only"))
    assert.equal("raw-task-1", cres.task_id)
  end)

  it("Content-Length twice with one value is read; with differing values refused, as ecdn.client", function()
    local out = purge(endpoint("cl_twice"))
    assert.is_nil(out.err)
    assert.equal("raw-task-1", out.res.task_id)
    assert.equal("raw-task-1", curl_purge(endpoint("cl_twice")).task_id)
    local bad = purge(endpoint("cl_differ"))
    assert.equal("CURLE_WEIRD_SERVER_REPLY", bad.err.detail)
    assert.is_true(bad.err.sent)
    assert.is_nil(curl_purge(endpoint("cl_differ")))
  end)

  it("keepalive_timeout under 1 ms keeps a connection 1 ms, not forever (0 means no limit to nginx)", function()
    assert.is_nil(purge(endpoint("ka"), "&ka=0.0004").err)
    socket.sleep(0.3)
    assert.is_nil(purge(endpoint("ka"), "&ka=0.0004").err)
    assert.same({ conns = 2, reqs = 2, reused = false }, count("ka"))
  end)

  it("a host name without a `resolver` in nginx.conf: a message that says so", function()
    allow = { "no resolver defined" }
    local out = purge("http://ecdn.example.invalid:" .. ports.chunked)
    assert.equal("CURLE_COULDNT_RESOLVE_HOST", out.err.detail)
    assert.truthy(out.err.message:find("resolver", 1, true))
    assert.is_false(out.err.sent)
  end)

  describe("HTTPS", function()
    it("verifies the TLS test server against lua_ssl_trusted_certificate and purges", function()
      local out = purge("https://127.0.0.1:" .. tls.trusted.port)
      assert.is_nil(out.err)
      assert.same({ task_id = "tls-task-1", request_id = "tls-request-1", attempts = 1 }, out.res)
    end)

    it("keeps a TLS connection alive (one handshake for three purges)", function()
      for _ = 1, 3 do
        local out = purge("https://127.0.0.1:" .. ports.keepalive)
        assert.is_nil(out.err)
        assert.equal("tls-task-1", out.res.task_id)
      end
      local c = assert(n:json("/count?name=" .. ports.keepalive .. "&port=0"))
      assert.equal(1, c.conns)
      assert.equal(3, c.reqs)
      -- verify = false has a pool of its own: it never gets the verified
      -- connection, and a verifying client never gets its unverified one
      assert.is_nil(purge("https://127.0.0.1:" .. ports.keepalive, "&verify=0").err)
      assert.is_nil(purge("https://127.0.0.1:" .. ports.keepalive).err)
      assert.is_nil(purge("https://127.0.0.1:" .. ports.keepalive, "&verify=0").err)
      c = assert(n:json("/count?name=" .. ports.keepalive .. "&port=0"))
      assert.equal(2, c.conns)
      assert.equal(6, c.reqs)
    end)

    it("refuses a certificate nginx does not trust: TLS, not retryable, sent = false, as ecdn.client", function()
      allow = { "lua ssl certificate verify error" }
      local ep = "https://127.0.0.1:" .. ports.untrusted
      local out = purge(ep)
      assert.equal("CURLE_PEER_FAILED_VERIFICATION", out.err.detail)
      assert.is_true(out.err.tls)
      assert.is_false(out.err.retryable)
      assert.is_false(out.err.sent)
      assert.truthy(out.err.message:find("^TLS: "))
      same_as_curl(out, ep)
    end)

    it("refuses a trusted certificate for another name (the endpoint host is the server name)", function()
      allow = { "certificate does not match host", "certificate host mismatch" }
      local out = purge("https://127.0.0.1:" .. ports.other_name)
      assert.equal("CURLE_PEER_FAILED_VERIFICATION", out.err.detail)
      assert.truthy(out.err.message:find("host mismatch", 1, true))
      assert.is_false(out.err.sent)
    end)

    it("verify = false accepts it", function()
      local out = purge("https://127.0.0.1:" .. ports.untrusted, "&verify=0")
      assert.is_nil(out.err)
      assert.equal("tls-task-1", out.res.task_id)
    end)
  end)
end)
