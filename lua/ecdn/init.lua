--- lua-ecdn: purge cached URLs on Tencent Cloud ECDN/CDN.
--   local ecdn = require "ecdn"
--   local client, err = ecdn.client{ secret_id = ..., secret_key = ... }
--   local res, err = client:purge{ "https://www.example.com/a.jpg" }
-- Errors are `nil, err` tables (see ecdn.errors); bad arguments raise.
-- The pipeline's stages, each usable alone: ecdn.request (bodies),
-- ecdn.signer (signing), core.http (the libcurl transport), ecdn.decode.
local core = require "ecdn.core"
local client = require "ecdn.client"
local errors = require "ecdn.errors"

return {
  client = client.new,
  errors = errors,
  core = core,
  _VERSION = core._VERSION,
}
