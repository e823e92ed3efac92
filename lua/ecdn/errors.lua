--- Error tables for lua-ecdn, and the catalogue of codes the client knows.
--
-- Every failure comes back as `nil, err` where `err` is a table:
--   code        API code exactly as the server sent it, or a ClientError.* code
--   message     human text (the server's, or ours)
--   request_id  the server's RequestId, when it sent one
--   retryable   boolean: may the same request succeed if sent again later?
--   kind        "api" | "network" | "http" | "client"
--   status      HTTP status, when a response arrived
--   detail      extra machine-readable detail (curl error name for network errors)
--   sent        true when the request went out whole at least once, so the
--               service may have acted on it (false: it certainly did not)
--   attempts    network errors: how many times the request was started
--   index       1-based position of the offending URL (local validation)
-- tostring(err) gives one line: "Code: message (request <id>)".
--
-- Retryable: rate limits (RequestLimitExceeded*), server faults (InternalError*,
-- ServiceUnavailable), network failures, HTTP 429/5xx and unparsable bodies.
-- Not retryable: authentication, parameters, quotas and anything unknown.
local M = {}

-- code = { meaning, retryable }
local codes = {
  -- Common API 3.0 codes.
  ["ActionOffline"] = { "the API has been taken offline", false },
  ["AuthFailure"] = { "authentication failed", false },
  ["AuthFailure.InvalidAuthorization"] = { "the Authorization header is malformed", false },
  ["AuthFailure.InvalidSecretId"] = { "the key is not a Cloud API key", false },
  ["AuthFailure.MFAFailure"] = { "MFA check failed", false },
  ["AuthFailure.SecretIdNotFound"] = { "SecretId unknown or disabled (check for stray whitespace)", false },
  ["AuthFailure.SignatureExpire"] = { "timestamp differs from server time by more than 5 minutes", false },
  ["AuthFailure.SignatureFailure"] = { "signature mismatch: wrong SecretKey or altered request", false },
  ["AuthFailure.TokenFailure"] = { "the temporary-credential token is invalid", false },
  ["AuthFailure.UnauthorizedOperation"] = { "the request is not authorized by CAM", false },
  ["DryRunOperation"] = { "dry run: the request would have succeeded", false },
  ["FailedOperation"] = { "the operation failed", false },
  ["InternalError"] = { "internal server error", true },
  ["InvalidAction"] = { "no such API action", false },
  ["InvalidParameter"] = { "a parameter is wrong", false },
  ["InvalidParameterValue"] = { "a parameter value is wrong", false },
  ["InvalidRequest"] = { "the multipart request body is malformed", false },
  ["IpInBlacklist"] = { "the caller's IP is blacklisted", false },
  ["IpNotInWhitelist"] = { "the caller's IP is not whitelisted", false },
  ["LimitExceeded"] = { "a quota was exceeded", false },
  ["MissingParameter"] = { "a required parameter is missing", false },
  ["NoSuchProduct"] = { "no such product", false },
  ["NoSuchVersion"] = { "no such API version", false },
  ["RequestLimitExceeded"] = { "request frequency limit hit; slow down", true },
  ["RequestLimitExceeded.IPLimitExceeded"] = { "per-IP request frequency limit hit", true },
  ["RequestLimitExceeded.UinLimitExceeded"] = { "per-account request frequency limit hit", true },
  ["RequestLimitExceeded.GlobalRegionUinLimitExceeded"] = { "global per-account frequency limit hit", true },
  ["RequestSizeLimitExceeded"] = { "the request is too large", false },
  ["ResourceInUse"] = { "the resource is in use", false },
  ["ResourceInsufficient"] = { "insufficient resources", false },
  ["ResourceNotFound"] = { "the resource does not exist", false },
  ["ResourceUnavailable"] = { "the resource is unavailable", false },
  ["ResponseSizeLimitExceeded"] = { "the response would be too large", false },
  ["ServiceUnavailable"] = { "the service is temporarily unavailable", true },
  ["UnauthorizedOperation"] = { "not authorized", false },
  ["UnknownParameter"] = { "an undefined parameter was sent", false },
  ["UnsupportedOperation"] = { "operation not supported", false },
  ["UnsupportedProtocol"] = { "only GET and POST are supported", false },
  ["UnsupportedRegion"] = { "the API is not available in this region", false },

  -- ECDN 2019-10-12 purge codes.
  ["FailedOperation.EcdnConfigError"] = { "ECDN domain configuration error", false },
  ["InternalError.EcdnConfigError"] = { "ECDN internal configuration error", true },
  ["InternalError.EcdnDbError"] = { "ECDN internal database error", true },
  ["InternalError.EcdnSystemError"] = { "ECDN internal system error", true },
  ["InvalidParameter.EcdnDomainInvalidStatus"] = { "the domain's status does not allow this", false },
  ["InvalidParameter.EcdnInterfaceError"] = { "ECDN internal interface error", false },
  ["InvalidParameter.EcdnParamError"] = { "a parameter is wrong", false },
  ["InvalidParameter.EcdnPurgeWildcardNotAllowed"] = { "wildcard domains cannot be purged", false },
  ["InvalidParameter.EcdnUrlExceedLength"] = { "a URL is too long", false },
  ["LimitExceeded.EcdnPurgeUrlExceedBatchLimit"] = { "too many URLs in one request", false },
  ["LimitExceeded.EcdnPurgeUrlExceedDayLimit"] = { "daily URL purge quota used up", false },
  ["LimitExceeded.EcdnPurgePathExceedBatchLimit"] = { "too many paths in one request", false },
  ["LimitExceeded.EcdnPurgePathExceedDayLimit"] = { "daily path purge quota used up", false },
  ["ResourceNotFound.EcdnDomainNotExists"] = { "the domain is not on this account", false },
  ["ResourceNotFound.EcdnUserNotExists"] = { "the account has no ECDN service", false },
  ["UnauthorizedOperation.EcdnCamUnauthorized"] = { "sub-account lacks the CAM policy", false },
  ["UnauthorizedOperation.EcdnDomainUnauthorized"] = { "no permission on this domain", false },
  ["UnauthorizedOperation.EcdnMigratedCdn"] = { "account migrated to CDN: use service \"cdn\"", false },
  ["UnauthorizedOperation.EcdnUserIsSuspended"] = { "the ECDN service is suspended", false },
  ["UnauthorizedOperation.OperationTooOften"] = { "operation frequency limit hit; retry later", true },

  -- CDN 2018-06-06 purge codes.
  ["InvalidParameter.CdnHostInvalidStatus"] = { "the domain's status does not allow this", false },
  ["InvalidParameter.CdnParamError"] = { "a parameter is wrong", false },
  ["InvalidParameter.CdnPurgeWildcardNotAllowed"] = { "wildcard domains cannot be purged", false },
  ["InvalidParameter.CdnUrlExceedLength"] = { "a URL is too long", false },
  ["LimitExceeded.CdnPurgeExceedBatchLimit"] = { "too many items in one request", false },
  ["LimitExceeded.CdnPurgeExceedDayLimit"] = { "daily purge quota used up", false },
  ["LimitExceeded.CdnPurgeUrlExceedBatchLimit"] = { "too many URLs in one request", false },
  ["LimitExceeded.CdnPurgeUrlExceedDayLimit"] = { "daily URL purge quota used up", false },
  ["LimitExceeded.CdnPurgePathExceedBatchLimit"] = { "too many paths in one request", false },
  ["LimitExceeded.CdnPurgePathExceedDayLimit"] = { "daily path purge quota used up", false },
  ["ResourceNotFound.CdnHostNotExists"] = { "the domain is not on this account", false },
  ["ResourceNotFound.CdnUserNotExists"] = { "the account has no CDN service", false },
  ["ResourceUnavailable.CdnHostIsNotOnline"] = { "the domain is not online", false },
  ["UnauthorizedOperation.CdnCamUnauthorized"] = { "sub-account lacks the CAM policy", false },
  ["UnauthorizedOperation.CdnHostUnauthorized"] = { "no permission on this domain", false },
  ["UnauthorizedOperation.CdnUserIsSuspended"] = { "the CDN service is suspended", false },
  ["UnauthorizedOperation.CdnUserAuthFail"] = { "the account's identity verification failed", false },
  ["UnauthorizedOperation.CdnUserAuthWait"] = { "the account's identity verification is pending", false },
  ["UnauthorizedOperation.OpNoAuth"] = { "no permission for this operation", false },
  ["InternalError.ProxyServer"] = { "CDN internal proxy error", true },
  ["InternalError.RouteError"] = { "CDN internal routing error", true },
  ["InternalError.UnknownError"] = { "CDN internal unknown error", true },

  -- Codes made by this client (SDK-style pseudo codes).
  ["ClientError.NetworkError"] = { "network failure: refused, DNS, timeout, TLS, dropped", true },
  ["ClientError.HttpStatusCodeError"] = { "the server answered with an HTTP status other than 200", false },
  ["ClientError.ParseJsonError"] = { "the body is not the API's JSON envelope", true },
  ["ClientError.CredentialError"] = { "no usable SecretId/SecretKey", false },
  ["ClientError.InvalidParameter"] = { "an argument failed local validation; nothing was sent", false },
  ["ClientError.ResponseTooLarge"] = { "the response's body or headers exceed the client's cap", false },
  ["ClientError.Interrupted"] = { "interrupted (SIGINT) while a request was in flight", false },
  ["ClientError.QuotaExceeded"] = { "purge_all with quota_check: the job is larger than today's quota", false },
  ["ClientError.Deadline"] = { "purge_all's deadline passed before the batch was sent", false },
  ["ClientError.PhaseError"] = { "resty.ecdn: no cosockets in this nginx phase (use purge_async)", false },
  ["ClientError.TimerError"] = { "resty.ecdn: purge_async could not start a timer", true },
  ["ClientError.Closed"] = { "resty.ecdn: the client was closed before the request was sent", false },
}
M.codes = codes

--- Meaning of a code (one line), or nil when unknown.
function M.meaning(code)
  local c = codes[code]
  return c and c[1] or nil
end

--- Whether an API code is worth retrying later; unknown codes are not,
-- except for the retryable families.
function M.retryable(code)
  local c = codes[code]
  if c then return c[2] end
  if type(code) ~= "string" then return false end
  return code:find("^RequestLimitExceeded") ~= nil or code:find("^InternalError") ~= nil
end

--- HTTP statuses worth retrying: rate limiting and server-side failures.
function M.retryable_status(status)
  return status == 408 or status == 429 or (status >= 500 and status <= 599)
end

local mt = {}
mt.__index = mt

-- One line, whatever the server put in the message.
local function one_line(s)
  return (tostring(s):gsub("[%c]+", " "))
end

function mt.__tostring(e)
  local s = one_line(e.code) .. ": " .. one_line(e.message or "")
  if e.request_id then s = s .. " (request " .. one_line(e.request_id) .. ")" end
  return s
end

--- Makes an error table. `t.code`, `t.message` and `t.kind` are required;
-- `retryable` defaults from the catalogue.
function M.new(t)
  if t.retryable == nil then t.retryable = M.retryable(t.code) end
  return setmetatable(t, mt)
end

--- outcome_unknown(err) -> true when the request may have been applied
-- though it failed: it went out and no answer came back (network), the
-- answer was cut or unreadable, or the service failed inside (5xx,
-- InternalError*), or purge_all gave its batch up unsettled (unknown =
-- true; unknown = false: its lookup settled it as not applied). Such a
-- request must be resolved before it is sent again.
function M.outcome_unknown(err)
  if err.unknown ~= nil then return err.unknown == true end
  if err.kind == "network" then return err.sent == true end
  if err.code == "ClientError.ResponseTooLarge" then return true end
  if err.kind == "http" then return err.code == "ClientError.ParseJsonError" or (err.status or 0) >= 500 end
  return type(err.code) == "string" and err.code:find("^InternalError") ~= nil
end

--- True for tables made by M.new.
function M.is_error(v)
  return type(v) == "table" and getmetatable(v) == mt
end

return M
