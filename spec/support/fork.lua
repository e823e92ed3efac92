-- fork() for specs, on every VM: lua-posix when the VM has it (Debian has
-- none for Lua 5.4), else a tiny test-only C shim (spec/support/fork_shim.c)
-- compiled on first use with cc and pkg-config.
--   local fork = require "support.fork"
--   local pid = fork.fork()          -- 0 in the child
--   fork._exit(0)                    -- no atexit handlers, no Lua cleanup
--   local _, how, code = fork.wait(pid)   -- how = "exited" | "killed"
--   fork.raw_fork()                  -- _Fork(): no pthread_atfork handlers run
local M = {}

local proc = require "support.proc"

local shim -- the C shim, built on first use
local function load_shim()
  if shim then return shim end
  local src = debug.getinfo(1, "S").source:match("^@(.*)fork%.lua$") .. "fork_shim.c"
  local pc = proc.lua -- pkg-config names the headers like the interpreters
  local so = proc.tmpname() .. "-fork_shim.so"
  local _, rc = proc.run("cc -shared -fPIC -O1 $(pkg-config --cflags " .. pc .. ") -o " .. proc.quote(so)
    .. " " .. proc.quote(src) .. " 2>&1")
  assert(rc == 0, "cannot build " .. src .. " (cc and the " .. pc .. " headers are needed)")
  local open = assert(package.loadlib(so, "luaopen_fork_shim"))
  os.remove(so) -- the mapping stays
  shim = open()
  return shim
end

-- fork.raw_fork() -> pid | nil, why: glibc's _Fork(), which runs no
-- pthread_atfork handlers (from the shim on every VM).
function M.raw_fork() return load_shim().raw_fork() end

local ok_u, unistd = pcall(require, "posix.unistd")
local ok_w, wait = pcall(require, "posix.sys.wait")
if ok_u and ok_w then
  M.fork = unistd.fork
  M._exit = unistd._exit
  function M.wait(pid)
    local p, how, code = wait.wait(pid)
    return p, how, code
  end
  M.via = "lua-posix"
  return M
end

load_shim()
M.fork, M._exit, M.wait = shim.fork, shim._exit, shim.wait
M.via = "shim"
return M
