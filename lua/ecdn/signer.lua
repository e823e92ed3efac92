--- Stage 2 of the pipeline, for transports other than ecdn.client's own:
-- signs a body with TC3-HMAC-SHA256 (the C signer) and returns a plain
-- request {method, url, headers, body} that any transport can send.
--   local req = signer.tc3(target, credentials, "PurgeUrlsCache", body, os.time())
-- target = {url, host, service, version, region, language} (see ecdn.endpoint
-- and ecdn.services); credentials = {secret_id, secret_key, token}.
-- For many requests with one target and one set of credentials, prepare
-- once (the fields are read and checked once, the day's signing key kept):
--   local s = signer.prepare(target, credentials)
--   local req = s:request("PurgeUrlsCache", body, os.time())
--   s:close() -- wipes its copy of the key (the collector does it too)
-- New credentials need a new prepared signer.
local core = require "ecdn.core"

local M = {}

local function fields(target, cred)
  return {
    secret_id = cred.secret_id, secret_key = cred.secret_key, token = cred.token,
    service = target.service, host = target.host, version = target.version,
    region = target.region, language = target.language,
  }
end

local function plain_request(url, headers, body)
  headers["X-TC-RequestClient"] = core.USER_AGENT
  return { method = "POST", url = url, headers = headers, body = body }
end

function M.tc3(target, cred, action, body, timestamp)
  local t = fields(target, cred)
  t.action, t.payload, t.timestamp = action, body, timestamp
  t.debug = false -- no canonical request and string to sign: nobody reads them here
  return plain_request(target.url, core.sign_tc3(t).headers, body)
end

local Prepared = {}
Prepared.__index = Prepared

--- signer.prepare(target, cred) -> prepared signer. Bad fields raise, with
-- sign_tc3's messages.
function M.prepare(target, cred)
  return setmetatable({ tc3 = core.tc3_signer(fields(target, cred)), url = target.url }, Prepared)
end

--- prepared:request(action, body, timestamp) -> what signer.tc3 gives.
function Prepared:request(action, body, timestamp)
  return plain_request(self.url, self.tc3:sign(action, body, timestamp).headers, body)
end

--- prepared:close() -> true: wipes the key; later requests raise. Idempotent.
function Prepared:close()
  return self.tc3:close()
end

return M
