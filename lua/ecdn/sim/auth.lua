-- TC3-HMAC-SHA256 verification, as the service does it: parse Authorization,
-- find the SecretId, check the clock, recompute the signature over the body
-- bytes and whatever SignedHeaders the request declares, then check the token.
--
-- Fast path: SignedHeaders "content-type;host" (every official SDK) and
-- "content-type;host;x-tc-action" (the official demos) are recomputed by the C
-- signer ecdn.core.sign_tc3. Any other list (it must contain content-type and
-- host) is recomputed here: canonical header value = trimmed value as sent for
-- content-type and host, lower-cased trimmed value for every other header,
-- hashing with ecdn.sim.sha256 (the body hash still comes from C).
local core = require "ecdn.core"
local sha256 = require "ecdn.sim.sha256"

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

local function fast_signature(a, key, service, host, h, ts, payload)
  local ok, r = pcall(core.sign_tc3, {
    secret_id = a.secret_id, secret_key = key, service = service, host = host,
    action = h["x-tc-action"] or "-", version = h["x-tc-version"] or "-",
    timestamp = ts, payload = payload, content_type = h["content-type"] or "",
    sign_action = #a.names == 3,
  })
  return ok and r.signature or nil
end

local function payload_hash(payload)
  -- The C signer's canonical request ends with the payload's SHA-256 hex.
  local r = core.sign_tc3 { secret_id = "x", secret_key = "x", service = "x", host = "x",
                            action = "x", version = "x", timestamp = 0, payload = payload }
  return r.canonical_request:sub(-64)
end

local function general_signature(a, key, service, host, h, ts, phash, method, query)
  local lines = {}
  for i, name in ipairs(a.names) do
    local v
    if name == "host" then v = host
    elseif name == "content-type" then v = h["content-type"] or ""
    else v = (h[name] or ""):lower() end
    lines[i] = name .. ":" .. v .. "\n"
  end
  local creq = method .. "\n/\n" .. query .. "\n" .. table.concat(lines) .. "\n" .. a.signed .. "\n" .. phash
  local date = os.date("!%Y-%m-%d", ts)
  local sts = "TC3-HMAC-SHA256\n" .. ts .. "\n" .. date .. "/" .. service .. "/tc3_request\n"
      .. sha256.hex(sha256.digest(creq))
  local k = sha256.hmac(sha256.hmac(sha256.hmac("TC3" .. key, date), service), "tc3_request")
  return sha256.hex(sha256.hmac(k, sts))
end

local function signature_matches(a, key, service, h, ts, body, method, query)
  local payload = (h["x-tc-content-sha256"] == UNSIGNED) and UNSIGNED or body
  local fast = method == "POST" and query == ""
               and (a.signed == "content-type;host" or a.signed == "content-type;host;x-tc-action")
  local phash
  for _, host in ipairs(host_variants(h.host or "")) do
    local sig = fast and fast_signature(a, key, service, host, h, ts, payload)
    if not sig then
      phash = phash or payload_hash(payload)
      sig = general_signature(a, key, service, host, h, ts, phash, method, query)
    end
    if sig == a.signature then return true end
  end
  return false
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
  ts = ts:match("^%d+$") and #ts <= 11 and math.tointeger(tonumber(ts))
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

return M
