-- Runs bin/ecdn-purge for specs, with the interpreter running the spec
-- (support.proc.lua) and credentials for a simulator, or none.
--
--   local cli = require "support.cli"
--   local out, err, rc = cli.run(s, { "--json", "https://www.example.com/a" }, { stdin = "..." })
--   local cmd = cli.command(s, args)   -- the shell command, for pty / background runs
local proc = require "support.proc"

local M = {}

--- n URLs: https://www.example.com/<prefix or "u"><i>.
function M.urls(n, prefix)
  local t = {}
  for i = 1, n do t[i] = "https://www.example.com/" .. (prefix or "u") .. i end
  return t
end

--- The arguments ... followed by the URLs of list.
function M.args(list, ...)
  local t = { ... }
  for _, u in ipairs(list) do t[#t + 1] = u end
  return t
end

-- The shell command that runs the CLI against simulator `s` (nil: no
-- credentials and no --endpoint). opts: id, key (credentials instead of the
-- simulator's), no_endpoint (leave --endpoint out), env ({NAME = value}
-- for the CLI's environment).
function M.command(s, args, opts)
  opts = opts or {}
  local env = "env -u TENCENTCLOUD_SESSION_TOKEN"
  for name, value in pairs(opts.env or {}) do env = env .. " " .. name .. "=" .. proc.quote(value) end
  if s then
    env = env .. " TENCENTCLOUD_SECRET_ID=" .. proc.quote(opts.id or s.secret_id)
      .. " TENCENTCLOUD_SECRET_KEY=" .. proc.quote(opts.key or s.secret_key)
  else
    env = env .. " -u TENCENTCLOUD_SECRET_ID -u TENCENTCLOUD_SECRET_KEY"
  end
  local cmd = env .. " " .. proc.lua .. " bin/ecdn-purge"
  if s and not opts.no_endpoint then cmd = cmd .. " --endpoint " .. s.url end
  for _, a in ipairs(args) do cmd = cmd .. " " .. proc.quote(a) end
  return cmd
end

-- Runs it to the end; returns stdout, stderr, exit code. opts as for
-- command, plus stdin (a string; default /dev/null).
function M.run(s, args, opts)
  opts = opts or {}
  local err_file = proc.tmpname()
  local cmd = M.command(s, args, opts)
  if opts.stdin then
    local in_file = proc.tmpname()
    local f = assert(io.open(in_file, "wb"))
    f:write(opts.stdin)
    f:close()
    cmd = cmd .. " <" .. in_file
    local out, rc = proc.run(cmd .. " 2>" .. err_file .. "; rc=$?; rm -f " .. in_file .. "; (exit $rc)")
    local err = proc.read_file(err_file) or ""
    os.remove(err_file)
    return out, err, rc
  end
  local out, rc = proc.run(cmd .. " </dev/null 2>" .. err_file)
  local err = proc.read_file(err_file) or ""
  os.remove(err_file)
  return out, err, rc
end

-- A temporary file holding `text`; returns its path.
function M.file(text)
  local path = proc.tmpname()
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

-- The decoded JSON document in `out`; when it is not JSON, fails with the
-- CLI's stderr (a traceback, say) in the message.
function M.json(out, err)
  local doc, why = require("cjson.safe").decode(out)
  if doc == nil then error("ecdn-purge printed no JSON (" .. tostring(why) .. ")\nstdout: " .. tostring(out)
                           .. "\nstderr: " .. tostring(err), 2) end
  return doc
end

-- Lines of a string (without their "\n").
function M.lines(s)
  local t = {}
  for line in s:gmatch("([^\n]*)\n") do t[#t + 1] = line end
  return t
end

return M
