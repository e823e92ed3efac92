--- Credentials: where they come from and whether they can be used. Values
-- are never quoted in an error: they are secrets.
local errors = require "ecdn.errors"

local M = {}

local MAX_LEN = 65536

local function credential_error(message)
  return nil, errors.new { code = "ClientError.CredentialError", message = message, kind = "client",
                           retryable = false, sent = false }
end
M.error = credential_error

local function bad(value, what)
  if value:find("^%s") or value:find("%s$") then return what .. " has leading or trailing whitespace" end
  if value:find("[\r\n%z]") then return what .. " contains CR, LF or NUL" end
  if #value > MAX_LEN then return what .. " is longer than 65536 bytes" end
  return nil
end

--- check(id, key, token) -> true | nil, err. An empty token means none.
function M.check(id, key, token, source)
  local suffix = source and (" (from " .. source .. ")") or ""
  if type(id) ~= "string" or id == "" then return credential_error("SecretId is missing or empty" .. suffix) end
  if type(key) ~= "string" or key == "" then return credential_error("SecretKey is missing or empty" .. suffix) end
  if token ~= nil and type(token) ~= "string" then return credential_error("the session token must be a string") end
  local why = bad(id, "SecretId") or bad(key, "SecretKey")
    or (token and token ~= "" and bad(token, "the session token"))
  if why then return credential_error(why .. suffix) end
  return true
end

--- resolve(opts, getenv) -> { secret_id, secret_key, token, source } | nil, err.
-- Explicit options first, else the environment (both parts from one place).
function M.resolve(opts, getenv)
  local id, key, token, source = opts.secret_id, opts.secret_key, opts.token, "options"
  if id == nil and key == nil then
    id, key = getenv("TENCENTCLOUD_SECRET_ID"), getenv("TENCENTCLOUD_SECRET_KEY")
    if token == nil then token = getenv("TENCENTCLOUD_SESSION_TOKEN") end
    source = "environment"
    if id == nil and key == nil then
      return credential_error("no credentials: pass secret_id and secret_key, or set "
        .. "TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY")
    end
  end
  local ok, err = M.check(id, key, token, source == "environment" and "the environment" or nil)
  if not ok then return nil, err end
  if token == "" then token = nil end
  return { secret_id = id, secret_key = key, token = token, source = source }
end

return M
