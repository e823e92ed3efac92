-- Reads busted TAP files and prints their failures, a line per file, and the
-- closing line "N passed, N failed" that CI reports. Exits 1 on any failure
-- or when a file holds no test at all (a crashed or empty run is a failure).
local passed, failed, bad_file = 0, 0, false
for _, name in ipairs(arg) do
  local f = io.open(name, "r")
  local p, n, planned = 0, 0, nil
  if f then
    local in_failure = false
    for line in f:lines() do
      if line:match("^ok %d+") then
        p = p + 1; in_failure = false
      elseif line:match("^not ok %d+") then
        n = n + 1; in_failure = true
        io.write(name, ": ", line, "\n")
      elseif line:match("^1%.%.%d+") then
        planned = tonumber(line:match("^1%.%.(%d+)"))
      elseif in_failure and line:match("^#") then
        io.write("    ", line, "\n")
      end
    end
    f:close()
  end
  if not f or p + n == 0 or planned ~= p + n then
    bad_file = true
    io.write(name, ": incomplete run (", p + n, " results, plan ", tostring(planned), ")\n")
  end
  io.write(name, ": ", p, " passed, ", n, " failed\n")
  passed, failed = passed + p, failed + n
end
io.write(passed, " passed, ", failed, " failed\n")
os.exit((failed == 0 and not bad_file) and 0 or 1)
