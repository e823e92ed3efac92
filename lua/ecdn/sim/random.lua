-- Seeded pseudo-random streams (SplitMix64), independent of math.random, so a
-- given --seed replays the same faults and ids whatever else the process does.
local M = {}
M.__index = M

function M.new(seed)
  return setmetatable({ state = math.tointeger(seed) or 0 }, M)
end

-- Next 64-bit integer.
function M:next()
  self.state = self.state + 0x9e3779b97f4a7c15
  local z = self.state
  z = (z ~ (z >> 30)) * 0xbf58476d1ce4e5b9
  z = (z ~ (z >> 27)) * 0x94d049bb133111eb
  return z ~ (z >> 31)
end

-- Uniform float in [0, 1).
function M:float()
  return (self:next() >> 11) * (1.0 / 9007199254740992.0)
end

-- Uniform integer in [1, n].
function M:int(n)
  return math.ult(0, n) and (self:next() >> 1) % n + 1 or 1
end

local ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"

-- n (<= 12) lower-case letters/digits (the TaskId suffix alphabet), all
-- from one 63-bit draw.
function M:alnum(n)
  local z = self:next() >> 1
  local t = {}
  for i = 1, n do
    local k = z % 36 + 1
    z = z // 36
    t[i] = ALNUM:sub(k, k)
  end
  return table.concat(t)
end

-- Random (version 4) UUID, lower-case, as in RequestId.
function M:uuid()
  local a, b = self:next(), self:next()
  b = (b & 0x3fffffffffffffff) | (0x8000000000000000)          -- variant 10xx
  a = (a & 0xffffffffffff0fff) | 0x0000000000004000            -- version 4
  local hex = string.format("%016x%016x", a, b)
  return hex:sub(1, 8) .. "-" .. hex:sub(9, 12) .. "-" .. hex:sub(13, 16) .. "-"
      .. hex:sub(17, 20) .. "-" .. hex:sub(21, 32)
end

return M
