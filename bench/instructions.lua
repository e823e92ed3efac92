-- Instructions per one-URL purge, counted by callgrind: ecdn.client against
-- the bare libcurl loop (bench/curl_floor.c), each sending the same request
-- to the same server. Unlike the timings, these counts do not move with the
-- load on a shared machine. Each program runs twice under callgrind, with
-- N1 and N2 requests after the same warm-up; the difference over N2 - N1 is
-- the cost of one request (start-up and warm-up cancel out). User-space
-- instructions only: the kernel's share (the same system calls for both) is
-- not in them, and valgrind runs OpenSSL's SHA-256 without the CPU's SHA
-- extensions, so signing counts more here than it costs on the machine.
--   lua5.4 bench/instructions.lua URL REQUEST_FILE [--tsv]
-- (make bench runs it when valgrind is present; build/bench/curl_floor and
-- the modules for Lua 5.4 and LuaJIT must be built.)
local url, request_file, tsv = arg[1], arg[2], arg[3] == "--tsv"
if not (url and request_file) then
  io.stderr:write("usage: bench/instructions.lua URL REQUEST_FILE [--tsv]\n")
  os.exit(2)
end
local N1, N2 = 100, 600

local function q(s) return "'" .. tostring(s):gsub("'", "'\\''") .. "'" end

-- Instructions executed by `cmd` (a program and its arguments) under
-- callgrind, with the environment assignments `env`.
local function instructions(env, cmd)
  local p = assert(io.popen(env .. "valgrind --tool=callgrind --callgrind-out-file=/dev/null " .. cmd .. " 2>&1"))
  local out = p:read("a")
  local ok = p:close()
  local refs = out:match("Collected%s*:%s*(%d+)") or (out:match("I%s+refs:%s+([%d,]+)") or ""):gsub(",", "")
  if not ok or not tonumber(refs) then error("callgrind run failed: " .. cmd .. "\n" .. out, 0) end
  return tonumber(refs)
end

local function per_request(env, make_cmd)
  return (instructions(env, make_cmd(N2)) - instructions(env, make_cmd(N1))) / (N2 - N1)
end

local LUA_PATH = "LUA_PATH='lua/?.lua;lua/?/init.lua;;' "
local results = {
  { "curl", "", function(n)
      return "build/bench/curl_floor " .. q(url) .. " 0 " .. q(request_file) .. " --count " .. n
    end },
  { "purge54", LUA_PATH .. "LUA_CPATH='build/?.so;;' ", function(n)
      return "lua5.4 bench/purge.lua " .. q(url) .. " --count " .. n
    end },
  { "purgejit", LUA_PATH .. "LUA_CPATH='build/luajit/?.so;;' ", function(n)
      return "luajit bench/purge.lua " .. q(url) .. " --count " .. n
    end },
}
for _, r in ipairs(results) do
  local ok, v = pcall(per_request, r[2], r[3])
  if ok then
    print(tsv and ("instr_%s\t%.0f"):format(r[1], v) or ("%-10s %9.0f instructions per request"):format(r[1], v))
  else
    io.stderr:write(v, "\n")
  end
end
