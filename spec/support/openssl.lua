-- The openssl command line as an oracle independent of the C signer:
-- SHA-256 and HMAC computed by another program.
local M = {}

function M.hex(s)
  return (s:gsub(".", function(c) return ("%02x"):format(c:byte()) end))
end

-- `openssl dgst <args> -binary` over data (through a temporary file).
local function dgst(args, data)
  local tmp = os.tmpname()
  local f = assert(io.open(tmp, "wb"))
  f:write(data)
  f:close()
  local p = assert(io.popen("openssl dgst " .. args .. " -binary < " .. tmp))
  local out = p:read("*a")
  p:close()
  os.remove(tmp)
  return out
end

function M.sha256_hex(data) return M.hex(dgst("-sha256", data)) end

--- hmac("sha256" | "sha1", key, data) -> the raw MAC.
function M.hmac(alg, key, data)
  return dgst("-" .. alg .. " -mac HMAC -macopt hexkey:" .. M.hex(key), data)
end

return M
