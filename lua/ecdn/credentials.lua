--- Credentials: where they come from, whether they can be used, and when to
-- fetch new ones. Values are never quoted in an error: they are secrets.
--
-- Providers are objects with a `name` and `:get(now)`:
--   creds = { secret_id, secret_key, token (or nil), expires_at (unix seconds, or nil), source }
--   or nil, err (a ClientError.CredentialError table from M.error).
--
--   M.static{secret_id, secret_key, token, source}
--   M.env{getenv, token}                  TENCENTCLOUD_SECRET_ID / _SECRET_KEY / _SESSION_TOKEN
--   M.profile{file, name, getenv, system_file}   the official SDKs' INI file
--   M.cvm_role{role, endpoint, timeout}   the CVM instance metadata service
--   M.chain{p1, p2, ...}                  the first provider that yields
--   M.default(opts)                       options, environment, profile, cvm_role (if the host answers)
--   M.refresher(provider, clock, opts)    :current() -> creds, changed | nil, err (rotation);
--                                         :settled(), :invalidate()
--
-- err.absent = true when a source simply holds nothing (options not given,
-- variables unset, no profile file at the default places, no metadata
-- service or no role bound). A chain goes on to the next provider only then:
-- a source that is there but broken (a bad value in the environment, a
-- malformed profile, a metadata answer without credentials) stops it, so a
-- typo never silently switches to another identity (the Go SDK's chain does
-- the same). err.provider names the provider that failed; a chain's error
-- lists every provider it tried (err.tried = { {name, message}, ... }).
local errors = require "ecdn.errors"

local M = {}

local MAX_LEN = 65536
local MAX_PROFILE = 1024 * 1024
local METADATA = "http://metadata.tencentyun.com"
local ROLES_PATH = "/latest/meta-data/cam/security-credentials/"
M.DEFAULT_METADATA_ENDPOINT = METADATA

local function credential_error(message)
  return nil, errors.new { code = "ClientError.CredentialError", message = message, kind = "client",
                           retryable = false, sent = false }
end
M.error = credential_error

-- The error table alone, with extra fields (absent, provider, retryable, ...).
local function err_table(message, extra)
  local _, e = credential_error(message)
  for k, v in pairs(extra or {}) do e[k] = v end
  return e
end

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

---------------------------------------------------------------------------
-- Helpers shared by the providers.

-- Programming errors raise at the line that called the public function.
local function argcheck(cond, fn, msg, level)
  if not cond then error("ecdn.credentials." .. fn .. ": " .. msg, (level or 1) + 2) end
end

local function opt_type(t, fn, field, want)
  local v = t[field]
  argcheck(v == nil or type(v) == want, fn, "field '" .. field .. "' must be a " .. want
    .. " (got " .. type(v) .. ")", 2)
  return v
end

local function table_arg(t, fn)
  argcheck(t == nil or type(t) == "table", fn, "argument must be a table (got " .. type(t) .. ")", 2)
  return t or {}
end

-- A creds table after the common checks; nil, err when they fail.
local function make_creds(name, id, key, token, expires_at, source)
  local ok, e = M.check(id, key, token, source)
  if not ok then
    e.provider = name
    return nil, e
  end
  if token == "" then token = nil end
  return { secret_id = id, secret_key = key, token = token, expires_at = expires_at, source = source }
end

local function in_nginx()
  local ngx = rawget(_G, "ngx")
  return type(ngx) == "table" and ngx.config ~= nil
end

local function provider(name, get)
  return { name = name, get = get }
end

---------------------------------------------------------------------------
-- static{secret_id, secret_key, token, source}: fixed credentials. Absent
-- when neither secret_id nor secret_key is given.

function M.static(t)
  t = table_arg(t, "static")
  local id, key, token = t.secret_id, t.secret_key, t.token
  local source = opt_type(t, "static", "source", "string") or "static"
  return provider(source, function()
    if id == nil and key == nil then
      return nil, err_table(source .. ": secret_id and secret_key not given", { absent = true, provider = source })
    end
    return make_creds(source, id, key, token, nil, source)
  end)
end

---------------------------------------------------------------------------
-- env{getenv, token}: TENCENTCLOUD_SECRET_ID, TENCENTCLOUD_SECRET_KEY and
-- TENCENTCLOUD_SESSION_TOKEN, read at each get. Absent when the first two are
-- unset; set but empty or malformed is an error. `token` (the client's option)
-- wins over TENCENTCLOUD_SESSION_TOKEN.

local NGINX_HINT = " (inside nginx, workers see only the variables nginx.conf passes: add"
  .. " `env TENCENTCLOUD_SECRET_ID;`, `env TENCENTCLOUD_SECRET_KEY;` and, for temporary keys,"
  .. " `env TENCENTCLOUD_SESSION_TOKEN;` to nginx.conf)"

function M.env(t)
  t = table_arg(t, "env")
  local getenv = opt_type(t, "env", "getenv", "function") or os.getenv
  local token_opt = opt_type(t, "env", "token", "string")
  return provider("environment", function()
    local id, key = getenv("TENCENTCLOUD_SECRET_ID"), getenv("TENCENTCLOUD_SECRET_KEY")
    local hint = in_nginx() and NGINX_HINT or ""
    if id == nil and key == nil then
      return nil, err_table("environment: TENCENTCLOUD_SECRET_ID and TENCENTCLOUD_SECRET_KEY are not set" .. hint,
                            { absent = true, provider = "environment" })
    end
    local token = token_opt
    if token == nil then token = getenv("TENCENTCLOUD_SESSION_TOKEN") end
    local c, e = make_creds("environment", id, key, token, nil, "environment")
    if not c and (id == nil or key == nil) then e.message = e.message .. hint end
    return c, e
  end)
end

---------------------------------------------------------------------------
-- profile{file, name, getenv, system_file}: the INI file the official SDKs
-- read. The file: `file`, else $TENCENTCLOUD_CREDENTIALS_FILE, else
-- ~/.tencentcloud/credentials, else /etc/tencentcloud/credentials (the first
-- that exists). Section [default] or [name]; keys secret_id, secret_key and
-- the optional token. Read at each get.

-- INI as Python's configparser reads it: `key = value` or `key: value`, keys
-- case-insensitive, values trimmed, `#`/`;` comment lines; a line indented
-- deeper than its key continues the key's value (so the value holds a LF:
-- refused here); a section header may be followed by other text ("[prod] ;
-- a comment"), which configparser ignores too.
-- CRLF line ends are accepted; any other CR is part of the value (refused).
-- Returns sections[name][key] = { value = v, line = n } | nil, problem.
-- Problems name lines and keys we look for, never a value.
local WANTED = { secret_id = true, secret_key = true, token = true }

local function parse_ini(text)
  local sections, current, last_key, key_indent = {}, nil, nil, 0
  local n = 0
  if text:sub(-1) ~= "\n" then text = text .. "\n" end
  for line in text:gmatch("([^\n]*)\n") do
    n = n + 1
    if n == 1 then line = line:gsub("^\239\187\191", "") end -- a UTF-8 BOM
    line = line:gsub("\r$", "")
    local trimmed = line:match("^%s*(.-)%s*$")
    if trimmed == "" or trimmed:find("^[#;]") then -- luacheck: ignore 542
      -- blank or comment
    elseif current and last_key and #line:match("^%s*") > key_indent then
      if WANTED[last_key] then
        return nil, "the value of " .. last_key .. " continues on line " .. n .. " (a value with LF)"
      end
    elseif trimmed:find("^%[") then
      local name = trimmed:match("^%[(.*)%]") -- (greedy: to the last ']', as configparser)
      name = name and name:match("^%s*(.-)%s*$")
      if not name then return nil, "line " .. n .. " opens a section without closing it" end
      sections[name] = sections[name] or {}
      current, last_key = sections[name], nil
    else
      local k, v = line:match("^%s*([^=:]-)%s*[=:]%s*(.-)%s*$")
      if not k or k == "" then return nil, "line " .. n .. " is neither a section, a key = value nor a comment" end
      if not current then return nil, "line " .. n .. " has a key outside any section" end
      k = k:lower()
      if WANTED[k] then
        if current[k] then return nil, k .. " is given twice in one section (line " .. n .. ")" end
        if v:find("\r") then return nil, "the value of " .. k .. " on line " .. n .. " contains CR" end
      end
      current[k] = { value = v, line = n }
      last_key, key_indent = k, #line:match("^%s*")
    end
  end
  return sections
end

-- Opens a file: f | nil, "missing" | nil, problem.
local function open(path)
  local f, msg, code = io.open(path, "rb")
  if f then return f end
  if code == 2 then return nil, "missing" end
  return nil, "cannot be opened (" .. (tostring(msg):match(".*: (.-)$") or tostring(msg)) .. ")"
end

function M.profile(t)
  t = table_arg(t, "profile")
  local file = opt_type(t, "profile", "file", "string")
  local name = opt_type(t, "profile", "name", "string") or "default"
  local getenv = opt_type(t, "profile", "getenv", "function") or os.getenv
  local system_file = opt_type(t, "profile", "system_file", "string") or "/etc/tencentcloud/credentials"
  argcheck(file ~= "", "profile", "field 'file' must not be empty")
  argcheck(name ~= "" and not name:find("[%]\r\n%z]"), "profile", "field 'name' must be a section name")

  return provider("profile", function()
    local function fail(msg, extra)
      extra = extra or {}
      extra.provider = "profile"
      return nil, err_table("profile" .. (msg:find("^:") and "" or " ") .. msg, extra)
    end
    -- Which file.
    local path, f, why
    local explicit = file or getenv("TENCENTCLOUD_CREDENTIALS_FILE")
    if explicit then
      if explicit == "" then return fail(": TENCENTCLOUD_CREDENTIALS_FILE is set but empty") end
      path = explicit
      f, why = open(path)
      if not f then
        return fail(path .. ": " .. (why == "missing" and "no such file" or why), { file = path })
      end
    else
      local tried = {}
      local home = getenv("HOME")
      local candidates = {}
      if home and home ~= "" then candidates[1] = home:gsub("/+$", "") .. "/.tencentcloud/credentials" end
      candidates[#candidates + 1] = system_file
      for _, p in ipairs(candidates) do
        f, why = open(p)
        tried[#tried + 1] = p
        if f or why ~= "missing" then path = p break end
      end
      if not path then
        return fail(": no credentials file (looked for " .. table.concat(tried, " and ") .. ")", { absent = true })
      end
      if not f then return fail(path .. ": " .. why, { file = path }) end
    end
    local where = path .. " [" .. name .. "]"
    -- Read it whole (capped).
    local text, rerr = f:read(MAX_PROFILE + 1)
    f:close()
    if text == nil and rerr then return fail(path .. ": cannot be read (" .. tostring(rerr) .. ")", { file = path }) end
    text = text or ""
    if #text > MAX_PROFILE then return fail(path .. ": larger than 1 MiB", { file = path }) end
    local sections, problem = parse_ini(text)
    if not sections then return fail(path .. ": " .. problem, { file = path }) end
    local sec = sections[name]
    if not sec then return fail(path .. ": no section [" .. name .. "]", { file = path }) end
    for _, k in ipairs { "secret_id", "secret_key" } do
      if not sec[k] then return fail(where .. ": no " .. k, { file = path }) end
      if sec[k].value == "" then return fail(where .. ": " .. k .. " is empty", { file = path }) end
    end
    local token = sec.token and sec.token.value or nil
    local c, e = make_creds("profile", sec.secret_id.value, sec.secret_key.value, token, nil, "profile " .. where)
    if e then e.file = path end
    return c, e
  end)
end

---------------------------------------------------------------------------
-- cvm_role{role, endpoint, timeout}: temporary credentials of the CAM role
-- bound to this CVM instance, from its metadata service (no proxy).
--   GET {endpoint}/latest/meta-data/cam/security-credentials/         role name (404: no role)
--   GET {endpoint}/latest/meta-data/cam/security-credentials/<role>   TmpSecretId, TmpSecretKey,
--                                                                     Token, ExpiredTime, Code
-- Absent when the service cannot be reached or no role is bound.

local ROLE_PATTERN = "^[%w%+=,%.@_%-]+$"

local function valid_role(r)
  return #r <= 128 and r:find(ROLE_PATTERN) ~= nil
end

local function valid_time(x)
  return type(x) == "number" and x == x and x > 0 and x < 2 ^ 53
end

--- valid_metadata_endpoint(s) -> true | false: what cvm_role accepts as its endpoint.
function M.valid_metadata_endpoint(s)
  return type(s) == "string" and s:find("^https?://[^/%s]+/*$") ~= nil
end

function M.cvm_role(t)
  t = table_arg(t, "cvm_role")
  local role = opt_type(t, "cvm_role", "role", "string")
  local endpoint = opt_type(t, "cvm_role", "endpoint", "string") or METADATA
  local timeout = opt_type(t, "cvm_role", "timeout", "number") or 2
  argcheck(role == nil or valid_role(role), "cvm_role", "field 'role' must be a CAM role name")
  argcheck(M.valid_metadata_endpoint(endpoint), "cvm_role",
           "field 'endpoint' must be http://host[:port] or https://host[:port]")
  argcheck(timeout > 0 and timeout <= 60, "cvm_role", "field 'timeout' must be in (0, 60] seconds")
  endpoint = endpoint:gsub("/+$", "")
  local http

  local function fail(msg, extra)
    extra = extra or {}
    extra.provider = "cvm_role"
    return nil, err_table("cvm_role: " .. msg, extra)
  end

  -- GET path -> res | nil, err (network failures are absent and retryable).
  local function get(path)
    if not http then
      http = require("ecdn.core").http { timeout = timeout, connect_timeout = math.min(timeout, 1), proxy = "" }
    end
    local res, failure = http:request { method = "GET", url = endpoint .. path, headers = {} }
    if not res then
      return fail("the metadata service " .. endpoint .. " did not answer ("
        .. tostring(failure and failure.detail or "network error") .. ")", { absent = true, retryable = true })
    end
    return res
  end

  return provider("cvm_role", function()
    local name = role
    if not name then
      local res, e = get(ROLES_PATH)
      if not res then return nil, e end
      if res.status == 404 then
        return fail("no CAM role is bound to this instance (" .. endpoint .. " answered 404)", { absent = true })
      end
      if res.status ~= 200 then
        return fail("the metadata service answered HTTP " .. res.status .. " for the role name",
                    { retryable = res.status >= 500, status = res.status })
      end
      name = res.body:match("^%s*([^\r\n]*)")
      name = name and name:match("^(.-)%s*$")
      if not name or name == "" or not valid_role(name) then
        return fail("the metadata service answered no valid role name")
      end
    end
    local res, e = get(ROLES_PATH .. name)
    if not res then return nil, e end
    if res.status == 404 then return fail("the metadata service knows no role " .. name, { status = 404 }) end
    if res.status ~= 200 then
      return fail("the metadata service answered HTTP " .. res.status .. " for role " .. name,
                  { retryable = res.status >= 500, status = res.status })
    end
    local doc = require("cjson.safe").decode(res.body)
    if type(doc) ~= "table" then return fail("the credentials of role " .. name .. " are not a JSON object") end
    if doc.Code ~= "Success" then
      return fail("the metadata service did not answer Code \"Success\" for role " .. name)
    end
    for _, k in ipairs { "TmpSecretId", "TmpSecretKey", "Token" } do
      if type(doc[k]) ~= "string" or doc[k] == "" then
        return fail("the credentials of role " .. name .. " have no " .. k)
      end
    end
    if not valid_time(doc.ExpiredTime) then
      return fail("the credentials of role " .. name .. " have no valid ExpiredTime")
    end
    return make_creds("cvm_role", doc.TmpSecretId, doc.TmpSecretKey, doc.Token, math.floor(doc.ExpiredTime),
                      "cvm_role " .. name)
  end)
end

---------------------------------------------------------------------------
-- chain{p1, p2, ...}: the first provider that yields. Absent failures move
-- on to the next; any other failure stops the chain. The error lists every
-- provider tried.

function M.chain(list)
  argcheck(type(list) == "table", "chain", "argument must be a list of providers")
  local n = #list
  argcheck(n > 0, "chain", "needs at least one provider")
  for i = 1, n do
    local p = list[i]
    argcheck(type(p) == "table" and type(p.get) == "function", "chain",
             "item " .. i .. " is not a provider (a table with :get)")
  end
  return provider("chain", function(_, now)
    local tried, messages = {}, {}
    local last
    for i = 1, n do
      local c, e = list[i]:get(now)
      if c then return c end
      if type(e) ~= "table" then e = err_table(tostring(e or "failed")) end
      local name = e.provider or list[i].name or ("provider " .. i)
      tried[#tried + 1] = { name = name, message = e.message }
      messages[#messages + 1] = e.message
      last = e
      if not e.absent then break end
    end
    -- The last error's fields (provider, absent, retryable, status, file, ...), all of them named.
    local extra = {}
    for k, v in pairs(last) do extra[k] = v end
    extra.message, extra.tried = nil, tried
    return nil, err_table("no credentials: " .. table.concat(messages, "; "), extra)
  end)
end

---------------------------------------------------------------------------
-- default(opts): the default chain.
--   1. the client's options secret_id/secret_key/token (source "options")
--   2. the environment (opts.token, when given, wins over TENCENTCLOUD_SESSION_TOKEN)
--   3. the profile file (opts.profile = {file, name}, or false to skip)
--   4. the CVM role (opts.cvm_role = {role, endpoint, timeout}, or false to skip),
--      only if the metadata host answers within 1 s; asked once per process
--      and endpoint, and remembered (a host that did not answer: for
--      PROBE_AGAIN seconds of the chain's clock, then it is asked again).
-- opts.getenv replaces os.getenv (for tests).

local probed = {} -- endpoint -> true | the time (the chain's clock) it did not answer
M.PROBE_AGAIN = 300 -- a long-lived process whose metadata service blipped at start finds its role later

local function metadata_answers(endpoint, now)
  local known = probed[endpoint]
  if known == true then return true end
  now = type(now) == "number" and now or os.time()
  if known == nil or now >= known + M.PROBE_AGAIN then
    local http = require("ecdn.core").http { timeout = 1, connect_timeout = 1, proxy = "" }
    local res = http:request { method = "GET", url = endpoint .. "/latest/meta-data/", headers = {} }
    http:close()
    probed[endpoint] = res ~= nil or now
  end
  return probed[endpoint] == true
end

function M.default(opts)
  opts = table_arg(opts, "default")
  local getenv = opt_type(opts, "default", "getenv", "function") or os.getenv
  local list = {
    M.static { secret_id = opts.secret_id, secret_key = opts.secret_key, token = opts.token, source = "options" },
    M.env { getenv = getenv, token = opts.token },
  }
  if opts.profile ~= false then
    local p = opts.profile
    argcheck(p == nil or type(p) == "table", "default", "field 'profile' must be a table or false")
    p = p or {}
    list[#list + 1] = M.profile { file = p.file, name = p.name, getenv = getenv, system_file = p.system_file }
  end
  if opts.cvm_role ~= false then
    local r = opts.cvm_role
    argcheck(r == nil or type(r) == "table", "default", "field 'cvm_role' must be a table or false")
    r = r or {}
    local cvm = M.cvm_role { role = r.role, endpoint = r.endpoint, timeout = r.timeout }
    local endpoint = (r.endpoint or METADATA):gsub("/+$", "")
    list[#list + 1] = provider("cvm_role", function(_, now)
      if not metadata_answers(endpoint, now) then
        return nil, err_table("cvm_role: the metadata service " .. endpoint .. " did not answer within 1 s"
          .. " (asked again " .. M.PROBE_AGAIN .. " s later)", { absent = true, provider = "cvm_role" })
      end
      return cvm:get(now)
    end)
  end
  local chain = M.chain(list)
  if opts.token == nil or opts.token == "" then return chain end -- ("": none, as everywhere)
  -- A token belongs to the secret_id/secret_key it was issued with (the
  -- options' or the environment's): never sent with another identity.
  return provider(chain.name, function(_, now)
    local c, e = chain:get(now)
    if c and c.source ~= "options" and c.source ~= "environment" then
      return nil, err_table("a session token was given, but no secret_id/secret_key with it: the credentials"
        .. " came from " .. tostring(c.source) .. ", which has its own token (or none)")
    end
    return c, e
  end)
end

---------------------------------------------------------------------------
-- refresher(provider, clock, opts): the credentials to sign with now.
--   local r = credentials.refresher(credentials.default(opts))
--   local creds, changed = r:current()   -- or nil, err
--   if changed then client:set_credentials(creds) end
-- Credentials with expires_at are fetched again before they expire: at most
-- 5 minutes early (REFRESH_MARGIN), and at most half their lifetime early for
-- short-lived ones. When that fails while the old ones are still valid, the
-- old ones are kept and the provider is asked again after opts.backoff
-- seconds (default 10), not on every call. With nothing valid to give, every
-- call asks the provider. changed = true when the credentials differ from
-- those the previous call returned (so on the first success). clock() gives
-- unix seconds (default os.time). r:invalidate() forces a refresh on the next
-- call (e.g. after AuthFailure.SecretIdNotFound). r:set_offset(s) corrects
-- clock() by the service's clock (expiry times are the service's).

M.REFRESH_MARGIN = 300

local Refresher = {}
Refresher.__index = Refresher

function M.refresher(p, clock, opts)
  argcheck(type(p) == "table" and type(p.get) == "function", "refresher", "argument 1 must be a provider")
  argcheck(clock == nil or type(clock) == "function", "refresher", "argument 2 must be a clock function")
  opts = table_arg(opts, "refresher")
  local backoff = opt_type(opts, "refresher", "backoff", "number") or 10
  argcheck(backoff >= 0, "refresher", "field 'backoff' must be >= 0")
  return setmetatable({ provider = p, clock = clock or os.time, backoff = backoff, offset = 0,
                        retry_at = -math.huge, refresh_at = math.huge }, Refresher)
end

--- r:set_offset(seconds): how far the service's clock is ahead of clock();
-- expiry times are the service's, so they are judged on clock() + offset.
function Refresher:set_offset(seconds)
  argcheck(type(seconds) == "number" and seconds == seconds and seconds > -2 ^ 53 and seconds < 2 ^ 53,
           "refresher:set_offset", "argument 1 must be a finite number of seconds")
  self.offset = seconds
end

local function same_secrets(a, b)
  return a.secret_id == b.secret_id and a.secret_key == b.secret_key and a.token == b.token
end

-- Installs fresh credentials c obtained at now; returns true | nil, err.
function Refresher:_install(c, now)
  if type(c) ~= "table" then return nil, err_table("the credentials provider returned no table") end
  local ok, e = M.check(c.secret_id, c.secret_key, c.token, c.source)
  if not ok then return nil, e end
  local exp = c.expires_at
  if exp ~= nil and not valid_time(exp) then
    return nil, err_table("credentials from " .. tostring(c.source) .. " have an invalid expires_at")
  end
  if exp and exp <= now then
    return nil, err_table("credentials from " .. tostring(c.source) .. " expired before use (at " .. exp
      .. ", now " .. now .. "): check the clock", { expired = true })
  end
  local old = self.creds
  if old and same_secrets(old, c) then
    -- Not rotated yet: same identity, perhaps a new expiry; the lifetime
    -- still counts from when these were first seen.
    old.expires_at = exp
  else
    self.creds = { secret_id = c.secret_id, secret_key = c.secret_key, token = c.token ~= "" and c.token or nil,
                   expires_at = exp, source = c.source }
    self.obtained_at = now
  end
  if exp then
    local margin = math.min(M.REFRESH_MARGIN, (exp - self.obtained_at) / 2)
    self.refresh_at = exp - margin
    -- Nothing new yet: not again before the back-off.
    self.retry_at = self.refresh_at <= now and now + self.backoff or -math.huge
  else
    self.refresh_at, self.retry_at = math.huge, -math.huge
  end
  self.last_error = nil
  return true
end

-- Credentials that never expire, no refresh asked for, the system clock:
-- nothing to check. (A clock of one's own is still read every time, and
-- fails there if it fails.)
local function nothing_to_check(self, c)
  return c ~= nil and c.expires_at == nil and self.refresh_at == math.huge and self.clock == os.time
end

function Refresher:current()
  local c = self.creds
  if nothing_to_check(self, c) then
    local changed = c ~= self.given
    self.given = c
    return c, changed
  end
  local now = self.clock() + self.offset
  local valid = c and (c.expires_at == nil or now < c.expires_at)
  if not valid or (now >= self.refresh_at and now >= self.retry_at) then
    local fresh, e = self.provider:get(now)
    local ok
    if fresh then ok, e = self:_install(fresh, now) end
    if not ok then
      if type(e) ~= "table" then e = err_table(tostring(e or "the credentials provider failed")) end
      self.last_error = e
      if valid then
        self.retry_at = now + self.backoff
      else
        return nil, e
      end
    end
  end
  c = self.creds
  local changed = c ~= self.given
  self.given = c
  return c, changed
end

--- r:settled() -> true when what current() gives can change only by
-- invalidate() or another os.time: credentials that never expire, given
-- out already, no refresh asked for, on the system clock (a clock of one's
-- own is read, and may fail, on every call). A holder that never
-- invalidates can stop asking while os.time stays the same function.
function Refresher:settled()
  local c = self.creds
  return nothing_to_check(self, c) and c == self.given
end

function Refresher:invalidate()
  self.refresh_at, self.retry_at = -math.huge, -math.huge
end

return M
