--- The time formats the service speaks, computed without the local time zone:
-- its "YYYY-MM-DD HH:MM:SS" in Beijing time (UTC+8: StartTime, EndTime,
-- CreateTime) and the HTTP Date header (IMF-fixdate, for clock skew).
local M = {}

local BEIJING = 8 * 3600
local MONTHS = { Jan = 1, Feb = 2, Mar = 3, Apr = 4, May = 5, Jun = 6, Jul = 7, Aug = 8, Sep = 9, Oct = 10,
                 Nov = 11, Dec = 12 }

-- Days since 1970-01-01 of a civil date (Howard Hinnant's days_from_civil).
local floor = math.floor

local function days_from_civil(y, m, d)
  if m <= 2 then y = y - 1 end
  local era = floor((y >= 0 and y or y - 399) / 400)
  local yoe = y - era * 400
  local mp = (m + 9) % 12
  local doy = floor((153 * mp + 2) / 5) + d - 1
  local doe = yoe * 365 + floor(yoe / 4) - floor(yoe / 100) + doy
  return era * 146097 + doe - 719468
end

local function unix(y, mo, d, h, mi, s)
  return days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s
end

--- now(clock, fallback) -> clock() when it gives unix seconds (nil when it
-- gives anything else), or fallback() when there is no clock (a client's
-- `clock` option, for tests).
function M.now(clock, fallback)
  if not clock then return fallback() end
  local t = clock()
  if type(t) ~= "number" or t ~= t or t < 0 then return nil end
  return t
end

--- beijing(t) -> "YYYY-MM-DD HH:MM:SS" for unix seconds t.
function M.beijing(t)
  return os.date("!%Y-%m-%d %H:%M:%S", math.floor(t) + BEIJING)
end

--- from_beijing(s) -> unix seconds, or nil when s is not in that format.
function M.from_beijing(s)
  if type(s) ~= "string" then return nil end
  local y, mo, d, h, mi, sec = s:match("^(%d%d%d%d)%-(%d%d)%-(%d%d) (%d%d):(%d%d):(%d%d)$")
  if not y then return nil end
  return unix(tonumber(y), tonumber(mo), tonumber(d), tonumber(h), tonumber(mi), tonumber(sec)) - BEIJING
end

--- http_date(s) -> unix seconds of an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), or nil.
function M.http_date(s)
  if type(s) ~= "string" then return nil end
  local d, mon, y, h, mi, sec = s:match("^%a%a%a, (%d%d) (%a%a%a) (%d%d%d%d) (%d%d):(%d%d):(%d%d) GMT$")
  local mo = mon and MONTHS[mon]
  if not mo then return nil end
  return unix(tonumber(y), mo, tonumber(d), tonumber(h), tonumber(mi), tonumber(sec))
end

return M
