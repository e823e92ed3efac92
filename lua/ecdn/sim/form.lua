-- Query strings and application/x-www-form-urlencoded bodies, as GET requests
-- (TC3 or V1) and V1 POSTs carry their parameters: decoding, and the SDKs'
-- flattened parameters (Urls.0=...&Urls.1=..., Headers.0.Name=...) back into
-- the JSON shape the actions read.
local M = {}

-- Percent-decoding; "+" is a space (form encoding).
local function unescape(s)
  if not s:find("[+%%]") then return s end
  return (s:gsub("+", " "):gsub("%%(%x%x)", function(x) return string.char(tonumber(x, 16)) end))
end
M.unescape = unescape

-- The decoded name/value pairs in order ({{name, value}, ...}), or nil,
-- message when a name comes twice (the service could not know which one was
-- meant, nor which one was signed).
function M.decode(text)
  local list, seen = {}, {}
  for pair in text:gmatch("[^&]+") do
    local k, v = pair:match("^([^=]*)=?(.*)$")
    k, v = unescape(k), unescape(v)
    if seen[k] then return nil, "The parameter `" .. k .. "` is given more than once." end
    seen[k] = true
    list[#list + 1] = { k, v }
  end
  return list
end

local function bad(name)
  return "The value type of parameter `" .. name .. "` is not valid."
end

local MAX_INDEX = 100000

-- Builds the action's parameters from decoded pairs, leaving out the names in
-- `common` (name -> true). "A.N" (N from 0) makes A a list, "A.N.F" a list of
-- objects; names in `booleans` take "true"/"false", names in `integers`
-- decimal digits. Returns params, or nil, message.
function M.params(list, common, booleans, integers)
  local params = {}
  for _, kv in ipairs(list) do
    local k, v = kv[1], kv[2]
    if not common[k] then
      local name, index = k:match("^([^.]+)%.(%d+)$")
      local field
      if not name then name, index, field = k:match("^([^.]+)%.(%d+)%.([^.]+)$") end
      if name then
        index = tonumber(index)
        local items = params[name]
        if items == nil then
          items = {}
          params[name] = items
        end
        if type(items) ~= "table" or index >= MAX_INDEX then return nil, bad(name) end
        local item = items[index + 1]
        if field then
          if item == nil then
            item = {}
            items[index + 1] = item
          end
          if type(item) ~= "table" then return nil, bad(name) end
          item[field] = v
        else
          if item ~= nil then return nil, bad(name) end
          items[index + 1] = v
        end
      else
        if booleans[k] then
          if v ~= "true" and v ~= "false" then return nil, bad(k) end
          v = v == "true"
        elseif integers[k] then
          v = v:match("^%d+$") and #v <= 15 and math.tointeger(tonumber(v)) or v
        end
        params[k] = v
      end
    end
  end
  for name, v in pairs(params) do -- lists must run from .0 without holes
    if type(v) == "table" then
      local n = 0
      for _ in pairs(v) do n = n + 1 end
      if n ~= #v then return nil, "The parameter `" .. name .. "` has holes in its indexes." end
    end
  end
  return params
end

return M
