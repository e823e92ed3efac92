-- Small table helpers the specs share.
local M = {}

--- merged(t1, t2, ...) -> a new table with the fields of each, later ones winning.
function M.merged(...)
  local out = {}
  for i = 1, select("#", ...) do
    for k, v in pairs((select(i, ...))) do out[k] = v end
  end
  return out
end

return M
