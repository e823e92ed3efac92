-- Rewrites the module and command lists of both rockspecs from the tree, so
-- that adding a file is one command away from being installed:
--   lua-ecdn-scm-1.rockspec      the product: src/*.c into ecdn.core, every
--                                lua/**/*.lua outside lua/ecdn/sim/, bin/* but ecdn-sim
--   lua-ecdn-sim-scm-1.rockspec  the simulator: lua/ecdn/sim/**/*.lua, bin/ecdn-sim
-- spec/rockspec_spec.lua fails when the rockspecs and the tree drift apart.
local M = {}

M.PRODUCT = "lua-ecdn-scm-1.rockspec"
M.SIM = "lua-ecdn-sim-scm-1.rockspec"
M.SIM_BINS = { ["ecdn-sim"] = true }

local function list(cmd)
  local out, p = {}, assert(io.popen(cmd))
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  table.sort(out)
  return out
end
M.list = list

function M.is_sim_module(path) -- path relative to lua/
  return path:match("^ecdn/sim/") ~= nil or path == "ecdn/sim.lua"
end

-- What each rockspec must hold: {sources, modules = {name -> file}, bins = {name -> file}}.
function M.wanted()
  local product = { sources = list("ls src/*.c"), modules = {}, bins = {} }
  local sim = { modules = {}, bins = {} }
  for _, path in ipairs(list("cd lua && find . -name '*.lua' | sed 's|^./||'")) do
    local name = path:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
    local into = M.is_sim_module(path) and sim or product
    into.modules[name] = "lua/" .. path
  end
  for _, f in ipairs(list("ls bin")) do
    local into = M.SIM_BINS[f] and sim or product
    into.bins[f] = "bin/" .. f
  end
  return product, sim
end

local function sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys)
  return keys
end

local function quoted(items, indent, per_line)
  local lines, cur = {}, {}
  for _, s in ipairs(items) do
    cur[#cur + 1] = ("%q"):format(s)
    if #cur == per_line then lines[#lines + 1] = indent .. table.concat(cur, ", ") .. ","; cur = {} end
  end
  if #cur > 0 then lines[#lines + 1] = indent .. table.concat(cur, ", ") .. "," end
  return table.concat(lines, "\n")
end

local function rewrite(file, want)
  local modules, bins = {}, {}
  for _, name in ipairs(sorted_keys(want.modules)) do
    modules[#modules + 1] = ("    [%q] = %q,"):format(name, want.modules[name])
  end
  for _, name in ipairs(sorted_keys(want.bins)) do
    bins[#bins + 1] = ("      [%q] = %q,"):format(name, want.bins[name])
  end
  local f = assert(io.open(file))
  local text = f:read("*a")
  f:close()
  local n1, n2, n3 = 1
  if want.sources then
    local sources = quoted(want.sources, "        ", 4)
    text, n1 = text:gsub("(      sources = {\n).-(\n      },)", function(a, b) return a .. sources .. b end, 1)
  end
  if want.sources then -- builtin: build.modules
    text, n2 = text:gsub("(    %-%- Lua modules %(generated%)).-(\n  },\n  install)",
      function(a, b) return a .. "\n" .. table.concat(modules, "\n") .. b end, 1)
  else -- type "none": build.install.lua
    for i, m in ipairs(modules) do modules[i] = "  " .. m end
    text, n2 = text:gsub("(      %-%- Lua modules %(generated%)).-(\n    },\n    bin = {)",
      function(a, b) return a .. "\n" .. table.concat(modules, "\n") .. b end, 1)
  end
  text, n3 = text:gsub("(    bin = {).-(},\n  },\n}\n?)$",
    function(a, b) return a .. "\n" .. table.concat(bins, "\n") .. "\n    " .. b end, 1)
  assert(n1 == 1 and n2 == 1 and n3 == 1, ("%s: layout not recognised (%d %d %d)"):format(file, n1, n2, n3))
  f = assert(io.open(file, "w"))
  f:write(text)
  f:close()
  print(("%s: %s%d Lua modules, %d commands"):format(file,
    want.sources and (#want.sources .. " C sources, ") or "", #modules, #bins))
end

function M.main()
  local product, sim = M.wanted()
  rewrite(M.PRODUCT, product)
  rewrite(M.SIM, sim)
end

-- `lua5.4 tools/update-rockspec.lua` rewrites; require()/dofile with an
-- argument ("lib") only loads these functions (spec/rockspec_spec.lua).
if ... == "lib" then return M end
M.main()
return M
