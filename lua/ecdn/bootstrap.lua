--- Package paths for the commands in bin/, loaded with dofile before any
-- require: from a source tree (lua/ and build/ beside bin/), or from any
-- luarocks tree (--tree=...) even when `luarocks path` was not evaluated.
-- Returns a function of the script's path (arg[0]).
return function(script)
  local root = (script:match("^(.*)/[^/]*$") or ".") .. "/.."
  local f = io.open(root .. "/lua/ecdn/init.lua", "r")
  if f then
    f:close()
    package.path = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;" .. package.path
    -- build/ (5.4), build/luajit/, build/lua5.1/ ... as the Makefile lays them out.
    local v = _VERSION:match("%d+%.%d+")
    local build = jit and "/build/luajit" or (v == "5.4" and "/build" or "/build/lua" .. v)
    package.cpath = root .. build .. "/?.so;" .. package.cpath
    return
  end
  local tree, ver = script:match("^(.*)/lib/luarocks/rocks%-(%d[%d%.]*)/[^/]+/[^/]+/bin/[^/]+$")
  if tree then
    package.path = package.path .. ";" .. tree .. "/share/lua/" .. ver .. "/?.lua;"
      .. tree .. "/share/lua/" .. ver .. "/?/init.lua"
    package.cpath = package.cpath .. ";" .. tree .. "/lib/lua/" .. ver .. "/?.so"
  end
end
