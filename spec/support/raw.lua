-- Runs spec/support/raw_server.lua (a scripted HTTP server) for a spec:
--   local raw = require "support.raw"
--   raw.with("ok", function(endpoint, requests_log) ... end)
local proc = require "support.proc"

local M = {}

--- start(mode) -> endpoint, pid, path of its request log
function M.start(mode)
  local port_file = proc.tmpname()
  local pid = proc.spawn("lua5.4 spec/support/raw_server.lua " .. mode .. " " .. port_file)
  local port = tonumber(proc.wait_file(port_file, 10))
  os.remove(port_file)
  assert(port, "raw server did not start")
  return "http://127.0.0.1:" .. port, pid, port_file .. ".requests"
end

--- with(mode, fn): fn(endpoint, requests_log) with a server in MODE, stopped after.
function M.with(mode, fn)
  local endpoint, pid, requests = M.start(mode)
  local ok, err = pcall(fn, endpoint, requests)
  proc.kill(pid)
  os.remove(requests)
  if not ok then error(err, 0) end
end

return M
