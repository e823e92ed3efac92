--- resty.ecdn.http: stage 3 of the pipeline (send) for nginx, HTTP/1.1 over
-- ngx.socket.tcp. It produces exactly the shapes of the C libcurl transport
-- (src/http.c, src/lua_http.c), so the one decoder (ecdn.decode) serves both:
--
--   raw     = { status, headers = { [lower-case name] = value }, body, attempts }
--   failure = { kind = "network", detail, message, sent, retryable, tls, attempts [, status] }
--
-- `detail` uses the C transport's names: curl's for the matching condition
-- (CURLE_COULDNT_CONNECT, CURLE_COULDNT_RESOLVE_HOST, CURLE_OPERATION_TIMEDOUT,
-- CURLE_PEER_FAILED_VERIFICATION, CURLE_SSL_CONNECT_ERROR, CURLE_SEND_ERROR,
-- CURLE_RECV_ERROR, CURLE_GOT_NOTHING, CURLE_PARTIAL_FILE,
-- CURLE_WEIRD_SERVER_REPLY) and its own (closed_after_send, partial_headers,
-- body_too_large, headers_too_large, bad_request).
--
-- `attempts` counts how often the request was started on a connection;
-- `sent` is true once the whole request was handed to a socket. A request
-- that went out whole is written again only when the caller says it may be
-- (Describe* actions): a connection from the keep-alive pool that dies under
-- a purge gives `closed_after_send`, never a second purge behind the caller's
-- back. A pooled connection that fails before the request went out whole is
-- replaced by another one (at most MAX_ATTEMPTS writes in all).
--
-- Only for the phases where nginx allows cosockets (rewrite, access, content,
-- timers); resty.ecdn checks the phase before it calls this.
local M = {}

M.MAX_BODY = 16 * 1024 * 1024   -- the C transport's caps
M.MAX_HEADERS = 64 * 1024
local MAX_ATTEMPTS = 3           -- the first write and two on other connections
local MAX_CHUNK_LINE = 4096      -- "size;extensions\r\n" of a chunked body
local READ_SIZE = 65536          -- the most one receive asks for

local find, lower, sub, match, gmatch, byte = string.find, string.lower, string.sub, string.match, string.gmatch,
  string.byte
local concat, tonumber, tostring = table.concat, tonumber, tostring
local floor, min = math.floor, math.min
local tcp = ngx.socket.tcp
local now = ngx.now
local update_time = ngx.update_time

local function failure(detail, message, extra)
  local f = { kind = "network", detail = detail, message = message, sent = false, retryable = true, tls = false }
  for k, v in pairs(extra or {}) do f[k] = v end
  return f
end

-- The parts of an endpoint URL from ecdn.endpoint.parse ("https://host[:port]/").
function M.target(url)
  local scheme, authority = match(url, "^(%a+)://([^/]*)/")
  if not scheme then return nil end
  local host, port
  if sub(authority, 1, 1) == "[" then
    host, port = match(authority, "^(%[[^%]]+%])(.*)$")
  else
    host, port = match(authority, "^([^:]*)(.*)$")
  end
  port = tonumber(match(port, "^:(%d+)$")) or (scheme == "https" and 443 or 80)
  return { scheme = scheme, host = host, port = port,
           -- the TLS server name: a name, not a bracketed IPv6 address
           server_name = (match(host, "^%[(.*)%]$") or host) }
end

--- The name of the keep-alive pool for a target: scheme, host and port; for
-- https also whether and as whom the peer was verified, so a connection made
-- with verify = false is never handed to a client that verifies.
function M.pool_name(t, verify)
  local name = "resty.ecdn " .. t.scheme .. "://" .. t.host .. ":" .. t.port
  if t.scheme == "https" then
    name = name .. (verify and " verified:" .. t.server_name or " unverified")
  end
  return name
end

-- Header names already known to be tokens (the signer's).
local TOKEN = {}
for _, k in ipairs { "Authorization", "Content-Type", "Host", "X-TC-Action", "X-TC-Timestamp", "X-TC-Version",
                     "X-TC-Region", "X-TC-Language", "X-TC-Token", "X-TC-RequestClient" } do
  TOKEN[k] = true
end

--- The request's bytes: the signer's headers (Host among them), sorted so the
-- bytes are reproducible, then User-Agent and Content-Length.
function M.build(req, user_agent)
  local headers, names = req.headers, {}
  for k, v in pairs(headers) do
    local lk = lower(k)
    if lk ~= "content-length" and lk ~= "connection" and lk ~= "user-agent" and lk ~= "transfer-encoding" then
      -- plain finds: LuaJIT runs pattern matching in its interpreter
      if find(v, "\r", 1, true) or find(v, "\n", 1, true) or find(v, "\0", 1, true)
         or not TOKEN[k] and find(k, "[^%w!#$%%&'*+%-.^_`|~]") then
        return nil
      end
      names[#names + 1] = k
    end
  end
  table.sort(names)
  local path = match(req.url, "^%a+://[^/]*(/.*)$") or "/"
  if find(path, "[%c%s]") then return nil end
  local lines = { (req.method or "POST") .. " " .. path .. " HTTP/1.1" }
  for i = 1, #names do lines[#lines + 1] = names[i] .. ": " .. headers[names[i]] end
  if user_agent then lines[#lines + 1] = "User-Agent: " .. user_agent end
  lines[#lines + 1] = "Content-Length: " .. #(req.body or "")
  lines[#lines + 1] = "\r\n"
  return concat(lines, "\r\n") .. (req.body or "")
end

-- What a cosocket error string means, as the C transport names it.
local function io_failure(err, what)
  if err == "timeout" then
    return failure("CURLE_OPERATION_TIMEDOUT", what .. ": timed out")
  end
  return failure(what == "send" and "CURLE_SEND_ERROR" or "CURLE_RECV_ERROR", what .. ": " .. tostring(err))
end

local function connect_failure(err, t)
  err = tostring(err)
  if err == "timeout" then
    return failure("CURLE_OPERATION_TIMEDOUT", "connect to " .. t.host .. ":" .. t.port .. " timed out")
  end
  if find(err, "no resolver defined", 1, true) then
    return failure("CURLE_COULDNT_RESOLVE_HOST", "cannot resolve " .. t.host
      .. ": nginx.conf needs a `resolver` line (cosockets do not read /etc/resolv.conf)", { retryable = false })
  end
  if find(err, "resolve", 1, true) then
    return failure("CURLE_COULDNT_RESOLVE_HOST", "cannot resolve " .. t.host .. ": " .. err)
  end
  return failure("CURLE_COULDNT_CONNECT", "cannot connect to " .. t.host .. ":" .. t.port .. ": " .. err)
end

local function tls_failure(err)
  err = tostring(err)
  if err == "timeout" then return failure("CURLE_OPERATION_TIMEDOUT", "TLS: handshake timed out") end
  -- lua-nginx-module: "certificate host mismatch", or "<n>: <X509 verify error>"
  if find(err, "certificate host mismatch", 1, true) or find(err, "^%d+: ") then
    return failure("CURLE_PEER_FAILED_VERIFICATION", "TLS: " .. err, { tls = true, retryable = false })
  end
  return failure("CURLE_SSL_CONNECT_ERROR", "TLS: " .. err, { tls = true })
end

-- Milliseconds left before the deadline (at least 1: 0 would mean "the
-- directive's default" to some cosocket calls).
-- Whole milliseconds left before the deadline; nil once none is.
local function remaining_ms(deadline)
  update_time()
  local ms = floor((deadline - now()) * 1000)
  if ms >= 1 then return ms end
end

-- The same, at least 1 (a socket timeout of 0 would mean none).
local function left_ms(deadline)
  return remaining_ms(deadline) or 1
end

local function expired(deadline)
  update_time()
  return now() >= deadline
end

-- The response is read through a buffer of our own that receiveany fills:
-- before every receive the socket gets the time left before the deadline,
-- and none is made once it has passed. nginx restarts a read timer
-- whenever bytes arrive (and receive(n)/receiveuntil wait for all their
-- bytes), so a per-call timeout would let a server that trickles bytes keep
-- a request alive forever; libcurl's CURLOPT_TIMEOUT_MS stops at the limit,
-- and so does this. st: sock, deadline, buf and pos (the unread bytes are
-- buf from pos on), answered (response bytes seen).

-- recv(st, max) -> up to max new bytes (not buffered) | nil, err
local function recv(st, max)
  local ms = remaining_ms(st.deadline)
  if not ms then return nil, "timeout" end
  local sock = st.sock
  sock:settimeout(ms)
  local data, err = sock:receiveany(max)
  if data then st.answered = st.answered + #data end
  return data, err
end

-- fill(st) -> true | nil, err: more bytes into the buffer (the read ones dropped).
local function fill(st)
  local data, err = recv(st, READ_SIZE)
  if not data then return nil, err end
  local buf, pos = st.buf, st.pos
  st.buf = pos > #buf and data or sub(buf, pos) .. data
  st.pos = 1
  return true
end

-- take(st, n) -> the next n bytes | nil, err, bytes got. Never reads past them.
local function take(st, n)
  local buf, pos = st.buf, st.pos
  local have = #buf - pos + 1
  if have >= n then
    st.pos = pos + n
    return sub(buf, pos, pos + n - 1)
  end
  local parts, got = { sub(buf, pos) }, have
  st.buf, st.pos = "", 1
  while got < n do
    local data, err = recv(st, min(n - got, READ_SIZE))
    if not data then return nil, err, got end
    parts[#parts + 1] = data
    got = got + #data
  end
  return concat(parts)
end

-- line(st, cap) -> the next line (ended by CRLF), without its CRLF | nil,
-- "long" (more than cap bytes) or the receive error.
local function line(st, cap)
  local seen = 0 -- bytes from pos already searched
  while true do
    local buf, pos = st.buf, st.pos
    local e = find(buf, "\r\n", pos + (seen > 0 and seen - 1 or 0), true)
    if e then
      if e - pos > cap then return nil, "long" end
      st.pos = e + 2
      return sub(buf, pos, e - 1)
    end
    seen = #buf - pos + 1
    if seen > cap + 1 then return nil, "long" end
    local ok, err = fill(st)
    if not ok then return nil, err end
  end
end

-- Parses a header block ("HTTP/1.1 200 OK\r\nName: v\r\n..."), as the C
-- transport does (src/lua_http.c push_headers): names lower-cased (up to 63
-- bytes; other lines are skipped), values without leading blanks and
-- trailing CR/blanks, repeated names joined by ", ". Lines may end in a
-- bare LF (libcurl takes them). Plain finds: LuaJIT interprets pattern
-- matching, and this runs for every response.
local function parse_head(block)
  local len = #block
  local eol = find(block, "\n", 1, true) or len + 1
  local version, status = match(sub(block, 1, eol - 1), "^HTTP/(%d[%.%d]*) (%d%d%d)")
  if not status then return nil end
  local headers = {}
  local pos = eol + 1
  while pos <= len do
    local e = find(block, "\n", pos, true) or len + 1
    local colon = find(block, ":", pos, true)
    if colon and colon < e and colon > pos and colon - pos < 64 then
      local name = lower(sub(block, pos, colon - 1))
      local i, j = colon + 1, e - 1
      while i <= j do
        local b = byte(block, i)
        if b ~= 32 and b ~= 9 then break end
        i = i + 1
      end
      while j >= i do
        local b = byte(block, j)
        if b ~= 32 and b ~= 9 and b ~= 13 then break end
        j = j - 1
      end
      local value = sub(block, i, j)
      local old = headers[name]
      headers[name] = old and (old .. ", " .. value) or value
    end
    pos = e + 1
  end
  return tonumber(status), headers, version
end

local function has_token(value, token)
  if not value then return false end
  for t in gmatch(lower(value), "[^,%s]+") do
    if t == token then return true end
  end
  return false
end

local function too_large_headers(max_headers)
  return nil, failure("headers_too_large", "response headers larger than " .. max_headers .. " bytes",
                      { retryable = false })
end

-- Reads the response head (skipping 1xx answers) within the header cap.
-- Returns status, headers, version | nil, failure. The head ends at its
-- first empty line, CRLF or a bare LF (as libcurl).
local function read_head(st, max_headers)
  local total = 0 -- head bytes so far, 1xx heads included
  while true do
    local seen = 0 -- bytes from pos already searched
    local last, stop
    while true do
      local buf, pos = st.buf, st.pos
      local from = pos + (seen > 2 and seen - 2 or 0) -- a terminator may straddle two reads
      local crlf, lf = find(buf, "\n\r\n", from, true), find(buf, "\n\n", from, true)
      if crlf and (not lf or crlf < lf) then
        last, stop = crlf, crlf + 2
      elseif lf then
        last, stop = lf, lf + 1
      end
      if last then break end
      seen = #buf - pos + 1
      if total + seen > max_headers then return too_large_headers(max_headers) end
      local ok, err = fill(st)
      if not ok then
        if err == "timeout" then
          return nil, failure("CURLE_OPERATION_TIMEDOUT", "timed out waiting for the response")
        end
        if err == "closed" then
          if st.answered > 0 then
            return nil, failure("partial_headers", "the connection closed in the middle of the response headers")
          end
          return nil, failure("CURLE_GOT_NOTHING", "the server closed the connection without answering")
        end
        return nil, io_failure(err, "receive")
      end
    end
    local pos = st.pos
    total = total + stop - pos + 1
    if total > max_headers then return too_large_headers(max_headers) end
    st.pos = stop + 1
    local status, headers, version = parse_head(sub(st.buf, pos, last))
    if not status then
      return nil, failure("CURLE_WEIRD_SERVER_REPLY", "not an HTTP response")
    end
    if status >= 200 or status == 101 then return status, headers, version end
    -- 1xx: the real answer follows; its head counts towards the same cap.
  end
end

local function too_big(max_body, status)
  return nil, failure("body_too_large", "response body larger than " .. max_body .. " bytes",
                      { status = status, retryable = status ~= 200 and (status == 408 or status == 429
                                                                         or status >= 500) })
end

local function body_failure(err, got)
  if err == "closed" then
    return failure("CURLE_PARTIAL_FILE", "the connection closed in the middle of the response body ("
      .. got .. " bytes read)")
  end
  return io_failure(err, "receive")
end

local function bad_chunked()
  return nil, failure("CURLE_RECV_ERROR", "bad chunked encoding in the response")
end

-- Reads a chunked body. Returns body | nil, failure.
local function read_chunked(st, max_body, max_headers, status)
  local parts, total = {}, 0
  while true do
    local size_line, err = line(st, MAX_CHUNK_LINE)
    if not size_line then
      if err == "long" then return bad_chunked() end
      return nil, body_failure(err, total)
    end
    if size_line == "" then return bad_chunked() end
    local size = tonumber(match(size_line, "^%s*(%x+)%s*[;]?") or "", 16)
    if not size then return nil, failure("CURLE_RECV_ERROR", "bad chunk size in the response") end
    if size == 0 then break end
    if total + size > max_body then return too_big(max_body, status) end
    local data, rerr, got = take(st, size)
    if not data then return nil, body_failure(rerr, total + got) end
    total = total + size
    parts[#parts + 1] = data
    local crlf, cerr = take(st, 2)
    if not crlf then return nil, body_failure(cerr, total) end
    if crlf ~= "\r\n" then return bad_chunked() end
  end
  -- trailers, up to the blank line; they count against the header cap (as libcurl's)
  local room = max_headers
  while true do
    local trailer, err = line(st, room)
    if trailer == "" then break end
    if not trailer then
      if err == "long" then return too_large_headers(max_headers) end
      return nil, body_failure(err, total)
    end
    room = room - #trailer - 2
  end
  return concat(parts)
end

-- The length a Content-Length value gives: one number, or the same number
-- repeated ("N, N": several equal fields, which libcurl and RFC 9112 6.3
-- accept). nil for anything else, differing numbers included.
local function content_length(cl)
  local n = match(cl, "^(%d+)$")
  if not n then
    for v in gmatch(cl, "[^,]+") do
      v = match(v, "^[ \t]*(%d+)[ \t]*$")
      if not v or (n and v ~= n) then return nil end
      n = v
    end
  end
  if not n or #n > 15 then return nil end
  return tonumber(n)
end

-- One attempt on one connection. Returns raw, reusable | nil, failure;
-- st.whole: the whole request went to the socket; st.answered: response
-- bytes seen.
local function exchange(sock, bytes, conf, st)
  local ms = remaining_ms(st.deadline)
  if not ms then return nil, failure("CURLE_OPERATION_TIMEDOUT", "timed out") end
  sock:settimeout(ms)
  local ok, err = sock:send(bytes)
  if not ok then return nil, io_failure(err, "send") end
  st.whole = true
  local status, headers, version = read_head(st, conf.max_headers)
  if not status then return nil, headers end
  local body
  local te, cl = headers["transfer-encoding"], headers["content-length"]
  local reusable = version == "1.1" and not has_token(headers.connection, "close")
  if status == 204 or status == 304 then
    body = ""
  elseif te then
    if not has_token(te, "chunked") then
      return nil, failure("CURLE_WEIRD_SERVER_REPLY", "unsupported Transfer-Encoding in the response")
    end
    local f
    body, f = read_chunked(st, conf.max_body, conf.max_headers, status)
    if not body then return nil, f end
    if cl then reusable = false end -- both framings: chunked wins, the connection is not trusted again
  elseif cl then
    local n = content_length(cl)
    if not n then
      return nil, failure("CURLE_WEIRD_SERVER_REPLY", "bad Content-Length in the response")
    end
    if n > conf.max_body then return too_big(conf.max_body, status) end
    local got
    body, err, got = take(st, n)
    if not body then return nil, body_failure(err, got) end
  else
    -- No framing: the body runs to the end of the connection.
    reusable = false
    local parts, total = { sub(st.buf, st.pos) }, #st.buf - st.pos + 1
    st.buf, st.pos = "", 1
    while true do
      if total > conf.max_body then return too_big(conf.max_body, status) end
      local data, rerr = recv(st, READ_SIZE)
      if not data then
        if rerr == "closed" then break end
        return nil, io_failure(rerr, "receive")
      end
      total = total + #data
      parts[#parts + 1] = data
    end
    body = concat(parts)
  end
  -- bytes after the answer: the connection is out of step, never reused
  if st.pos <= #st.buf then reusable = false end
  return { status = status, headers = headers, body = body }, reusable
end

-- Failures of a kept-alive connection that the server closed under us
-- before any answer (a timeout is not one: the server may be working).
local DEAD = { CURLE_GOT_NOTHING = true, CURLE_RECV_ERROR = true, CURLE_SEND_ERROR = true }

--- request(conf, req, resend) -> raw | nil, failure
-- conf: target (M.target), pool (M.pool_name), verify, timeout and
-- connect_timeout (seconds), keepalive_timeout (seconds; 0 = close after
-- each request), keepalive_pool, max_body, max_headers, user_agent.
-- req: {method, url, headers, body} from ecdn.signer. resend: the request
-- may be written again after it went out whole (it changes nothing).
function M.request(conf, req, resend)
  local bytes = M.build(req, conf.user_agent)
  if not bytes then
    return nil, failure("bad_request", "cannot build request headers", { retryable = false, attempts = 0 })
  end
  local t = conf.target
  update_time()
  local deadline = now() + conf.timeout
  local attempts, sent = 0, false
  local last
  while attempts < MAX_ATTEMPTS do
    if attempts > 0 and expired(deadline) then break end
    local sock = tcp()
    local connect_ms = math.min(math.floor(conf.connect_timeout * 1000), left_ms(deadline))
    sock:settimeouts(connect_ms > 0 and connect_ms or 1, left_ms(deadline), left_ms(deadline))
    local ok, err = sock:connect(t.host, t.port, { pool = conf.pool, pool_size = conf.keepalive_pool })
    if not ok then
      last = connect_failure(err, t)
      break -- a refused or failed connect is not retried (as libcurl)
    end
    local reused = (sock:getreusedtimes() or 0) > 0
    if t.scheme == "https" and not reused then
      sock:settimeouts(left_ms(deadline), left_ms(deadline), left_ms(deadline))
      local session, herr = sock:sslhandshake(false, t.server_name, conf.verify)
      if not session then
        sock:close()
        last = tls_failure(herr)
        break
      end
    end
    attempts = attempts + 1
    local st = { whole = false, answered = 0, sock = sock, deadline = deadline, buf = "", pos = 1 }
    local raw, extra = exchange(sock, bytes, conf, st)
    if st.whole then sent = true end
    if raw then
      if extra and conf.keepalive_timeout > 0 then
        -- at least 1 ms: setkeepalive(0) would keep the connection forever
        local kok = sock:setkeepalive(math.max(1, math.ceil(conf.keepalive_timeout * 1000)), conf.keepalive_pool)
        if not kok then sock:close() end
      else
        sock:close()
      end
      raw.attempts = attempts
      return raw
    end
    sock:close()
    last = extra
    -- Another connection may try when a kept-alive one died before any
    -- answer, unless the request went out whole and must not be written twice.
    if not (reused and st.answered == 0 and DEAD[last.detail]) then break end
    if st.whole and not resend then
      last = failure("closed_after_send",
                     "the connection closed after the whole request was sent, before any answer")
      break
    end
  end
  if not last then
    last = failure("CURLE_OPERATION_TIMEDOUT", "timed out")
  end
  last.sent = sent
  last.attempts = attempts
  return nil, last
end

return M
