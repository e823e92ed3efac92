-- A fake CVM instance metadata service for the credential specs. Two uses:
--
-- As its own process (Lua 5.4 + luasocket + lua-cjson):
--   lua5.4 spec/support/metadata_server.lua PORT_FILE
-- binds 127.0.0.1 on a free port, writes the port to PORT_FILE and serves,
-- one request per connection, until killed (or 60 s without a connection):
--   GET /latest/meta-data/                                 200 "cam/\n..." (the presence probe)
--   GET /latest/meta-data/cam/security-credentials/        the role name (404 when state.role is false)
--   GET /latest/meta-data/cam/security-credentials/<role>  {"TmpSecretId", "TmpSecretKey", "Token",
--       "ExpiredTime", "Expiration", "Code": "Success"}; the values carry state.generation
-- and the control endpoints:
--   POST /__set {json}   merges into the state: role (string, or false for none), generation,
--                        expired_time (unix s), mode ("ok" | "error500" | "garbage" | "code" |
--                        "no_expiry" | "hang": answers nothing until the state changes),
--                        role_listing (the raw body of the role-name answer)
--   GET  /__stats        {"paths": {path: count}} for the non-control requests
--
-- As a module (from a spec, on any VM):
--   local meta = require "support.metadata_server"
--   local m = meta.start{ role = "ecdn-role", expired_time = 1700003600 }
--   finally(function() m:stop() end)
--   m.url; m:set{ generation = 2 }; m:stats().paths[...]
--   meta.creds(generation) -> the secret_id, secret_key, token the server hands out
local M = {}

local ROLES = "/latest/meta-data/cam/security-credentials/"

function M.creds(generation)
  local g = string.format("%d", generation)
  return "AKIDmeta" .. g .. string.rep("0", 28 - #g), "MetaSecretKey" .. g, "meta-token-" .. g
end

if ... ~= "support.metadata_server" then
  -------------------------------------------------------------------------
  -- The server.
  local socket = require "socket"
  local cjson = require "cjson"

  local port_file = arg[1]
  assert(port_file, "usage: metadata_server.lua PORT_FILE")
  local state = { role = "ecdn-role", generation = 1, expired_time = os.time() + 7200, mode = "ok" }
  local counts = {}
  local hung = {}

  local server = assert(socket.bind("127.0.0.1", 0))
  local _, port = server:getsockname()
  local f = assert(io.open(port_file .. ".tmp", "w"))
  f:write(port, "\n")
  f:close()
  assert(os.rename(port_file .. ".tmp", port_file))

  local function answer(conn, status, body, ctype)
    local reason = ({ [200] = "OK", [404] = "Not Found", [500] = "Internal Server Error" })[status] or "X"
    conn:send("HTTP/1.1 " .. status .. " " .. reason .. "\r\nContent-Type: " .. (ctype or "text/plain")
      .. "\r\nContent-Length: " .. #body .. "\r\nConnection: close\r\n\r\n" .. body)
  end

  local function credentials_body()
    if state.mode == "garbage" then return "<html>not json" end
    local id, key, token = M.creds(state.generation)
    local doc = { TmpSecretId = id, TmpSecretKey = key, Token = token, Code = "Success",
                  ExpiredTime = state.expired_time,
                  Expiration = os.date("!%Y-%m-%dT%H:%M:%SZ", state.expired_time) }
    if state.mode == "code" then doc.Code = "Failure" end
    if state.mode == "no_expiry" then doc.ExpiredTime = nil end
    return cjson.encode(doc)
  end

  local function release_hung()
    for _, c in ipairs(hung) do c:close() end
    hung = {}
  end

  local function serve(conn)
    conn:settimeout(5)
    local line = conn:receive("*l")
    if not line then conn:close() return end
    local method, path = line:match("^(%u+) (%S+) HTTP/1%.[01]$")
    local length = 0
    while true do
      local h = conn:receive("*l")
      if not h or h == "" then break end
      local n = h:lower():match("^content%-length:%s*(%d+)")
      if n then length = tonumber(n) end
    end
    local body = length > 0 and conn:receive(length) or ""
    if path == "/__set" and method == "POST" then
      for k, v in pairs(cjson.decode(body)) do state[k] = v end
      release_hung()
      answer(conn, 200, "{}", "application/json")
    elseif path == "/__stats" then
      answer(conn, 200, cjson.encode { paths = counts }, "application/json")
    else
      counts[path or "?"] = (counts[path or "?"] or 0) + 1
      if state.mode == "hang" then hung[#hung + 1] = conn return end
      if state.mode == "error500" then answer(conn, 500, "internal error")
      elseif path == "/latest/meta-data/" then answer(conn, 200, "cam/\ninstance-id\n")
      elseif path == ROLES then
        if state.role then answer(conn, 200, state.role_listing or state.role)
        else answer(conn, 404, "not found") end
      elseif state.role and path == ROLES .. state.role then
        answer(conn, 200, credentials_body(), "application/json")
      else
        answer(conn, 404, "not found")
      end
    end
    conn:close()
  end

  server:settimeout(60)
  while true do
    local conn = server:accept()
    if not conn then break end
    serve(conn)
  end
  release_hung()
  return
end

---------------------------------------------------------------------------
-- The helper, for specs.
local socket = require "socket"
local cjson = require "cjson"
local proc = require "support.proc"

local Server = {}
Server.__index = Server

-- Raw HTTP to the control endpoints (luasocket, on every VM).
local function control(port, method, path, body)
  local c = assert(socket.connect("127.0.0.1", port))
  c:settimeout(5)
  body = body or ""
  assert(c:send(method .. " " .. path .. " HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: " .. #body
    .. "\r\nConnection: close\r\n\r\n" .. body))
  local all = c:receive("*a")
  c:close()
  local status, rest = all:match("^HTTP/1%.1 (%d+).-\r\n\r\n(.*)$")
  assert(status == "200", "metadata server control " .. path .. " failed: " .. tostring(all))
  return rest
end

--- start(state) -> server with .port, .url (the endpoint), :set(t), :stats(), :stop().
function M.start(state)
  local port_file = proc.tmpname()
  local pid = proc.spawn("lua5.4 spec/support/metadata_server.lua " .. proc.quote(port_file))
  local port = tonumber(proc.wait_file(port_file, 10))
  os.remove(port_file)
  if not port then
    proc.kill(pid)
    error("metadata server did not start", 2)
  end
  local s = setmetatable({ pid = pid, port = port, url = "http://127.0.0.1:" .. port }, Server)
  if state then s:set(state) end
  return s
end

function Server:set(t)
  control(self.port, "POST", "/__set", cjson.encode(t))
end

function Server:stats()
  return cjson.decode(control(self.port, "GET", "/__stats"))
end

-- How many times path (relative to the roles prefix when it does not start with "/") was asked.
function Server:count(path)
  if path:sub(1, 1) ~= "/" then path = ROLES .. path end
  local paths = self:stats().paths
  return type(paths) == "table" and paths[path] or 0
end

function Server:stop()
  proc.kill(self.pid)
  self.pid = nil
end

M.ROLES_PATH = ROLES
return M
