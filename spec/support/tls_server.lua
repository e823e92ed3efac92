-- A one-purpose HTTPS server for the TLS verification spec: answers every
-- request with a purge envelope. Runs as its own process:
--   lua5.4 spec/support/tls_server.lua CERT KEY PORT_FILE
-- Binds 127.0.0.1 on a free port, writes the port to PORT_FILE, serves until
-- killed (or 60 s without a connection, so a crashed test leaves nothing behind).
local socket = require "socket"
local ssl = require "ssl"

local cert, key, port_file = arg[1], arg[2], arg[3]
assert(cert and key and port_file, "usage: tls_server.lua CERT KEY PORT_FILE")

local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
local f = assert(io.open(port_file .. ".tmp", "w"))
f:write(port, "\n")
f:close()
assert(os.rename(port_file .. ".tmp", port_file)) -- readers never see a half-written file

local params = { mode = "server", protocol = "any", key = key, certificate = cert, options = "all" }
local BODY = '{"Response":{"TaskId":"tls-task-1","RequestId":"tls-request-1"}}'

server:settimeout(60)
while true do
  local conn = server:accept()
  if not conn then break end
  conn:settimeout(5)
  local tls = ssl.wrap(conn, params)
  -- A client that refuses our certificate aborts the handshake: just go on.
  if tls and tls:dohandshake() then
    local length = 0
    while true do
      local line = tls:receive("*l")
      if not line or line == "" then break end
      local n = line:lower():match("^content%-length:%s*(%d+)")
      if n then length = tonumber(n) end
    end
    if length > 0 then tls:receive(length) end
    tls:send("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " .. #BODY
      .. "\r\nConnection: close\r\n\r\n" .. BODY)
  end
  if tls then tls:close() else conn:close() end
end
