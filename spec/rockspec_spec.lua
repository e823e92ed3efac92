-- The rockspec must install everything the tree has: every C source, every Lua module, every command.
local function load_rockspec()
  local env = {}
  local chunk
  if setfenv then
    chunk = assert(loadfile("lua-ecdn-scm-1.rockspec"))
    setfenv(chunk, env)
  else
    chunk = assert(loadfile("lua-ecdn-scm-1.rockspec", "t", env))
  end
  chunk()
  return env
end

local function list(cmd)
  local out, p = {}, assert(io.popen(cmd))
  for line in p:lines() do out[#out + 1] = line end
  p:close()
  table.sort(out)
  return out
end

describe("lua-ecdn-scm-1.rockspec", function()
  local spec = load_rockspec()

  it("builds every C source into ecdn.core", function()
    local sources = {}
    for _, s in ipairs(spec.build.modules["ecdn.core"].sources) do sources[#sources + 1] = s end
    table.sort(sources)
    assert.are.same(list("ls src/*.c"), sources)
  end)

  it("installs every Lua module under its name", function()
    local want, got = {}, {}
    for _, path in ipairs(list("cd lua && find . -name '*.lua' | sed 's|^./||'")) do
      local name = path:gsub("%.lua$", ""):gsub("/init$", ""):gsub("/", ".")
      want[#want + 1] = name .. " = lua/" .. path
    end
    for name, file in pairs(spec.build.modules) do
      if type(file) == "string" then got[#got + 1] = name .. " = " .. file end
    end
    table.sort(want)
    table.sort(got)
    assert.are.same(want, got)
  end)

  it("installs every command in bin/", function()
    local got = {}
    for name, file in pairs(spec.build.install.bin) do got[#got + 1] = "bin/" .. name .. "=" .. file end
    table.sort(got)
    local want = {}
    for _, f in ipairs(list("ls bin")) do want[#want + 1] = "bin/" .. f .. "=bin/" .. f end
    assert.are.same(want, got)
  end)
end)
