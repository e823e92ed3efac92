-- HTTP/1.1 front end on cqueues: one coroutine per connection, keep-alive,
-- Expect: 100-continue, Content-Length and chunked bodies, faults, GET /__stats,
-- a Date header on every answer (from the simulator's clock, real or fake),
-- clean stop on SIGTERM/SIGINT.
local cqueues = require "cqueues"
local csocket = require "cqueues.socket"
local signal = require "cqueues.signal"
local condition = require "cqueues.condition"
local clock = require("socket").gettime -- wall clock with sub-second precision
local json = require "ecdn.sim.json"
local cjson = require "cjson"

local M = {}

local MAX_LINE = 16 * 1024          -- one header line
local MAX_REQUEST_LINE = 64 * 1024  -- GET queries up to 32 KB are the service's (answered there)
local MAX_HEADERS = 100
local MAX_BODY = 10 * 1024 * 1024   -- TC3 POST limit
M.MAX_BODY = MAX_BODY
-- Memory bound: a body is refused (413) as soon as its declared or received
-- size passes MAX_BODY, before those bytes are read. Bodies up to BIG_BODY
-- are read freely; a bigger one first takes one of BIG_SLOTS slots (others
-- wait, their senders held back by TCP), so at most BIG_SLOTS bodies over
-- BIG_BODY are in memory at once, whatever the number of connections.
local BIG_BODY = 256 * 1024
local BIG_SLOTS = 2
local LINGER_MAX = 64 * 1024 * 1024 -- after a 413: bytes read and dropped before closing
local LINGER_SECONDS = 5
local IDLE_TIMEOUT = 120            -- seconds a keep-alive connection may sit idle
local IO_TIMEOUT = 30               -- seconds for the rest of a request once it started

local REASONS = { [100] = "Continue", [200] = "OK", [400] = "Bad Request", [404] = "Not Found",
                  [405] = "Method Not Allowed", [413] = "Payload Too Large", [431] = "Request Header Fields Too Large",
                  [500] = "Internal Server Error", [502] = "Bad Gateway", [503] = "Service Unavailable" }

local DAYS = { "Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat" }
local MONTHS = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" }

-- RFC 7231 IMF-fixdate of unix time t ("Sun, 06 Nov 1994 08:49:37 GMT"),
-- without the locale (os.date's %a/%b would follow LC_TIME).
function M.http_date(t)
  local d = os.date("!*t", math.floor(t))
  return string.format("%s, %02d %s %04d %02d:%02d:%02d GMT", DAYS[d.wday], d.day, MONTHS[d.month], d.year,
                       d.hour, d.min, d.sec)
end

-- The clock answers are dated by (M.run sets it); one string per second.
local date_clock = clock
local date_sec, date_text
local function date_now()
  local sec = math.floor(date_clock())
  if sec ~= date_sec then date_sec, date_text = sec, M.http_date(sec) end
  return date_text
end

local function response(status, body, ctype, close)
  return table.concat {
    "HTTP/1.1 ", status, " ", REASONS[status] or "Unknown", "\r\n",
    "Date: ", date_now(), "\r\n",
    "Content-Type: ", ctype or "application/json", "\r\n",
    "Content-Length: ", #body, "\r\n",
    close and "Connection: close\r\n" or "",
    "\r\n", body }
end

local function html_error(status)
  local title = status .. " " .. REASONS[status]
  return "<html>\r\n<head><title>" .. title .. "</title></head>\r\n<body>\r\n<center><h1>" .. title
      .. "</h1></center>\r\n</body>\r\n</html>\r\n"
end

-- Buffered reading on top of a cqueues socket: one recv per burst of data
-- instead of one per line (most requests arrive in one segment).
local Reader = {}
Reader.__index = Reader

-- gate: the shared big-body slots ({free = n, cond = condition}).
local function reader(con, gate)
  return setmetatable({ con = con, buf = "", pos = 1, gate = gate }, Reader)
end

-- Takes a big-body slot for this connection (waits for one to be free).
function Reader:hold_big()
  if self.big then return end
  local gate = self.gate
  while gate.free == 0 do gate.cond:wait() end
  gate.free = gate.free - 1
  self.big = true
  -- While big bodies are read, collect when the heap doubles (not triples):
  -- they leave tens of MB of garbage strings. Back to the default after.
  if gate.free == BIG_SLOTS - 1 then collectgarbage("incremental", 100) end
end

function Reader:release_big()
  if not self.big then return end
  self.big = false
  self.gate.free = self.gate.free + 1
  if self.gate.free == BIG_SLOTS then collectgarbage("incremental", 200) end
  self.gate.cond:signal(1)
end

function Reader:fill(timeout)
  local data, err = self.con:xread(-65536, "b", timeout)
  if not data then return nil, err and tostring(err) or "closed" end
  self.buf = self.buf:sub(self.pos) .. data
  self.pos = 1
  return true
end

-- Next line without its CRLF (or LF); nil, why on EOF/timeout/too long
-- (max: longest line, default MAX_LINE).
function Reader:line(timeout, max)
  while true do
    local nl = self.buf:find("\n", self.pos, true)
    if nl then
      local line = self.buf:sub(self.pos, nl - 1)
      self.pos = nl + 1
      if line:byte(-1) == 13 then line = line:sub(1, -2) end
      return line
    end
    if #self.buf - self.pos + 1 > (max or MAX_LINE) then return nil, "line too long" end
    local ok, err = self:fill(timeout)
    if not ok then return nil, err end
  end
end

function Reader:bytes(n, timeout)
  local have = #self.buf - self.pos + 1
  if have < n then -- read the rest in one go: no quadratic re-buffering of big bodies
    local rest, err = self.con:xread(n - have, "b", timeout)
    if not rest or #rest ~= n - have then return nil, err and tostring(err) or "closed" end
    local data = self.buf:sub(self.pos) .. rest
    self.buf, self.pos = "", 1
    return data
  end
  local data = self.buf:sub(self.pos, self.pos + n - 1)
  self.pos = self.pos + n
  return data
end

-- Reads one request. Returns req, or nil, why (why = "closed" at a clean end
-- between requests), or nil, why, status for a request that deserves an answer.
local function read_request(rd, con, first_timeout)
  local line, err = rd:line(first_timeout, MAX_REQUEST_LINE)
  if not line then return nil, err, err == "line too long" and 400 or nil end
  local method, target, version = line:match("^(%u+) (%S+) HTTP/(%d%.%d)$")
  if not method then return nil, "malformed request line", 400 end
  local headers, n, last = {}, 0, nil
  while true do
    line, err = rd:line(IO_TIMEOUT)
    if not line then return nil, err, err == "line too long" and 431 or nil end
    if line == "" then break end
    n = n + 1
    if n > MAX_HEADERS then return nil, "too many headers", 431 end
    if line:find("^[ \t]") and last then -- obsolete line folding
      headers[last] = headers[last] .. " " .. line:match("^%s*(.-)%s*$")
    else
      local colon, value_at = line:find(":%s*", 2)
      local name = colon and line:sub(1, colon - 1)
      if not name or name:find("%s") then return nil, "malformed header", 400 end
      local value = line:sub(value_at + 1)
      if value:find("%s$") then value = value:match("^(.-)%s*$") end
      last = name:lower()
      headers[last] = value
    end
  end
  local req = { method = method, target = target, version = version, headers = headers, body = "" }
  local te, cl = headers["transfer-encoding"], headers["content-length"]
  if te and te:lower() ~= "chunked" then return nil, "unsupported transfer-encoding", 400 end
  if cl and (te or not cl:match("^%d+$") or #cl > 12) then return nil, "bad content-length", 400 end
  local length = cl and tonumber(cl) or 0
  if length > MAX_BODY then req.too_large = true return req end -- refused unread
  if length > BIG_BODY then rd:hold_big() end
  if (headers.expect or ""):lower() == "100-continue" and (te or length > 0) then
    con:xwrite("HTTP/1.1 100 Continue\r\n\r\n", "bn")
  end
  if te then
    local parts, total = {}, 0
    while true do
      local size = rd:line(IO_TIMEOUT)
      size = size and size:match("^(%x+)")
      size = size and #size <= 8 and tonumber(size, 16)
      if not size then return nil, "bad chunk", 400 end
      if size == 0 then break end
      total = total + size
      if total > MAX_BODY then req.too_large = true return req end -- counted before it is read
      if total > BIG_BODY then rd:hold_big() end
      local chunk = rd:bytes(size, IO_TIMEOUT)
      if not chunk or rd:line(IO_TIMEOUT) ~= "" then return nil, "bad chunk", 400 end
      parts[#parts + 1] = chunk
    end
    repeat line = rd:line(IO_TIMEOUT) until not line or line == "" -- trailers
    req.body = table.concat(parts)
  elseif length > 0 then
    local body = rd:bytes(length, IO_TIMEOUT)
    if not body then return nil, "short body" end
    req.body = body
  end
  return req
end

local function wants_close(req)
  local c = (req.headers.connection or ""):lower()
  if req.version == "1.0" then return not c:find("keep-alive", 1, true) end
  return c:find("close", 1, true) ~= nil
end

-- service: ecdn.sim.service; faults: ecdn.sim.faults; opts: host, port,
-- watch_stdin, log (closed on stop), out (where the ready line goes).
function M.run(service, faults, opts)
  local cq = cqueues.new()
  local stats = { connections = 0, stats_connections = 0, active = 0, max_active = 0, requests = 0,
                  http = {}, codes = {}, dropped = 0, accept_errors = 0 }
  local open = {} -- connection -> true, closed on stop
  local gate = { free = BIG_SLOTS, cond = condition.new() } -- big-body slots (see BIG_BODY)

  local function count(status, code)
    local k = tostring(status)
    stats.http[k] = (stats.http[k] or 0) + 1
    if code then stats.codes[code] = (stats.codes[code] or 0) + 1 end
  end

  -- The service's notion of time: the wall clock, or with opts.fake_clock a
  -- number that only POST /__clock moves.
  local fake = opts.fake_clock
  local function now() return fake or clock() end
  date_clock = now

  -- POST /__clock {"set": T} | {"advance": S} (only with --fake-clock).
  local function clock_request(req)
    local ok, body = pcall(cjson.decode, req.body)
    local t
    if ok and type(body) == "table" then
      if type(body.set) == "number" then t = body.set
      elseif type(body.advance) == "number" then t = fake + body.advance
      elseif next(body) == nil then t = fake end
    end
    if not t or t ~= t or t < 0 or t > 1e11 then
      return response(400, json.encode(json.obj("error", 'expected {"set":T} or {"advance":SECONDS}')), nil,
                      wants_close(req))
    end
    fake = t
    return response(200, string.format('{"now":%.17g}', fake), nil, wants_close(req))
  end

  local function stats_body()
    local s = {}
    for k, v in pairs(stats) do s[k] = v end
    for k, v in pairs(service.counts) do s[k] = v end
    return json.encode(s)
  end

  -- Answers one API request; returns the bytes to send, or nil to drop.
  local function api(req)
    stats.requests = stats.requests + 1
    local plan = faults:next()
    if plan.delay_ms > 0 then cqueues.sleep(plan.delay_ms / 1000) end
    if plan.drop == "before" then
      stats.dropped = stats.dropped + 1
      return nil
    end
    local close = wants_close(req)
    if plan.fail == "InternalError" then
      local body = json.encode(json.obj("Response", json.obj("Error", json.obj("Code", "InternalError",
        "Message", "An internal error has occurred. Retry your request."), "RequestId", service.rng:uuid())))
      count(200, "InternalError")
      return response(200, body, nil, close)
    elseif plan.fail then
      count(plan.fail)
      return response(plan.fail, html_error(plan.fail), "text/html", close)
    elseif plan.garbage then
      count(200, "Garbage")
      return response(200, plan.garbage, "application/json", close)
    end
    if req.method ~= "POST" and req.method ~= "GET" then
      count(200, "UnsupportedProtocol")
      local body = json.encode(json.obj("Response", json.obj("Error", json.obj("Code", "UnsupportedProtocol",
        "Message", "Only GET and POST are supported."), "RequestId", service.rng:uuid())))
      return response(200, body, nil, close)
    end
    req.now = now()
    req.query = req.target:match("%?(.*)$") or ""
    local ok, body, code = pcall(service.handle, service, req)
    if not ok then -- a simulator bug: say so, like the service's InternalError
      io.stderr:write("ecdn-sim: internal error: ", tostring(body), "\n")
      code = "InternalError"
      body = json.encode(json.obj("Response", json.obj("Error", json.obj("Code", code,
        "Message", "An internal error has occurred."), "RequestId", service.rng:uuid())))
    end
    if plan.drop == "after" then
      stats.dropped = stats.dropped + 1
      return nil
    end
    count(200, code)
    return response(200, body, nil, close)
  end

  local function serve(con)
    local counted = false
    stats.active = stats.active + 1
    if stats.active > stats.max_active then stats.max_active = stats.active end
    open[con] = true
    con:setmode("b", "bn")
    local rd = reader(con, gate)
    local ok, err = pcall(function()
      while true do
        local req, why, status = read_request(rd, con, IDLE_TIMEOUT)
        if not req then
          if status then con:xwrite(response(status, html_error(status), "text/html", true), "bn") end
          return why
        end
        local path = req.target:match("^[^?]*")
        local out
        if path == "/__stats" and req.method == "GET" then
          if not counted then stats.stats_connections = stats.stats_connections + 1 end
          out = response(200, stats_body(), nil, wants_close(req))
        elseif path == "/__clock" and req.method == "POST" and fake and not req.too_large then
          if not counted then stats.stats_connections = stats.stats_connections + 1 end
          out = clock_request(req)
        else
          if not counted then stats.connections = stats.connections + 1 end
          counted = true
          if path ~= "/" then
            count(404)
            out = response(404, html_error(404), "text/html", wants_close(req))
          elseif req.too_large then -- the rest of the body is never read: answer, close
            count(413, "RequestSizeLimitExceeded")
            out = response(413, json.encode(json.obj("Response", json.obj("Error", json.obj(
              "Code", "RequestSizeLimitExceeded", "Message", "The request body exceeds 10 MB."),
              "RequestId", service.rng:uuid()))), nil, true)
            req.headers.connection = "close"
          else
            out = api(req)
            if not out then return "dropped" end
          end
        end
        counted = true
        local close = wants_close(req)
        req.body = nil -- the body's memory may go while the answer is written
        rd:release_big()
        local sent = con:xwrite(out, "bn")
        if sent and req.too_large then
          -- A lingering close, as web servers do: read and drop what the
          -- client still sends, so closing does not reset the connection
          -- and destroy the 413 before the client has read it.
          con:shutdown("w")
          local dropped, deadline = 0, clock() + LINGER_SECONDS
          while dropped < LINGER_MAX and clock() < deadline do
            local chunk = con:xread(-65536, "b", deadline - clock())
            if not chunk then break end
            dropped = dropped + #chunk
          end
        end
        if not sent or close then return "done" end
      end
    end)
    if not ok then io.stderr:write("ecdn-sim: connection error: ", tostring(err), "\n") end
    rd:release_big()
    open[con] = nil
    stats.active = stats.active - 1
    con:close()
  end

  local host = opts.host or "127.0.0.1"
  local srv = csocket.listen { host = host, port = opts.port or 0, reuseaddr = true }
  local lok, ok, err = pcall(srv.listen, srv) -- cqueues raises on errors such as EADDRINUSE
  if not (lok and ok) then
    return nil, string.format("cannot listen on %s:%d: %s", host, opts.port or 0,
                              tostring(lok and err or ok):gsub("^.*socket:listen: ", ""))
  end
  local _, ip, port = srv:localname()

  local function stop(why)
    srv:close()
    for con in pairs(open) do con:close() end
    if opts.log then opts.log:close() end
    io.stderr:write("ecdn-sim: stopped (", why, ")\n")
    io.stderr:flush()
    os.exit(0)
  end

  -- cqueues raises from accept on errors such as EMFILE (out of file
  -- descriptors): catch it, back off, keep accepting. Repeated reports of the
  -- same error are written once per second at most.
  cq:wrap(function()
    local last_report, last_msg = -math.huge, nil
    while true do
      local aok, con, aerr = pcall(srv.accept, srv)
      if aok and con then
        cq:wrap(serve, con)
      else
        local msg = tostring(aok and aerr or con):gsub("^.*socket:accept: ", "")
        local mono = cqueues.monotime()
        if msg ~= last_msg or mono - last_report >= 1 then
          io.stderr:write("ecdn-sim: accept: ", msg, " (backing off)\n")
          last_report, last_msg = mono, msg
        end
        stats.accept_errors = stats.accept_errors + 1
        cqueues.sleep(0.05)
      end
    end
  end)

  signal.block(signal.SIGTERM, signal.SIGINT)
  local sigs = signal.listen(signal.SIGTERM, signal.SIGINT)
  cq:wrap(function()
    local sig = sigs:wait()
    stop(sig == signal.SIGINT and "SIGINT" or "SIGTERM")
  end)

  if opts.watch_stdin then -- the spec helper holds our stdin; EOF means it went away
    cq:wrap(function()
      local input = csocket.fdopen(0)
      input:setmode("b", "bn")
      while input:xread(4096, "b") do end
      stop("stdin closed")
    end)
  end

  local out = opts.out or io.stdout
  out:write(string.format("listening on http://%s:%d\n", ip, port))
  out:flush()

  while true do
    local looped, lerr = cq:loop()
    if looped then break end
    io.stderr:write("ecdn-sim: ", tostring(lerr), "\n")
  end
  return true
end

return M
