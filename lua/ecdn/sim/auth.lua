-- TC3-HMAC-SHA256 verification, as the service does it: parse Authorization,
-- find the SecretId, check the clock, recompute the signature over the body
-- bytes and whatever SignedHeaders the request declares, then check the token.
-- And signature V1 (HmacSHA1 / HmacSHA256 over METHOD + host + path + "?" +
-- the sorted, un-encoded parameters; verify_v1).
--
-- Independent of the product: the canonical request, the string to sign and
-- the key chain are built here in Lua from the documented rules; only the raw
-- SHA-1/SHA-256 and HMAC come from OpenSSL (luaossl); base64 is done here. Canonical header value =
-- the trimmed value as sent for content-type and host, the lower-cased trimmed
-- value for every other header (x-tc-action as the CN documentation shows).
-- The derived signing key is cached per (secret key, date, service) in a
-- bounded table.
-- No Lua 5.4-only syntax here: specs load this module in-process on LuaJIT too.
local digest = require "openssl.digest"
local hmac = require "openssl.hmac"

local M = {}

M.MAX_SKEW = 300 -- seconds, as the service
M.SERVICES = { ecdn = true, cdn = true }
local UNSIGNED = "UNSIGNED-PAYLOAD"

local function fail(code, message)
  return nil, code, message
end

local names_cache, cached_count = {}, 0 -- SignedHeaders text -> {names} | false (invalid)

local function signed_names(signed)
  local cached = names_cache[signed]
  if cached ~= nil then return cached end
  local names, set = {}, {}
  for name in (signed .. ";"):gmatch("([^;]*);") do
    if not name:match("^[%w%-]+$") then names = false break end
    name = name:lower()
    names[#names + 1] = name
    set[name] = true
  end
  if names and not (set["content-type"] and set.host) then names = false end
  if #signed <= 256 then
    cached_count = cached_count + 1
    if cached_count > 1000 then names_cache, cached_count = {}, 1 end -- bounded memory
    names_cache[signed] = names
  end
  return names
end

local STRICT = "^TC3%-HMAC%-SHA256 Credential=([^/,%s]+)/(%d%d%d%d%-%d%d%-%d%d)/([^/,%s]+)/tc3_request, "
               .. "SignedHeaders=([^,%s]+), Signature=(%x+)$"

-- Parses "TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request,
-- SignedHeaders=a;b, Signature=hex" (the service tolerates other spacing).
function M.parse(value)
  if not value or value == "" then return nil, "missing Authorization header" end
  local id, date, service, signed, signature = value:match(STRICT)
  if not id then -- the exact SDK layout failed; try the tolerant way
    local algo, rest = value:match("^(%S+)%s+(.+)$")
    if algo ~= "TC3-HMAC-SHA256" then return nil, "Authorization must start with TC3-HMAC-SHA256" end
    local f = {}
    for part in (rest .. ","):gmatch("([^,]*),") do
      local k, v = part:match("^%s*([%w]+)=(.-)%s*$")
      if not k then return nil, "malformed Authorization field" end
      f[k] = v
    end
    if not (f.Credential and f.SignedHeaders and f.Signature) then
      return nil, "Authorization needs Credential, SignedHeaders and Signature"
    end
    local tail
    id, date, service, tail = f.Credential:match("^([^/]+)/([^/]+)/([^/]+)/([^/]+)$")
    if not id or tail ~= "tc3_request" or not date:match("^%d%d%d%d%-%d%d%-%d%d$") then
      return nil, "Credential must be SecretId/YYYY-MM-DD/service/tc3_request"
    end
    signed, signature = f.SignedHeaders, f.Signature
    if not signature:match("^%x+$") then return nil, "malformed Signature" end
  end
  local names = signed_names(signed)
  if not names then return nil, "SignedHeaders must be a ;-list including content-type and host" end
  return { secret_id = id, date = date, service = service, signed = signed, names = names,
           signature = signature }
end

-- Host values a client may have signed: as received, and without ":port".
local function host_variants(host)
  local bare = host:match("^(.+):%d+$")
  if bare and not bare:find(":", 1, true) then return { host, bare } end
  return { host }
end

-- Lower-case hex of a 32-byte digest. One generated function of 32 locals and
-- one concatenation: 8 times faster than string.format("%02x" x 32), which
-- was the largest cost of a verification.
local hex32
do
  local digits, vars, parts = {}, {}, {}
  for i = 0, 255 do digits[i] = string.format("%02x", i) end
  for i = 1, 32 do vars[i], parts[i] = "b" .. i, "H[b" .. i .. "]" end
  hex32 = assert(load("local H, byte = ... return function(s) local " .. table.concat(vars, ", ")
                      .. " = byte(s, 1, 32) return " .. table.concat(parts, " .. ") .. " end",
                      "=hex32", "t"))(digits, string.byte)
end

local function sha256_hex(data)
  return hex32(digest.new("sha256"):final(data))
end

local function hmac256(key, data)
  return hmac.new(key, "sha256"):final(data)
end

local EMPTY_HASH = sha256_hex("")
local UNSIGNED_HASH = sha256_hex(UNSIGNED)

-- Derived signing keys: "key\0date\0service" -> key; at most KEY_CACHE_MAX
-- entries (the table is dropped and rebuilt when full: bounded memory).
local KEY_CACHE_MAX = 256
local key_cache, key_count = {}, 0

local function signing_key(secret_key, date, service)
  local id = secret_key .. "\0" .. date .. "\0" .. service
  local k = key_cache[id]
  if k then return k end
  k = hmac256(hmac256(hmac256("TC3" .. secret_key, date), service), "tc3_request")
  if key_count >= KEY_CACHE_MAX then key_cache, key_count = {}, 0 end
  key_count = key_count + 1
  key_cache[id] = k
  return k
end
M.KEY_CACHE_MAX = KEY_CACHE_MAX
function M.key_cache_size() return key_count end

-- Canonical request for the declared names (a.names, as sorted by the client),
-- host as given, payload hash phash.
local function canonical_request(a, host, h, phash, method, query)
  local names = a.names
  local lines = {}
  for i = 1, #names do
    local name = names[i]
    local v
    if name == "host" then v = host
    elseif name == "content-type" then v = h["content-type"] or ""
    else v = (h[name] or ""):lower() end
    lines[i] = name .. ":" .. v .. "\n"
  end
  return method .. "\n/\n" .. query .. "\n" .. table.concat(lines) .. "\n" .. a.signed .. "\n" .. phash
end

local function signature(a, key, service, host, h, ts, phash, method, query)
  local creq = canonical_request(a, host, h, phash, method, query)
  local date = os.date("!%Y-%m-%d", ts)
  local sts = "TC3-HMAC-SHA256\n" .. ts .. "\n" .. date .. "/" .. service .. "/tc3_request\n" .. sha256_hex(creq)
  return hex32(hmac256(signing_key(key, date, service), sts))
end

local function payload_hash(h, body)
  if h["x-tc-content-sha256"] == UNSIGNED then return UNSIGNED_HASH end
  if body == "" then return EMPTY_HASH end
  return sha256_hex(body)
end

local function signature_matches(a, key, service, h, ts, body, method, query)
  local phash = payload_hash(h, body)
  local want = a.signature
  for _, host in ipairs(host_variants(h.host or "")) do
    if signature(a, key, service, host, h, ts, phash, method, query) == want then return true end
  end
  return false
end

-- Exposed for specs: the canonical request and string to sign this module
-- builds (a = M.parse(authorization)).
function M.canonical(a, service, host, h, ts, body, method, query)
  local creq = canonical_request(a, host, h, payload_hash(h, body), method or "POST", query or "")
  local date = os.date("!%Y-%m-%d", ts)
  return creq, "TC3-HMAC-SHA256\n" .. ts .. "\n" .. date .. "/" .. service .. "/tc3_request\n" .. sha256_hex(creq)
end

-- Verifies request headers h (lower-case names), body, method ("POST" by
-- default) and raw query string (canonical query, "" by default) against
-- cfg.secrets (id -> key) and cfg.tokens (id -> token) at time now. Returns
-- the identity {secret_id, service} or nil, error code, message.
function M.verify(cfg, h, body, now, method, query)
  local a, why = M.parse(h.authorization)
  if not a then return fail("AuthFailure.InvalidAuthorization", why) end
  -- The Host (when it names a product) routes the call; otherwise the scope does.
  local routed = (h.host or ""):match("^(%a+)%.")
  local service = (routed and M.SERVICES[routed]) and routed or a.service
  if not M.SERVICES[service] then
    return fail("AuthFailure.InvalidAuthorization",
                "Credential scope names service `" .. a.service:gsub("[^%w%-_.]", "?"):sub(1, 64)
                .. "`; this endpoint serves ecdn and cdn.")
  end
  local key = cfg.secrets[a.secret_id]
  if not key then
    return fail("AuthFailure.SecretIdNotFound",
                "The SecretId is not found, please ensure that your SecretId is correct.")
  end
  local ts = h["x-tc-timestamp"]
  if not ts then return fail("MissingParameter", "The request is missing a required parameter `Timestamp`.") end
  ts = ts:match("^%d+$") and #ts <= 11 and tonumber(ts) -- an integer (also on Lua 5.1)
  if not ts then return fail("InvalidParameterValue", "The value of parameter `Timestamp` is not valid.") end
  if math.abs(now - ts) > M.MAX_SKEW then
    return fail("AuthFailure.SignatureExpire", string.format(
      "Signature expired. Timestamp is %d, server time is %d; the difference must be at most %d seconds.",
      ts, math.floor(now), M.MAX_SKEW))
  end
  if a.service ~= service or not signature_matches(a, key, service, h, ts, body, method or "POST", query or "") then
    return fail("AuthFailure.SignatureFailure",
                "The provided credentials could not be validated. Please check your signature is correct.")
  end
  local want, got = cfg.tokens[a.secret_id], h["x-tc-token"]
  if got == "" then got = nil end
  if want ~= got then
    return fail("AuthFailure.TokenFailure", want and "The token is missing or invalid."
                                              or "A token was sent with permanent credentials.")
  end
  return { secret_id = a.secret_id, service = service }
end

---------------------------------------------------------------------------
-- Signature V1

local B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
local B64_DIGITS = {}
for i = 1, 64 do B64_DIGITS[i - 1] = B64:sub(i, i) end

-- Standard base64 with "=" padding (arithmetic, no bit operators: this
-- module also loads on LuaJIT, where specs use it in-process).
function M.base64(data)
  local out, floor = {}, math.floor
  for i = 1, #data, 3 do
    local a, b, c = data:byte(i, i + 2)
    local v = a * 65536 + (b or 0) * 256 + (c or 0)
    out[#out + 1] = B64_DIGITS[floor(v / 262144)] .. B64_DIGITS[floor(v / 4096) % 64]
                    .. (b and B64_DIGITS[floor(v / 64) % 64] or "=") .. (c and B64_DIGITS[v % 64] or "=")
  end
  return table.concat(out)
end

-- V1 string to sign: METHOD + host + path + "?" + name=value pairs (all
-- parameters but Signature) sorted by name in byte order, values as decoded,
-- not re-encoded. params: name -> value.
function M.v1_string_to_sign(method, host, path, params)
  local names = {}
  for name in pairs(params) do
    if name ~= "Signature" then names[#names + 1] = name end
  end
  table.sort(names)
  for i, name in ipairs(names) do names[i] = name .. "=" .. params[name] end
  return method .. host .. path .. "?" .. table.concat(names, "&")
end

-- "HmacSHA256" exactly selects SHA-256; anything else or nothing, SHA-1 (as documented).
function M.v1_digest(params)
  return params.SignatureMethod == "HmacSHA256" and "sha256" or "sha1"
end

function M.v1_signature(key, method, host, path, params)
  local sts = M.v1_string_to_sign(method, host, path, params)
  return M.base64(hmac.new(key, M.v1_digest(params)):final(sts))
end

local function missing(name)
  return fail("MissingParameter", "The request is missing a required parameter `" .. name .. "`.")
end

-- Verifies a V1 request: params (name -> decoded value, every parameter
-- received), h (headers, for the Host), method ("GET"|"POST"), path ("/"),
-- at time now. Returns {secret_id, service} (service nil when the Host names
-- no product: the caller routes by Version) or nil, code, message.
function M.verify_v1(cfg, h, params, method, path, now)
  local id = params.SecretId
  if not id or id == "" then return missing("SecretId") end
  local key = cfg.secrets[id]
  if not key then
    return fail("AuthFailure.SecretIdNotFound",
                "The SecretId is not found, please ensure that your SecretId is correct.")
  end
  local ts = params.Timestamp
  if not ts then return missing("Timestamp") end
  ts = ts:match("^%d+$") and #ts <= 11 and tonumber(ts)
  if not ts then return fail("InvalidParameterValue", "The value of parameter `Timestamp` is not valid.") end
  if math.abs(now - ts) > M.MAX_SKEW then
    return fail("AuthFailure.SignatureExpire", string.format(
      "Signature expired. Timestamp is %d, server time is %d; the difference must be at most %d seconds.",
      ts, math.floor(now), M.MAX_SKEW))
  end
  local nonce = params.Nonce
  if not nonce then return missing("Nonce") end
  if not (nonce:match("^%d+$") and #nonce <= 19 and nonce:match("[1-9]")) then
    return fail("InvalidParameterValue", "The value of parameter `Nonce` is not valid: a positive integer.")
  end
  local want = params.Signature
  if not want then return missing("Signature") end
  local ok = false
  for _, host in ipairs(host_variants(h.host or "")) do
    if M.v1_signature(key, method, host, path, params) == want then
      ok = true
      break
    end
  end
  if not ok then
    return fail("AuthFailure.SignatureFailure",
                "The provided credentials could not be validated. Please check your signature is correct.")
  end
  local token, got = cfg.tokens[id], params.Token
  if got == "" then got = nil end
  if token ~= got then
    return fail("AuthFailure.TokenFailure", token and "The token is missing or invalid."
                                               or "A token was sent with permanent credentials.")
  end
  local routed = (h.host or ""):match("^(%a+)%.")
  return { secret_id = id, service = routed and M.SERVICES[routed] and routed or nil }
end

return M
