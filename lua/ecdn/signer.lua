--- Stage 2 of the pipeline, for transports other than ecdn.client's own:
-- signs a body with TC3-HMAC-SHA256 (the C signer) and returns a plain
-- request {method, url, headers, body} that any transport can send.
--   local req = signer.tc3(target, credentials, "PurgeUrlsCache", body, os.time())
-- target = {url, host, service, version, region, language} (see ecdn.endpoint
-- and ecdn.services); credentials = {secret_id, secret_key, token}.
local core = require "ecdn.core"

local M = {}

function M.tc3(target, cred, action, body, timestamp)
  local r = core.sign_tc3 {
    secret_id = cred.secret_id, secret_key = cred.secret_key, token = cred.token,
    service = target.service, host = target.host, version = target.version,
    region = target.region, language = target.language,
    action = action, payload = body, timestamp = timestamp,
    debug = false, -- no canonical request and string to sign: nobody reads them here
  }
  local headers = r.headers
  headers["X-TC-RequestClient"] = core.USER_AGENT
  return { method = "POST", url = target.url, headers = headers, body = body }
end

return M
