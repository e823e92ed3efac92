-- Garbage with finalizers, for specs in which the collector runs Lua code
-- (a finalizer) in the middle of one of our C calls.
local M = {}

local newproxy = rawget(_G, "newproxy") -- LuaJIT runs __gc only for userdata

--- garbage(fn): one unreachable object whose finalizer calls fn.
function M.garbage(fn)
  if newproxy then
    getmetatable(newproxy(true)).__gc = fn
  else
    setmetatable({}, { __gc = fn })
  end
end

--- restless() -> restore: a collector that never rests (pause 0, step
-- multiplier 1000), so finalizers also run inside calls; restore() puts the
-- old settings back.
function M.restless()
  local pause = collectgarbage("setpause", 0)
  local stepmul = collectgarbage("setstepmul", 1000)
  return function()
    collectgarbage("setpause", pause)
    collectgarbage("setstepmul", stepmul)
  end
end

return M
