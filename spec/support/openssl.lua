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

--- tc3(q) -> {canonical_request, string_to_sign, signature, authorization,
-- date}: the whole TC3 algorithm written out again, hashing done by openssl
-- (q: the fields of core.sign_tc3; no cache anywhere).
function M.tc3(q)
  local ct = q.content_type or "application/json"
  local signed = q.sign_action and "content-type;host;x-tc-action" or "content-type;host"
  local canonical = "POST\n/\n\ncontent-type:" .. ct .. "\nhost:" .. q.host .. "\n"
    .. (q.sign_action and ("x-tc-action:" .. q.action:lower() .. "\n") or "")
    .. "\n" .. signed .. "\n" .. M.sha256_hex(q.payload)
  local date = os.date("!%Y-%m-%d", q.timestamp)
  local scope = date .. "/" .. q.service .. "/tc3_request"
  local sts = "TC3-HMAC-SHA256\n" .. q.timestamp .. "\n" .. scope .. "\n" .. M.sha256_hex(canonical)
  local k = M.hmac("sha256", "TC3" .. q.secret_key, date)
  k = M.hmac("sha256", k, q.service)
  k = M.hmac("sha256", k, "tc3_request")
  local sig = M.hex(M.hmac("sha256", k, sts))
  return {
    canonical_request = canonical, string_to_sign = sts, signature = sig,
    date = date,
    authorization = "TC3-HMAC-SHA256 Credential=" .. q.secret_id .. "/" .. scope
      .. ", SignedHeaders=" .. signed .. ", Signature=" .. sig,
  }
end

return M
