-- Minimal JSON encoder with ordered objects, so answers read like the real
-- service's ({"Response":{...,"RequestId":...}}) and log lines keep a fixed
-- key order. Strings pass through byte-exact except `"`, `\` and control bytes
-- (no "\/" escaping, unlike cjson). Requests are decoded with cjson.
local M = {}

local ESC = { ['"'] = '\\"', ["\\"] = "\\\\", ["\b"] = "\\b", ["\f"] = "\\f",
              ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }

local function esc(c)
  return ESC[c] or string.format("\\u%04x", c:byte())
end

local function str(s)
  if not s:find('[%c"\\]') then return '"' .. s .. '"' end
  return '"' .. s:gsub('[%c"\\]', esc) .. '"'
end
M.string = str

local ORDER = {}   -- weak key -> array of field names, in output order
setmetatable(ORDER, { __mode = "k" })
local ARRAY = {}
setmetatable(ARRAY, { __mode = "k" })

-- obj("a", 1, "b", 2): an object that encodes its fields in this order;
-- nil values are skipped.
function M.obj(...)
  local t, keys = {}, {}
  for i = 1, select("#", ...), 2 do
    local k, v = select(i, ...)
    if v ~= nil then
      t[k] = v
      keys[#keys + 1] = k
    end
  end
  ORDER[t] = keys
  return t
end

-- The field order of an object made by obj() (mutable: append to add a field).
function M.keys(t)
  return ORDER[t]
end

-- Marks t as a JSON array even when empty.
function M.array(t)
  ARRAY[t] = true
  return t
end

local encode
function encode(v, out)
  local ty = type(v)
  if ty == "string" then
    out[#out + 1] = str(v)
  elseif ty == "number" then
    if math.type(v) == "integer" then
      out[#out + 1] = string.format("%d", v)
    else
      out[#out + 1] = string.format("%.14g", v)
    end
  elseif ty == "boolean" then
    out[#out + 1] = v and "true" or "false"
  elseif ty == "table" then
    local keys = ORDER[v]
    if keys then
      out[#out + 1] = "{"
      for i, k in ipairs(keys) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = str(k)
        out[#out + 1] = ":"
        encode(v[k], out)
      end
      out[#out + 1] = "}"
    elseif ARRAY[v] or v[1] ~= nil or next(v) == nil then
      out[#out + 1] = "["
      for i = 1, #v do
        if i > 1 then out[#out + 1] = "," end
        encode(v[i], out)
      end
      out[#out + 1] = "]"
    else -- plain map: sorted keys, deterministic output
      local ks = {}
      for k in pairs(v) do ks[#ks + 1] = k end
      table.sort(ks, function(a, b) return tostring(a) < tostring(b) end)
      out[#out + 1] = "{"
      for i, k in ipairs(ks) do
        if i > 1 then out[#out + 1] = "," end
        out[#out + 1] = str(tostring(k))
        out[#out + 1] = ":"
        encode(v[k], out)
      end
      out[#out + 1] = "}"
    end
  else
    out[#out + 1] = "null"
  end
end

function M.encode(v)
  local out = {}
  encode(v, out)
  return table.concat(out)
end

return M
