-- The purge log: one JSON object per accepted purge, appended and flushed
-- before the answer is sent, so a test can count exactly what arrived.
local json = require "ecdn.sim.json"

local M = {}
M.__index = M

function M.open(path)
  local f, err = io.open(path, "ab")
  if not f then return nil, err end
  f:setvbuf("no")
  return setmetatable({ file = f, path = path }, M)
end

-- Writes the whole line in one write(2) (unbuffered file), so a reader never
-- sees half a line once the answer has been sent.
function M:write(entry)
  assert(self.file:write(json.encode(entry) .. "\n"))
end

function M:close()
  if self.file then
    self.file:close()
    self.file = nil
  end
end

return M
