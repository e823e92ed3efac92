-- Test helper: starts `lua5.4 bin/ecdn-sim --port 0 ...` as a subprocess on a
-- free port and talks raw, signed HTTP to it with luasocket. Works from both
-- lua5.4 and luajit busted runs (the simulator itself always runs on 5.4).
--
--   local sim = require "support.sim"
--   local s = sim.start{ args = { "--rate", "0" }, log = true }
--   finally(function() s:stop() end)
--   local status, body, decoded = sim.raw_request(s.port, "PurgeUrlsCache", '{"Urls":["http://a.com/x"]}')
--   local status, body, decoded, headers = sim.v1_request(s.port, "PurgeUrlsCache", { Urls = { "http://a.com/x" } })
--   s:log_entries(); s:stats()
--   With --fake-clock: s:set_clock(t), s:advance(seconds), s:now(); sim.beijing(t) formats a
--   StartTime/EndTime; sim.parse_http_date(headers.date) reads the Date header.
--
-- The simulator is started with --watch-stdin and its stdin is a pipe held by
-- this process, so it exits on its own even if the test run dies.
local socket = require "socket"
local cjson = require "cjson.safe"
local core = require "ecdn.core"

local M = {}

M.DEFAULT_SECRET_ID = require("ecdn.sim").DEFAULT_SECRET_ID
M.DEFAULT_SECRET_KEY = require("ecdn.sim").DEFAULT_SECRET_KEY
M.VERSIONS = { ecdn = "2019-10-12", cdn = "2018-06-06" }

local function shell_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- True while pid exists and is not a zombie.
local function alive(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  if not stat then return false end
  local state = stat:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end
M.alive = alive

-- The tree's root (holding bin/ecdn-sim): $ECDN_ROOT, else found from this
-- file's path, else the current directory (busted runs from the root).
local function root()
  local env = os.getenv("ECDN_ROOT")
  if env and env ~= "" then return env end
  local src = debug.getinfo(1, "S").source
  return src:match("^@(.+)/spec/support/sim%.lua$") or "."
end

local Sim = {}
Sim.__index = Sim

-- opts.args: extra simulator arguments; opts.log: true for a temp log file
-- (or a path); opts.timeout: seconds to wait for the ready line (default 10);
-- opts.max_fds: start it under `ulimit -n N` (file-descriptor exhaustion specs).
-- s.secret_id/s.secret_key: the default pair, or the first --secret in args.
function M.start(opts)
  opts = opts or {}
  local tmp = os.tmpname()
  local s = setmetatable({ tmp = tmp, out_path = tmp .. ".out", err_path = tmp .. ".err",
                           pid_path = tmp .. ".pid", secret_id = M.DEFAULT_SECRET_ID,
                           secret_key = M.DEFAULT_SECRET_KEY }, Sim)
  local args = { "--port", "0", "--watch-stdin" }
  if opts.log then
    s.log_path = opts.log == true and tmp .. ".log" or opts.log
    s.own_log = opts.log == true
    args[#args + 1] = "--log"
    args[#args + 1] = s.log_path
  end
  local extra = opts.args or {}
  for i, a in ipairs(extra) do
    args[#args + 1] = a
    -- With --secret the default pair is not accepted: s.secret_id/key = the first pair given.
    local pair = (a == "--secret" and extra[i + 1]) or a:match("^%-%-secret=(.*)$")
    if pair and not s.custom_secret then
      s.secret_id, s.secret_key = pair:match("^([^:]+):(.*)$")
      s.custom_secret = true
    end
  end
  local quoted = {}
  for i, a in ipairs(args) do quoted[i] = shell_quote(a) end
  local r = root()
  local cmd = table.concat({
    "echo $$ >", shell_quote(s.pid_path), ";",
    opts.max_fds and ("ulimit -n " .. math.floor(opts.max_fds) .. " &&") or "",
    "LUA_PATH=" .. shell_quote(r .. "/lua/?.lua;" .. r .. "/lua/?/init.lua;;"),
    "LUA_CPATH=" .. shell_quote(r .. "/build/?.so;;"),
    -- $ECDN_SIM_LUA: the interpreter for the simulator (make asan runs it uninstrumented).
    "exec", shell_quote(os.getenv("ECDN_SIM_LUA") or "lua5.4"), shell_quote(r .. "/bin/ecdn-sim"),
    table.concat(quoted, " "),
    ">", shell_quote(s.out_path), "2>", shell_quote(s.err_path) }, " ")
  s.pipe = assert(io.popen(cmd, "w"))
  local deadline = socket.gettime() + (opts.timeout or 10)
  while socket.gettime() < deadline do
    s.pid = s.pid or tonumber(read_file(s.pid_path) or "")
    local out = read_file(s.out_path) or ""
    local port = out:match("listening on http://127%.0%.0%.1:(%d+)\n")
    if port and s.pid then
      s.port = tonumber(port)
      s.url = "http://127.0.0.1:" .. port
      return s
    end
    if s.pid and not alive(s.pid) then break end
    socket.sleep(0.01)
  end
  local err = read_file(s.err_path) or ""
  s:stop()
  error("simulator did not start: " .. err, 2)
end

-- Sends SIGTERM, waits for the exit (SIGKILL after 5 s), removes temp files.
-- Safe to call twice. Returns the simulator's stderr text.
function Sim:stop()
  if self.stopped then return self.stderr end
  self.stopped = true
  if self.pid and alive(self.pid) then
    os.execute("kill -TERM " .. self.pid .. " 2>/dev/null")
    local deadline = socket.gettime() + 5
    while alive(self.pid) and socket.gettime() < deadline do socket.sleep(0.01) end
    if alive(self.pid) then os.execute("kill -KILL " .. self.pid .. " 2>/dev/null") end
  end
  if self.pipe then self.pipe:close() end -- reaps the process
  self.stderr = read_file(self.err_path) or ""
  os.remove(self.out_path)
  os.remove(self.err_path)
  os.remove(self.pid_path)
  os.remove(self.tmp)
  if self.own_log then os.remove(self.log_path) end
  return self.stderr
end

-- The log file's lines, each decoded (error if a line is not valid JSON).
function Sim:log_entries()
  local text = read_file(self.log_path) or ""
  local entries = {}
  for line in text:gmatch("([^\n]*)\n") do
    local e, err = cjson.decode(line)
    if not e then error("bad log line " .. line .. ": " .. tostring(err), 2) end
    entries[#entries + 1] = e
  end
  return entries
end

-- Every URL the simulator purged, in log order.
function Sim:logged_urls()
  local all = {}
  for _, e in ipairs(self:log_entries()) do
    for _, u in ipairs(e.urls or {}) do all[#all + 1] = u end
  end
  return all
end

-- url -> how many times the simulator purged it.
function Sim:url_counts()
  local count = {}
  for _, u in ipairs(self:logged_urls()) do count[u] = (count[u] or 0) + 1 end
  return count
end

-- The raw log text.
function Sim:log_text()
  return read_file(self.log_path) or ""
end

function Sim:stats()
  local status, body = M.http(self.port, "GET /__stats HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
  assert(status == 200, "GET /__stats failed: " .. tostring(status) .. " " .. tostring(body))
  return assert(cjson.decode(body))
end

-- With --fake-clock: sets the simulator's clock to t (unix seconds) and
-- returns the new time.
function Sim:set_clock(t)
  return self:clock_request(string.format('{"set":%.17g}', t))
end

-- With --fake-clock: moves the simulator's clock by seconds; returns it.
function Sim:advance(seconds)
  return self:clock_request(string.format('{"advance":%.17g}', seconds))
end

-- With --fake-clock: the simulator's current time.
function Sim:now()
  return self:clock_request("{}")
end

function Sim:clock_request(body)
  local status, raw = M.http(self.port, "POST /__clock HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
                                        .. "Content-Length: " .. #body .. "\r\n\r\n" .. body)
  assert(status == 200, "POST /__clock failed (is --fake-clock on?): " .. tostring(status) .. " " .. tostring(raw))
  return assert(cjson.decode(raw)).now
end

---------------------------------------------------------------------------
-- Raw client side

local Conn = {}
Conn.__index = Conn

-- A keep-alive connection to the simulator on port.
function M.connect(port, timeout)
  local c = socket.tcp()
  c:settimeout(timeout or 10)
  local ok, err = c:connect("127.0.0.1", port)
  if not ok then return nil, err end
  c:setoption("tcp-nodelay", true)
  return setmetatable({ sock = c, port = port }, Conn)
end

function Conn:send(bytes)
  return self.sock:send(bytes)
end

-- Reads one HTTP response: status, body, headers (lower-case names); or nil, err.
function Conn:receive()
  local line, err = self.sock:receive("*l")
  if not line then return nil, err end
  local status = tonumber(line:match("^HTTP/%d%.%d (%d%d%d)"))
  if not status then return nil, "bad status line: " .. line end
  local headers = {}
  while true do
    local h
    h, err = self.sock:receive("*l")
    if not h then return nil, err end
    if h == "" then break end
    local k, v = h:match("^([^:]+):%s*(.-)%s*$")
    if k then headers[k:lower()] = v end
  end
  if status == 100 then return self:receive() end
  local body = ""
  local n = tonumber(headers["content-length"] or "0")
  if n > 0 then
    body, err = self.sock:receive(n)
    if not body then return nil, err end
  end
  return status, body, headers
end

function Conn:close()
  self.sock:close()
end

-- Builds the bytes of a signed API request. opts: secret_id, secret_key,
-- token, timestamp, service ("ecdn"|"cdn"), host (default 127.0.0.1:PORT),
-- version, content_type, sign_action, headers (name -> value, or false to
-- drop a header; applied after signing), connection ("close").
function M.build_request(port, action, body, opts)
  opts = opts or {}
  local service = opts.service or "ecdn"
  local host = opts.host or ("127.0.0.1:" .. port)
  local signed = core.sign_tc3 {
    secret_id = opts.secret_id or M.DEFAULT_SECRET_ID, secret_key = opts.secret_key or M.DEFAULT_SECRET_KEY,
    service = service, host = host, action = action, version = opts.version or M.VERSIONS[service],
    timestamp = opts.timestamp or os.time(), payload = body, token = opts.token,
    content_type = opts.content_type, sign_action = opts.sign_action,
  }
  local headers = {}
  for k, v in pairs(signed.headers) do headers[k] = v end
  for k, v in pairs(opts.headers or {}) do
    for existing in pairs(headers) do -- header names are case-insensitive
      if existing:lower() == k:lower() then headers[existing] = nil end
    end
    if v then headers[k] = v end
  end
  local names = {}
  for k in pairs(headers) do names[#names + 1] = k end
  table.sort(names)
  local lines = { "POST / HTTP/1.1" }
  for _, k in ipairs(names) do lines[#lines + 1] = k .. ": " .. headers[k] end
  lines[#lines + 1] = "Content-Length: " .. #body
  if opts.connection then lines[#lines + 1] = "Connection: " .. opts.connection end
  return table.concat(lines, "\r\n") .. "\r\n\r\n" .. body, signed
end

-- Sends a signed request on this connection; returns status, body, decoded, headers.
function Conn:request(action, body, opts)
  local ok, err = self:send((M.build_request(self.port, action, body, opts)))
  if not ok then return nil, err end
  local status, rbody, headers = self:receive()
  if not status then return nil, rbody end
  return status, rbody, cjson.decode(rbody), headers
end

---------------------------------------------------------------------------
-- Signature V1, built here (luaossl's HMAC, base64 and encoding in this
-- file): independent of the simulator's verifier and of ecdn.core.

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

local function base64(data) -- arithmetic only: runs on LuaJIT too
  local out = {}
  for i = 1, #data, 3 do
    local a, b, c = data:byte(i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    local d1, d2 = math.floor(v / 262144), math.floor(v / 4096) % 64
    local d3, d4 = math.floor(v / 64) % 64, v % 64
    out[#out + 1] = B64:sub(d1 + 1, d1 + 1) .. B64:sub(d2 + 1, d2 + 1)
                    .. (b and B64:sub(d3 + 1, d3 + 1) or "=") .. (c and B64:sub(d4 + 1, d4 + 1) or "=")
  end
  return table.concat(out)
end
M.base64 = base64

-- RFC 3986: unreserved characters as they are, everything else %XX (upper case).
local function encode(s)
  return (tostring(s):gsub("[^%w%-%._~]", function(c) return string.format("%%%02X", c:byte()) end))
end
M.url_encode = encode

-- The SDKs' flattening: {Urls = {"a", "b"}, Headers = {{Name = "n"}}, UrlEncode = true}
-- -> {["Urls.0"] = "a", ["Urls.1"] = "b", ["Headers.0.Name"] = "n", UrlEncode = "true"}.
function M.flatten(params)
  local flat = {}
  for k, v in pairs(params) do
    if type(v) == "table" then
      for i, item in ipairs(v) do
        if type(item) == "table" then
          for f, x in pairs(item) do flat[k .. "." .. (i - 1) .. "." .. f] = tostring(x) end
        else
          flat[k .. "." .. (i - 1)] = tostring(item)
        end
      end
    else
      flat[k] = tostring(v)
    end
  end
  return flat
end

-- V1 string to sign and signature for params (name -> string, Signature excluded).
function M.v1_sign(secret_key, method, host, params, path)
  local names = {}
  for k in pairs(params) do
    if k ~= "Signature" then names[#names + 1] = k end
  end
  table.sort(names)
  local pairs_ = {}
  for i, k in ipairs(names) do pairs_[i] = k .. "=" .. params[k] end
  local sts = method .. host .. (path or "/") .. "?" .. table.concat(pairs_, "&")
  local algo = params.SignatureMethod == "HmacSHA256" and "sha256" or "sha1"
  return base64(require("openssl.hmac").new(secret_key, algo):final(sts)), sts
end

-- Builds the bytes of a V1 request. params: action parameters, nested or
-- already flat (see M.flatten). opts: secret_id, secret_key, token,
-- timestamp, nonce (default 1 + a counter), method ("POST", form body, the
-- default | "GET", query), host (signed and sent; default 127.0.0.1:PORT),
-- service ("ecdn"|"cdn": the default Version), version, region,
-- signature_method ("HmacSHA1"|"HmacSHA256"; default: none sent, i.e. SHA-1),
-- common (extra parameters, signed), after (name -> value|false, changed after
-- signing), signature (sent instead of the right one), headers (name ->
-- value, or false to drop one; e.g. another Host than the signed one),
-- connection. Returns bytes, {params (as sent), string_to_sign,
-- signature}.
local nonce_counter = 0
function M.build_v1(port, action, params, opts)
  opts = opts or {}
  nonce_counter = nonce_counter + 1
  local host = opts.host or ("127.0.0.1:" .. port)
  local method = opts.method or "POST"
  local p = M.flatten(params or {})
  p.Action = action
  p.Version = opts.version or M.VERSIONS[opts.service or "ecdn"]
  p.SecretId = opts.secret_id or M.DEFAULT_SECRET_ID
  p.Timestamp = tostring(opts.timestamp or os.time())
  p.Nonce = tostring(opts.nonce or nonce_counter)
  p.Region = opts.region
  p.Token = opts.token
  p.SignatureMethod = opts.signature_method
  for k, v in pairs(opts.common or {}) do p[k] = v end
  local sig, sts = M.v1_sign(opts.secret_key or M.DEFAULT_SECRET_KEY, method, host, p)
  p.Signature = opts.signature or sig
  for k, v in pairs(opts.after or {}) do p[k] = v or nil end
  local names = {}
  for k in pairs(p) do names[#names + 1] = k end
  table.sort(names)
  local parts = {}
  for i, k in ipairs(names) do parts[i] = encode(k) .. "=" .. encode(p[k]) end
  local text = table.concat(parts, "&")
  local headers = { Host = host }
  if method ~= "GET" then
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    headers["Content-Length"] = tostring(#text)
  end
  for k, v in pairs(opts.headers or {}) do
    for existing in pairs(headers) do -- header names are case-insensitive
      if existing:lower() == k:lower() then headers[existing] = nil end
    end
    if v then headers[k] = v end
  end
  local header_names = {}
  for k in pairs(headers) do header_names[#header_names + 1] = k end
  table.sort(header_names)
  local lines = { (method == "GET" and ("GET /?" .. text) or "POST /") .. " HTTP/1.1" }
  for _, k in ipairs(header_names) do lines[#lines + 1] = k .. ": " .. headers[k] end
  if opts.connection then lines[#lines + 1] = "Connection: " .. opts.connection end
  local bytes = table.concat(lines, "\r\n") .. "\r\n\r\n" .. (method == "GET" and "" or text)
  return bytes, { params = p, string_to_sign = sts, signature = sig }
end

-- Sends a V1 request on this connection; returns status, body, decoded, headers.
function Conn:request_v1(action, params, opts)
  local ok, err = self:send((M.build_v1(self.port, action, params, opts)))
  if not ok then return nil, err end
  local status, rbody, headers = self:receive()
  if not status then return nil, rbody end
  return status, rbody, cjson.decode(rbody), headers
end

-- Connection method `method` (request or request_v1) on a fresh connection
-- that closes after it (unless opts say otherwise).
local function one_shot(port, method, action, payload, opts)
  local c, err = M.connect(port)
  if not c then return nil, err end
  local o = {}
  for k, v in pairs(opts or {}) do o[k] = v end
  o.connection = o.connection or "close"
  local status, rbody, decoded, headers = c[method](c, action, payload, o)
  c:close()
  return status, rbody, decoded, headers
end

-- One V1 request on a fresh connection: status, body, decoded, headers.
function M.v1_request(port, action, params, opts)
  return one_shot(port, "request_v1", action, params, opts)
end

-- "YYYY-MM-DD HH:MM:SS" in Beijing time (UTC+8) of unix time t: the
-- service's StartTime/EndTime/CreateTime format.
function M.beijing(t)
  return os.date("!%Y-%m-%d %H:%M:%S", math.floor(t) + 8 * 3600)
end

local MONTH = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
                Nov = 11, Dec = 12 }

-- Unix time of an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), or nil.
function M.parse_http_date(s)
  local d, mon, y, h, mi, se = (s or ""):match("^%a%a%a, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  if not d or not MONTH[mon] then return nil end
  y, d, h, mi, se = tonumber(y), tonumber(d), tonumber(h), tonumber(mi), tonumber(se)
  local m = MONTH[mon]
  -- days from civil (UTC), without os.time's local time zone
  if m <= 2 then y = y - 1 end
  local era = math.floor(y / 400)
  local yoe = y - era * 400
  local doy = math.floor((153 * (m + (m > 2 and -3 or 9)) + 2) / 5) + d - 1
  local doe = yoe * 365 + math.floor(yoe / 4) - math.floor(yoe / 100) + doy
  return (era * 146097 + doe - 719468) * 86400 + h * 3600 + mi * 60 + se
end

-- Sends raw bytes on a new connection and reads one response.
function M.http(port, bytes)
  local c, err = M.connect(port)
  if not c then return nil, err end
  c:send(bytes)
  local status, body, headers = c:receive()
  c:close()
  return status, body, headers
end

-- One signed request on a fresh connection: status, body_string, decoded,
-- headers (decoded is nil when the body is not JSON; status is nil, err when
-- the connection failed or was closed without an answer).
function M.raw_request(port, action, body, opts)
  return one_shot(port, "request", action, body, opts)
end

--- api_call(s, action, params [, opts]) -> error code (nil on success),
-- Response: one signed request to simulator s with params JSON-encoded,
-- timestamped on its clock unless opts say otherwise; a 200 with a JSON
-- answer is asserted.
function M.api_call(s, action, params, opts)
  local o = { timestamp = math.floor(s:now()) }
  for k, v in pairs(opts or {}) do o[k] = v end
  local status, raw, decoded = M.raw_request(s.port, action, cjson.encode(params), o)
  local check = require "luassert" -- busted's assert (required here: only specs call this)
  check.equal(200, status, raw)
  check.is_table(decoded, raw)
  local err = decoded.Response.Error
  return err and err.Code, decoded.Response
end

return M
