--- The facts about the two services this library talks to, in one place:
-- API versions, hosts and the documented limits (../shared/docs/tencent-api.md §5).
local M = {
  ecdn = {
    version = "2019-10-12",
    host = "ecdn.tencentcloudapi.com",
    wildcard_code = "InvalidParameter.EcdnPurgeWildcardNotAllowed",
    paths_per_request = 20,   -- DescribePurgeQuota's PathPurge.Batch
  },
  cdn = {
    version = "2018-06-06",
    host = "cdn.tencentcloudapi.com",
    wildcard_code = "InvalidParameter.CdnPurgeWildcardNotAllowed",
    paths_per_request = 500,
  },
}

M.RATE_PER_SECOND = 20      -- requests per second per account, both services
M.URLS_PER_REQUEST = 1000   -- PurgeUrlsCache batch limit
M.URLS_PER_DAY = 10000      -- default daily URL purge quota
M.PATHS_PER_REQUEST = 500   -- PurgePathCache batch limit (CDN; ECDN: 20)
M.PUSH_URLS_PER_REQUEST = 500 -- PushUrlsCache (CDN only)

return M
