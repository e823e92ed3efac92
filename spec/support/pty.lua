-- Runs a shell command on a new pseudo-terminal, for specs of what a
-- program does when it talks to a terminal (progress bars, Ctrl-C).
--
-- Uses script(1) from util-linux (Debian 12: package bsdutils, Essential, so
-- always installed): the command's stdin, stdout and stderr are the pty's
-- slave, and everything it writes there comes back here as the terminal
-- shows it (the line discipline turns "\n" into "\r\n"). Redirect a stream
-- inside the command to keep it off the terminal, e.g. "prog >out.txt".
--
--   local pty = require "support.pty"
--   local screen, rc = pty.run("lua5.4 bin/ecdn-purge ... >" .. out_file)
--   local t = pty.spawn(cmd); ...; t:send("\3"); local screen, rc = t:wait()
--
-- Bytes sent go through the pty's line discipline like keys typed: "\3"
-- (the default INTR character) sends SIGINT to the command's process group.
local proc = require "support.proc"

local M = {}

local LIMIT = 60 -- seconds before a command that hangs is killed (exit 137)

local Pty = {}
Pty.__index = Pty

--- Starts `cmd` (run by sh) on a new pty, in the background. Returns a
-- handle with :send(bytes), :wait(secs) and :close().
function M.spawn(cmd)
  local base = proc.tmpname()
  local t = setmetatable({ base = base, fifo = base .. ".in", screen = base .. ".screen",
                           rc_path = base .. ".rc" }, Pty)
  local _, rc = proc.run("mkfifo " .. t.fifo)
  assert(rc == 0, "mkfifo failed")
  -- The shell keeps the fifo open read-write (fd 3), so script(1) never sees
  -- end of file on its stdin and our open for writing never waits long.
  local script = "exec 3<>" .. t.fifo .. ";"
    .. " timeout -s KILL " .. LIMIT .. " script -qefc " .. proc.quote(cmd) .. " /dev/null"
    .. " <" .. t.fifo .. " >" .. t.screen .. " 2>&1;"
    .. " echo $? >" .. base .. ".tmp; mv " .. base .. ".tmp " .. t.rc_path
  t.pid = proc.spawn("sh -c " .. proc.quote(script))
  t.input = assert(io.open(t.fifo, "w"))
  return t
end

--- Writes bytes to the terminal, as if typed.
function Pty:send(bytes)
  self.input:write(bytes)
  self.input:flush()
end

--- What the terminal has shown so far.
function Pty:output()
  return proc.read_file(self.screen) or ""
end

--- Waits for the command to end; returns what the terminal showed and the
-- exit status (nil if it did not end within secs, default LIMIT + 10).
function Pty:wait(secs)
  local rc = proc.wait_file(self.rc_path, secs or LIMIT + 10)
  local screen = self:output()
  self:close()
  return screen, tonumber(rc)
end

function Pty:close()
  if self.closed then return end
  self.closed = true
  if self.input then self.input:close() end
  for _, suffix in ipairs { ".in", ".screen", ".rc", ".tmp" } do os.remove(self.base .. suffix) end
end

--- Runs `cmd` on a new pty to the end; returns what the terminal showed
-- and the exit status.
function M.run(cmd)
  return M.spawn(cmd):wait()
end

return M
