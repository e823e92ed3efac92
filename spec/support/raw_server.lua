-- A scripted plain-HTTP server for the response-classification spec: reads
-- one request per connection, then answers with the bytes a MODE names and
-- closes. Runs as its own process (lua5.4 + luasocket):
--   lua5.4 spec/support/raw_server.lua MODE PORT_FILE
-- Binds 127.0.0.1 on a free port, writes the port to PORT_FILE, serves until
-- killed or 60 s pass without a connection. Each connection's request bytes
-- are appended to PORT_FILE .. ".requests" (one line per request: its size).
--
-- Modes:
--   partial_headers   a status line and half a header, then close
--   big_body          200 with a body of 16 MiB + 1 KiB
--   many_headers      200 with ~80 KiB of small headers, then a valid envelope
--   long_header       200 with one 150 KB header line, then a valid envelope
--   dirty_task        200 success envelope, TaskId/RequestId full of bad bytes
--   dirty_error       200 Error envelope, Code/Message/RequestId full of bad bytes
--   ok                200 success envelope
--   spaced_task       200 success envelope in another shape (whitespace, members
--                     reordered, one more member): the general decoder's case
local socket = require "socket"

local mode, port_file = ...
assert(mode == "--values" or port_file, "usage: raw_server.lua MODE PORT_FILE")

local M = {} -- the shared values, also read by the spec through require

-- JSON string bodies (\u escapes for the control characters; raw bytes for
-- the invalid UTF-8). The spec holds the exact cleaned values.
M.TASK_ID = [[task-\u001b[31m-\u0000-]] .. "\255\254" .. [[-é-\u0085-]] .. "\127" .. "-end"
M.REQUEST_ID = ("r"):rep(5000)
M.CODE = [[Bad\tCode]] .. "\226\130" .. ("c"):rep(5000)
M.MESSAGE = [[\u0001]] .. ("m"):rep(4999)

local OK_BODY = '{"Response":{"TaskId":"raw-task-1","RequestId":"raw-request-1"}}'

local function envelope(body, extra_headers)
  return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n" .. (extra_headers or "")
    .. "Content-Length: " .. #body .. "\r\nConnection: close\r\n\r\n" .. body
end

local answers = {
  partial_headers = function()
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Le"
  end,
  big_body = function()
    local n = 16 * 1024 * 1024 + 1024
    return "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: " .. n
      .. "\r\nConnection: close\r\n\r\n", n
  end,
  many_headers = function()
    local h = {}
    for i = 1, 2000 do h[i] = ("X-Filler-%04d: %s\r\n"):format(i, ("v"):rep(24)) end -- 2000 * 40 bytes
    return envelope(OK_BODY, table.concat(h))
  end,
  long_header = function()
    return envelope(OK_BODY, "X-Long: " .. ("L"):rep(150 * 1000) .. "\r\n")
  end,
  dirty_task = function()
    return envelope('{"Response":{"TaskId":"' .. M.TASK_ID .. '","RequestId":"' .. M.REQUEST_ID .. '"}}')
  end,
  dirty_error = function()
    return envelope('{"Response":{"Error":{"Code":"' .. M.CODE .. '","Message":"' .. M.MESSAGE
      .. '"},"RequestId":"' .. M.REQUEST_ID .. '"}}')
  end,
  ok = function()
    return envelope(OK_BODY)
  end,
  spaced_task = function()
    return envelope('{ "Response" : {"RequestId": "raw-request-1",\n "TaskId":"raw-task-1", "Extra": [1]} }\n')
  end,
}

if mode == "--values" then return M end -- loaded by the spec for the shared values
local answer = assert(answers[mode], "unknown mode " .. tostring(mode))

local server = assert(socket.bind("127.0.0.1", 0))
local _, port = server:getsockname()
local f = assert(io.open(port_file .. ".tmp", "w"))
f:write(port, "\n")
f:close()
assert(os.rename(port_file .. ".tmp", port_file)) -- readers never see a half-written file

local function note(n)
  local log = io.open(port_file .. ".requests", "a")
  if log then
    log:write(n, "\n")
    log:close()
  end
end

server:settimeout(60)
while true do
  local conn = server:accept()
  if not conn then break end
  conn:settimeout(5)
  local size, length = 0, 0
  while true do
    local line = conn:receive("*l")
    if not line then break end
    size = size + #line + 2
    if line == "" then break end
    local n = line:lower():match("^content%-length:%s*(%d+)")
    if n then length = tonumber(n) end
  end
  if length > 0 and conn:receive(length) then size = size + length end
  note(size)
  local head, filler = answer()
  local ok = conn:send(head)
  if ok and filler then -- the client hangs up once it has seen enough: stop then
    local chunk = ("x"):rep(64 * 1024)
    local left = filler
    while left > 0 do
      local piece = left >= #chunk and chunk or chunk:sub(1, left)
      if not conn:send(piece) then break end
      left = left - #piece
    end
  end
  conn:close()
end
