-- Small process helpers for specs: background servers, commands, temp files.
local socket = require "socket"

local M = {}

--- The interpreter running these specs, so children match it: luajit,
-- lua5.1, lua5.2, lua5.3 or lua5.4 (Debian's names).
M.lua = jit and "luajit" or ("lua" .. _VERSION:match("%d+%.%d+"))

--- Where `make LUA=<M.lua>` puts ecdn/core.so (5.4: build/, the others build/<lua>/).
M.build = M.lua == "lua5.4" and "build" or ("build/" .. M.lua)

--- The LUA_PATH/LUA_CPATH prefix that runs the tree's modules with M.lua.
-- (ECDN_METADATA_ENDPOINT=off: a child without credentials never asks the
-- real CVM metadata service.)
M.env = "LUA_PATH='lua/?.lua;lua/?/init.lua;spec/?.lua;;' LUA_CPATH='" .. M.build .. "/?.so;;'"
  .. " ECDN_METADATA_ENDPOINT=off"

function M.quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- Runs a shell command; returns stdout, exit code.
function M.run(cmd)
  local p = assert(io.popen(cmd .. "; echo \"__rc=$?\""))
  local out = p:read("*a")
  p:close()
  local rc = tonumber(out:match("__rc=(%d+)%s*$"))
  return out:gsub("__rc=%d+%s*$", ""), rc
end

--- Starts cmd in the background; returns its pid.
function M.spawn(cmd)
  local p = assert(io.popen(cmd .. " >/dev/null 2>&1 & echo $!"))
  local pid = tonumber(p:read("*l"))
  p:close()
  return assert(pid, "spawn failed: " .. cmd)
end

--- How many file descriptors this process has open.
function M.open_fds()
  local n = 0
  for name in require("lfs").dir("/proc/self/fd") do
    if name ~= "." and name ~= ".." then n = n + 1 end
  end
  return n - 1 -- the directory being read
end

function M.kill(pid)
  if pid then os.execute("kill " .. math.floor(pid) .. " 2>/dev/null") end
end

function M.tmpname()
  local name = os.tmpname()
  os.remove(name)
  return name
end

--- A whole file's contents, or nil when it cannot be read.
function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

--- Waits up to `secs` for a file to exist; returns its contents or nil.
function M.wait_file(path, secs)
  local deadline = socket.gettime() + (secs or 10)
  repeat
    local f = io.open(path, "r")
    if f then
      local s = f:read("*a")
      f:close()
      return s
    end
    socket.sleep(0.02)
  until socket.gettime() > deadline
  return nil
end

local handed_out = {} -- ports already given: the kernel may give a released one again

--- A port on 127.0.0.1 where nothing listens (bound, then released), never
-- the same twice in a process (two servers of one spec must not share one).
function M.closed_port()
  for _ = 1, 1000 do
    local s = assert(socket.bind("127.0.0.1", 0))
    local _, port = s:getsockname()
    s:close()
    port = tonumber(port)
    if not handed_out[port] then
      handed_out[port] = true
      return port
    end
  end
  error("proc.closed_port: no port that was not given before")
end

--- A self-signed certificate for 127.0.0.1; returns cert path, key path.
function M.self_signed()
  local base = M.tmpname()
  local cert, key = base .. "-cert.pem", base .. "-key.pem"
  local _, rc = M.run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    .. " -keyout " .. key .. " -out " .. cert .. " -days 1 -subj /CN=127.0.0.1"
    .. " -addext subjectAltName=IP:127.0.0.1 >/dev/null 2>&1")
  assert(rc == 0, "openssl req failed")
  return cert, key
end

return M
