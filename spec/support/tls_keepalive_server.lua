-- A keep-alive HTTPS server for the fork spec: many connections at once
-- (cqueues + luaossl), any number of requests on each. Every answer is a
-- purge envelope whose TaskId names the connection and the request on it:
--   "tls-c<connection>-r<request>"
-- so a client can tell whether its request went out on the connection it
-- used before. Runs as its own process:
--   lua5.4 spec/support/tls_keepalive_server.lua CERT KEY PORT_FILE
-- Binds 127.0.0.1 on a free port, writes the port to PORT_FILE, serves until
-- killed or 60 s pass without any activity.
local cqueues = require "cqueues"
local socket = require "cqueues.socket"
local context = require "openssl.ssl.context"
local x509 = require "openssl.x509"
local pkey = require "openssl.pkey"

local cert, key, port_file = ...
assert(cert and key and port_file, "usage: tls_keepalive_server.lua CERT KEY PORT_FILE")

local function read_file(path)
  local f = assert(io.open(path, "rb"))
  local s = f:read("*a")
  f:close()
  return s
end

local ctx = context.new("TLS", true)
ctx:setCertificate(x509.new(read_file(cert)))
ctx:setPrivateKey(pkey.new(read_file(key)))

local srv = assert(socket.listen { host = "127.0.0.1", port = 0, reuseaddr = true })
assert(srv:listen())
local _, _, port = srv:localname()
local f = assert(io.open(port_file .. ".tmp", "w"))
f:write(port, "\n")
f:close()
assert(os.rename(port_file .. ".tmp", port_file)) -- readers never see a half-written file

local cq = cqueues.new()
local last = cqueues.monotime()
local connections = 0

local function serve(con, id)
  con:settimeout(120)
  if not con:starttls(ctx) then con:close(); return end
  local n = 0
  while true do
    local length, line = 0, con:xread("*l", "t")
    if not line then break end -- the client hung up (or sent close_notify)
    while line and line ~= "" do
      local v = line:lower():match("^content%-length:%s*(%d+)")
      if v then length = tonumber(v) end
      line = con:xread("*l", "t")
    end
    if not line then break end
    if length > 0 and not con:xread(length, "b") then break end
    last = cqueues.monotime()
    n = n + 1
    local body = ('{"Response":{"TaskId":"tls-c%d-r%d","RequestId":"tls-req-c%d-r%d"}}'):format(id, n, id, n)
    local ok = con:xwrite("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " .. #body
      .. "\r\n\r\n" .. body, "bn")
    if not ok then break end
  end
  con:close()
end

cq:wrap(function()
  while true do
    local con = srv:accept(1)
    if con then
      connections = connections + 1
      last = cqueues.monotime()
      local id = connections
      cq:wrap(function() serve(con, id) end)
    elseif cqueues.monotime() - last > 60 then
      os.exit(0)
    end
  end
end)

while true do
  local ok, err = cq:step()
  if not ok then io.stderr:write("tls_keepalive_server: ", tostring(err), "\n") end
end
