-- Test helper: a real nginx (Debian's, with libnginx-mod-http-lua) in a temp
-- prefix, like support.sim for the simulator. Works from both lua5.4 and
-- luajit busted runs: nginx always runs its own LuaJIT (luajit2) and loads
-- the tree's lua/ and build/luajit/ (make LUA=luajit).
--
--   local nginx = require "support.nginx"
--   local n = nginx.start{
--     workers = 1,                        -- worker_processes (default 1)
--     main = "env TENCENTCLOUD_SECRET_ID;",   -- main-context lines
--     http = "lua_shared_dict ecdn_limit 1m;", -- http-context lines
--     server = "location /t { content_by_lua_block { ngx.say('hi') } }",
--     env = { TENCENTCLOUD_SECRET_ID = "..." },  -- nginx's environment
--     reuseport = true,                   -- listen ... reuseport (spreads connections over workers)
--   }
--   finally(function() n:stop() end)
--   local status, body, headers = n:get("/t")
--   assert.same({}, n:problems())        -- [error]/[alert]/[crit]/[emerg] lines since the last call
--
-- opts.vars = { sim = 12345 } replaces ${sim} in main, http, server and init.
-- opts.helpers = true adds, for the Lua inside nginx, a module `t` (see
-- HELPERS below: t.say(res, err), t.put(key, res, err), t.encode) with a
-- lua_shared_dict `results` and a location /result?key=K that answers what
-- t.put stored (n:result(K) waits for it); opts.init is Lua appended to the
-- init_by_lua_block that defines `t`.
--
-- nginx runs in the foreground (daemon off) as a child of a small shell
-- whose stdin is a pipe held by this process: if the test run dies, the
-- shell sees end of file and stops nginx. n:stop() stops it by its pid
-- (SIGTERM, SIGKILL after 5 s) and removes the prefix.
local socket = require "socket"
local cjson = require "cjson.safe"
local proc = require "support.proc"

local M = {}

local quote = proc.quote

-- The tree's root: $ECDN_ROOT, else from this file's path, else ".".
local function root()
  local env = os.getenv("ECDN_ROOT")
  if env and env ~= "" then return env end
  local src = debug.getinfo(1, "S").source
  local r = src:match("^@(.+)/spec/support/nginx%.lua$") or "."
  if r:sub(1, 1) ~= "/" then r = (os.getenv("PWD") or ".") .. "/" .. r end
  return r
end
M.root = root

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() return true end
  return false
end

-- Debian's module files: modules-available/*.conf name them relative to the
-- modules directory; ndk must come before the lua module.
local function modules()
  local dir = "/usr/lib/nginx/modules"
  local found = {}
  for _, conf in ipairs { "/usr/share/nginx/modules-available/mod-http-ndk.conf",
                          "/usr/share/nginx/modules-available/mod-http-lua.conf" } do
    local text = proc.read_file(conf) or ""
    for so in text:gmatch("load_module%s+([^;%s]+)%s*;") do
      local path = so:sub(1, 1) == "/" and so or (dir .. "/" .. so:gsub("^modules/", ""))
      found[#found + 1] = path
    end
  end
  if #found == 0 then
    found = { dir .. "/ndk_http_module.so", dir .. "/ngx_http_lua_module.so" }
  end
  table.sort(found, function(a, b) return a:find("ndk", 1, true) ~= nil and b:find("ndk", 1, true) == nil end)
  for _, path in ipairs(found) do assert(exists(path), "nginx module missing: " .. path) end
  return found
end

function M.available()
  return exists("/usr/sbin/nginx") and exists("/usr/lib/nginx/modules/ngx_http_lua_module.so")
end

local function free_port()
  return proc.closed_port()
end

local function alive(pid)
  local stat = proc.read_file("/proc/" .. pid .. "/stat")
  if not stat then return false end
  local state = stat:match("^%d+ %b() (%a)")
  return state ~= nil and state ~= "Z" and state ~= "X"
end

local Nginx = {}
Nginx.__index = Nginx

-- The Lua side of opts.helpers: results as JSON, the same fields for every
-- error table (ecdn.errors) and result.
local HELPERS = [=[
  lua_shared_dict results 4m;
  init_by_lua_block {
    local cjson = require "cjson.safe"
    local t = {}
    local ERR_FIELDS = { "code", "message", "kind", "detail", "sent", "retryable", "status", "attempts",
                         "tls", "request_id", "index", "problem" }
    function t.encode(res, err)
      local e
      if err ~= nil then
        e = {}
        if type(err) == "table" then
          for _, k in ipairs(ERR_FIELDS) do e[k] = err[k] end
          e.string = tostring(err)
        else
          e.string = tostring(err)
        end
      end
      return cjson.encode { res = res, err = e, pid = ngx.worker.pid() }
    end
    function t.say(res, err) ngx.say(t.encode(res, err)) end
    function t.put(key, res, err) ngx.shared.results:set(key, t.encode(res, err)) end
    package.loaded.t = t
    _G.t = t -- handlers see the globals of init_by_lua
    ${init}
  }
]=]

local RESULT_LOCATION = [[
    location = /result { content_by_lua_block { ngx.print(ngx.shared.results:get(ngx.var.arg_key) or "") } }
]]

local function substitute(s, vars)
  return (s:gsub("%${([%w_]+)}", function(k)
    local v = vars[k]
    if v == nil then error("nginx config: no value for ${" .. k .. "}", 0) end
    return tostring(v)
  end))
end

function M.config(n, opts)
  local r = root()
  local p = n.prefix
  local vars = {}
  for k, v in pairs(opts.vars or {}) do vars[k] = v end
  vars.init = vars.init or (opts.init and substitute(opts.init, vars)) or ""
  local http = substitute(opts.http or "", vars)
  if opts.helpers then http = substitute(HELPERS, vars) .. http end
  local server = substitute(opts.server or "", vars) .. (opts.helpers and RESULT_LOCATION or "")
  local lines = {}
  for _, so in ipairs(modules()) do lines[#lines + 1] = "load_module " .. so .. ";" end
  local user = proc.run("id -un"):gsub("%s+$", "")
  local group = proc.run("id -gn"):gsub("%s+$", "")
  local body = {
    "daemon off;",
    "master_process on;",
    "worker_processes " .. (opts.workers or 1) .. ";",
    -- as root, nginx would run its workers as nobody; keep them as us
    user == "root" and ("user " .. user .. " " .. group .. ";") or "",
    "pid " .. p .. "/logs/nginx.pid;",
    "error_log " .. p .. "/logs/error.log " .. (opts.log_level or "notice") .. ";",
    "worker_shutdown_timeout 2s;",
    substitute(opts.main or "", vars),
    "events { worker_connections 512; }",
    "http {",
    "  access_log off;",
    "  default_type text/plain;",
    "  client_body_temp_path " .. p .. "/tmp/client_body;",
    "  proxy_temp_path " .. p .. "/tmp/proxy;",
    "  fastcgi_temp_path " .. p .. "/tmp/fastcgi;",
    "  uwsgi_temp_path " .. p .. "/tmp/uwsgi;",
    "  scgi_temp_path " .. p .. "/tmp/scgi;",
    "  lua_package_path '" .. r .. "/lua/?.lua;" .. r .. "/lua/?/init.lua;" .. r .. "/spec/?.lua;"
      .. "/usr/share/lua/5.1/?.lua;/usr/share/lua/5.1/?/init.lua;;';",
    "  lua_package_cpath '" .. r .. "/build/luajit/?.so;;';",
    http,
    "  server {",
    "    listen 127.0.0.1:" .. n.port .. (opts.reuseport and " reuseport" or "") .. ";",
    server,
    "  }",
    "}",
  }
  for _, l in ipairs(body) do lines[#lines + 1] = l end
  return table.concat(lines, "\n") .. "\n"
end

--- nginx.start(opts) -> n (see the top of this file). Raises when nginx does
-- not come up, with its error log.
function M.start(opts)
  opts = opts or {}
  local prefix = proc.tmpname() .. "-nginx"
  local n = setmetatable({ prefix = prefix, port = opts.port or free_port(), log_offset = 0 }, Nginx)
  n.url = "http://127.0.0.1:" .. n.port
  n.log_path = prefix .. "/logs/error.log"
  assert(os.execute("mkdir -p " .. quote(prefix .. "/logs") .. " " .. quote(prefix .. "/tmp") .. " "
                    .. quote(prefix .. "/conf")))
  n.conf_path = prefix .. "/conf/nginx.conf"
  local f = assert(io.open(n.conf_path, "w"))
  f:write(M.config(n, opts))
  f:close()
  local env = {}
  for k, v in pairs(opts.env or {}) do env[#env + 1] = k .. "=" .. quote(v) end
  table.sort(env)
  local pid_file = prefix .. "/logs/child.pid"
  -- The shell starts nginx, writes its pid, and waits for its stdin to
  -- close; then it stops nginx if it is still there (a crashed test run).
  local cmd = table.concat({
    "env", table.concat(env, " "), "/usr/sbin/nginx -p", quote(prefix), "-c", quote(n.conf_path),
    "-e", quote(n.log_path), ">", quote(prefix .. "/logs/stdout"), "2>&1 </dev/null &",
    "echo $! >", quote(pid_file), ";",
    "cat >/dev/null;",
    "kill -TERM $(cat", quote(pid_file), ") 2>/dev/null; wait" }, " ")
  n.pipe = assert(io.popen(cmd, "w"))
  local deadline = socket.gettime() + (opts.timeout or 10)
  while socket.gettime() < deadline do
    n.pid = n.pid or tonumber(proc.read_file(pid_file) or "")
    if n.pid and not alive(n.pid) then break end
    local c = socket.tcp()
    c:settimeout(0.2)
    local ok = c:connect("127.0.0.1", n.port)
    c:close()
    if ok and n.pid then
      -- every worker up: as many "start worker process" lines as workers
      local log = n:log()
      local _, started = log:gsub("start worker process %d+", "")
      if started >= (opts.workers or 1) then return n end
    end
    socket.sleep(0.02)
  end
  local log = n:log() .. (proc.read_file(prefix .. "/logs/stdout") or "")
  n:stop()
  error("nginx did not start:\n" .. log, 2)
end

--- The whole error.log.
function Nginx:log()
  return proc.read_file(self.log_path) or ""
end

--- [error], [alert], [crit] and [emerg] lines written since the last call,
-- except those matching one of the Lua patterns in `allow`.
function Nginx:problems(allow)
  local text = self:log()
  local new = text:sub(self.log_offset + 1)
  self.log_offset = #text
  local out = {}
  for line in new:gmatch("[^\n]+") do
    if line:find("%[error%]") or line:find("%[alert%]") or line:find("%[crit%]") or line:find("%[emerg%]") then
      local allowed = false
      for _, pat in ipairs(allow or {}) do
        if line:find(pat) then allowed = true break end
      end
      if not allowed then out[#out + 1] = line end
    end
  end
  return out
end

--- Log lines since the start matching a Lua pattern.
function Nginx:grep(pattern)
  local out = {}
  for line in self:log():gmatch("[^\n]+") do
    if line:find(pattern) then out[#out + 1] = line end
  end
  return out
end

-- Reads one HTTP/1.0-style answer (the server closes after it).
local function read_answer(c)
  local line, err = c:receive("*l")
  if not line then return nil, err end
  local status = tonumber(line:match("^HTTP/%d%.%d (%d%d%d)"))
  if not status then return nil, "bad status line: " .. line end
  local headers = {}
  while true do
    local h
    h, err = c:receive("*l")
    if not h then return nil, err end
    if h == "" then break end
    local k, v = h:match("^([^:]+):%s*(.-)%s*$")
    if k then headers[k:lower()] = v end
  end
  local body, rerr, partial = c:receive("*a")
  body = body or partial
  if not body then return nil, rerr end
  return status, body, headers
end

--- Starts a request and returns the connection without reading the answer:
-- n:finish(conn) reads it. For requests that must be in flight together.
function Nginx:begin(path, opts)
  opts = opts or {}
  local c = socket.tcp()
  c:settimeout(opts.timeout or 30)
  assert(c:connect("127.0.0.1", self.port))
  local body = opts.body or ""
  local req = (opts.method or "GET") .. " " .. path .. " HTTP/1.0\r\nHost: 127.0.0.1\r\n"
  for k, v in pairs(opts.headers or {}) do req = req .. k .. ": " .. v .. "\r\n" end
  if #body > 0 or opts.method == "POST" then req = req .. "Content-Length: " .. #body .. "\r\n" end
  assert(c:send(req .. "\r\n" .. body))
  return c
end

function Nginx.finish(_, c)
  local status, body, headers = read_answer(c)
  c:close()
  return status, body, headers
end

--- One request (HTTP/1.0, the connection closes after it): status, body, headers.
function Nginx:get(path, opts)
  return self:finish(self:begin(path, opts))
end

--- A request whose body is JSON: decoded body (or nil), status, raw body.
function Nginx:json(path, opts)
  local status, body = self:get(path, opts)
  return cjson.decode(body or ""), status, body
end

--- Waits (up to `secs`, default 10) for t.put(key, ...) in nginx; returns
-- the decoded {res, err, pid} or nil.
function Nginx:result(key, secs)
  local deadline = socket.gettime() + (secs or 10)
  repeat
    local status, body = self:get("/result?key=" .. key)
    if status == 200 and body ~= "" then return cjson.decode(body) end
    socket.sleep(0.02)
  until socket.gettime() > deadline
  return nil
end

--- Stops nginx (SIGTERM to the master, SIGKILL after 5 s), waits for it,
-- and removes the prefix unless keep. Safe to call twice.
function Nginx:stop(keep)
  if self.stopped then return end
  self.stopped = true
  if self.pid and alive(self.pid) then
    os.execute("kill -TERM " .. math.floor(self.pid) .. " 2>/dev/null")
    local deadline = socket.gettime() + 5
    while alive(self.pid) and socket.gettime() < deadline do socket.sleep(0.01) end
    if alive(self.pid) then os.execute("kill -KILL " .. math.floor(self.pid) .. " 2>/dev/null") end
  end
  if self.pipe then self.pipe:close() end -- the shell ends; reaps nginx
  if not keep and os.getenv("ECDN_KEEP_NGINX") == nil then
    os.execute("rm -rf " .. quote(self.prefix))
  end
end

return M
