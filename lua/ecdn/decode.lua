--- Stage 4 of the pipeline: the one decoder, shared by every transport.
-- A raw response {status, headers, body, attempts} becomes the API's
-- Response table or an error table; a transport's network failure
-- {detail, message, sent, retryable, tls, attempts} becomes an error table.
-- Strings from the server are made safe before they reach a result or a
-- message: invalid UTF-8 and control characters are escaped (\xNN), and
-- long ones are cut.
local core = require "ecdn.core"
local errors = require "ecdn.errors"
local services = require "ecdn.services"
local cjson = require("cjson").new()

local M = {}

M.MAX_ID = core.MAX_ID -- TaskId, RequestId, Error.Code (128, src/answer.h; read-only: the C fast path uses it too)
M.MAX_MESSAGE = 1024  -- Error.Message and our excerpts of bodies

local byte, char, format = string.byte, string.char, string.format

local function escape(b)
  return format("\\x%02X", b)
end

-- Length of the valid UTF-8 sequence starting at s[i] (not a C1 control), or nil.
local function utf8_len(s, i, b)
  local b2, b3, b4 = byte(s, i + 1, i + 3)
  local function cont(x) return x and x >= 0x80 and x <= 0xBF end
  if b >= 0xC2 and b <= 0xDF then
    if not cont(b2) or (b == 0xC2 and b2 <= 0x9F) then return nil end -- U+0080..U+009F: C1 controls
    return 2
  elseif b >= 0xE0 and b <= 0xEF then
    if not (cont(b2) and cont(b3)) then return nil end
    if (b == 0xE0 and b2 < 0xA0) or (b == 0xED and b2 > 0x9F) then return nil end -- overlong, surrogates
    return 3
  elseif b >= 0xF0 and b <= 0xF4 then
    if not (cont(b2) and cont(b3) and cont(b4)) then return nil end
    if (b == 0xF0 and b2 < 0x90) or (b == 0xF4 and b2 > 0x8F) then return nil end
    return 4
  end
  return nil
end

--- clean(s, max) -> s with invalid UTF-8 and control characters escaped,
-- cut to at most `max` bytes (then ending in "..."). Non-strings give nil.
function M.clean(s, max)
  if type(s) ~= "string" then return nil end
  max = max or M.MAX_MESSAGE
  if #s <= max and not s:find("[^\32-\126]") then return s end -- the usual case
  local out, ends, n, i, len = {}, {}, 0, 1, #s
  while i <= len and n <= max do
    local b = byte(s, i)
    local piece, step
    if b >= 0x20 and b <= 0x7E then
      piece, step = char(b), 1
    elseif b >= 0x80 then
      step = utf8_len(s, i, b)
      if step then piece = s:sub(i, i + step - 1) else piece, step = escape(b), 1 end
    else
      piece, step = escape(b), 1
    end
    out[#out + 1] = piece
    n = n + #piece
    ends[#out] = n
    i = i + step
  end
  if i > len and n <= max then return table.concat(out) end
  local k = #out -- cut on a piece boundary, leaving room for "..."
  while k > 0 and ends[k] > max - 3 do k = k - 1 end
  return table.concat(out, "", 1, k) .. "..."
end

local clean = M.clean

-- A short, single-line excerpt of a body for messages.
local function excerpt(body)
  return clean(body, 120)
end

local function parse_error(status, message, request_id)
  return errors.new { code = "ClientError.ParseJsonError", message = message, kind = "http",
                      status = status, request_id = request_id, retryable = true, sent = true }
end

--- response(raw) -> the Response table (plus `attempts`) | nil, err
function M.response(raw)
  local status, body = raw.status, raw.body
  local ok, doc = pcall(cjson.decode, body)
  local resp = ok and type(doc) == "table" and doc.Response
  if type(resp) ~= "table" then resp = nil end
  local request_id = resp and clean(resp.RequestId, M.MAX_ID) or nil
  if status ~= 200 then
    return nil, errors.new { code = "ClientError.HttpStatusCodeError", kind = "http", status = status,
                             message = "HTTP " .. status .. ": " .. excerpt(body), request_id = request_id,
                             retryable = errors.retryable_status(status), sent = true }
  end
  if not resp or not request_id then
    return nil, parse_error(status, "not an API response: " .. excerpt(body), request_id)
  end
  resp.RequestId = request_id
  local e = resp.Error
  if e ~= nil then
    if type(e) ~= "table" or type(e.Code) ~= "string" or e.Code == "" then
      return nil, parse_error(status, "malformed Error in response: " .. excerpt(body), request_id)
    end
    return nil, errors.new { code = clean(e.Code, M.MAX_ID), message = clean(e.Message, M.MAX_MESSAGE) or "",
                             request_id = request_id, kind = "api", status = status, sent = true }
  end
  resp.attempts = raw.attempts
  return resp
end

local NETWORK_CODES = {
  body_too_large = "ClientError.ResponseTooLarge",
  headers_too_large = "ClientError.ResponseTooLarge",
  interrupted = "ClientError.Interrupted",
  client_closed = "ClientError.Closed", -- resty.ecdn: close() came before the request went out
}
local NETWORK_KINDS = { ["ClientError.ResponseTooLarge"] = "http", ["ClientError.Closed"] = "client" }

--- network(e) -> err, for a transport's failure table.
function M.network(e)
  local code = NETWORK_CODES[e.detail] or "ClientError.NetworkError"
  return errors.new { code = code, message = e.message or "network failure", detail = e.detail,
                      kind = NETWORK_KINDS[code] or "network",
                      status = e.status, retryable = e.retryable == true, sent = e.sent == true,
                      tls = e.tls or nil, attempts = e.attempts }
end

--- local_error(problem, service, what) -> err, for a request-building refusal
-- (what = "URL" or "path").
function M.local_error(p, service, what)
  what = what or "URL"
  local code = "ClientError.InvalidParameter"
  if p.problem == "wildcard" then code = services[service or "ecdn"].wildcard_code end
  local message
  if p.index == nil then
    message = what:lower() .. "s: " .. p.reason
  elseif p.problem == "not_string" or p.problem == "scheme" then
    message = what .. " #" .. p.index .. " " .. p.reason
  else
    message = what .. " #" .. p.index .. " " .. p.reason .. " (at byte " .. p.at .. ")"
  end
  return errors.new { code = code, message = message, kind = "client", index = p.index,
                      problem = p.problem, retryable = false, sent = false }
end

--- outcome(raw, failure) -> Response | nil, err: both halves of a transport's answer.
function M.outcome(raw, failure)
  if raw == nil then return nil, M.network(failure) end
  return M.response(raw)
end

local task_answer = core.task_answer

--- task(raw, failure) -> {task_id, request_id, attempts} | nil, err, for the
-- purge actions.
function M.task(raw, failure)
  local task_id, request_id
  if raw and raw.status == 200 and type(raw.body) == "string" then
    -- The common answer, recognised in C; it gives what the lines below would.
    task_id, request_id = task_answer(raw.body)
  end
  if not task_id then
    local resp, err = M.outcome(raw, failure)
    if not resp then return nil, err end
    task_id, request_id = clean(resp.TaskId, M.MAX_ID), resp.RequestId
    if not task_id or task_id == "" then
      return nil, parse_error(raw.status, "response has no TaskId", request_id)
    end
  end
  return { task_id = task_id, request_id = request_id, attempts = raw.attempts }
end

return M
