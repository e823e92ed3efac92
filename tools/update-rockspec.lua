-- Rewrites the module and command lists of lua-ecdn-scm-1.rockspec from the tree
-- (src/*.c, lua/**/*.lua, bin/*), so that adding a file is one command away from
-- being installed. spec/rockspec_spec.lua fails when the two drift apart.
local ROCKSPEC = "lua-ecdn-scm-1.rockspec"

local function list(cmd)
  local out, p = {}, assert(io.popen(cmd))
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  table.sort(out)
  return out
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

local sources = quoted(list("ls src/*.c"), "        ", 4)
local modules = {}
for _, path in ipairs(list("cd lua && find . -name '*.lua' | sed 's|^./||'")) do
  local name = path:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
  modules[#modules + 1] = ("    [%q] = %q,"):format(name, "lua/" .. path)
end
local bins = {}
for _, f in ipairs(list("ls bin")) do bins[#bins + 1] = ("      [%q] = %q,"):format(f, "bin/" .. f) end

local f = assert(io.open(ROCKSPEC))
local text = f:read("*a")
f:close()
local n1, n2, n3
text, n1 = text:gsub("(      sources = {\n).-(\n      },)", function(a, b) return a .. sources .. b end, 1)
text, n2 = text:gsub("(    %-%- Lua modules %(generated%)).-(\n  },\n  install)",
  function(a, b) return a .. "\n" .. table.concat(modules, "\n") .. b end, 1)
text, n3 = text:gsub("(    bin = {).-(},\n  },\n}\n?)$",
  function(a, b) return a .. "\n" .. table.concat(bins, "\n") .. "\n    " .. b end, 1)
assert(n1 == 1 and n2 == 1 and n3 == 1, ("rockspec layout not recognised (%d %d %d)"):format(n1, n2, n3))
f = assert(io.open(ROCKSPEC, "w"))
f:write(text)
f:close()
print(("%s: %d C sources, %d Lua modules, %d commands"):format(ROCKSPEC, #list("ls src/*.c"), #modules, #bins))
