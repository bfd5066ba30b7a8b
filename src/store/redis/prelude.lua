-- tower-locks Redis store: shared prelude, prepended to every script.
--
-- KEYS[1] = {prefix}:paths  ZSET, score 0, member "<path>": every root with a lock key below
-- KEYS[2] = {prefix}:locks  ZSET, score = expiry (ms, "+inf" when infinite), member = `ref`:
--           every lock of the namespace (store quota, sweep)
-- KEYS[3] = {prefix}:fence  STRING counter (INCR)
-- ARGV[1] = "{prefix}:", the base of the per-lock, per-root and per-principal keys:
--   {prefix}:lock:<token>         STRING, the lock's record (see `parse`); PEXPIREAT at its
--                                 expiry
--   {prefix}:<kind>:<path>        ZSET, score = expiry, member = `ref`: the locks rooted at
--                                 <path>, one key per kind ("x0", "xinf", "s0", "sinf": scope
--                                 and depth), so a check reads only the kinds that matter to it
--   {prefix}:owner:<principal>    ZSET, score = expiry, member = `ref`: a principal's locks
--   {prefix}:anon                 ZSET, score = expiry, member = `ref`: locks without principal
-- A lock's `ref` (see `ref`) names its token, kind, root and principal: enough to remove all
-- its index entries from any one of them, also once its record has gone by TTL.
-- Every key shares the hash tag {prefix}, so a namespace lives in one Cluster slot.
--
-- Every call touches a bounded number of keys per lock it reads, writes or returns: one record
-- per key, and every count is a ZCOUNT of the entries whose expiry is still ahead, so an
-- expired lock never counts even before it is swept. Canonical paths never contain a space or
-- a byte below '!', so the roots strictly below <path> are the lex range ["<path>/",
-- "<path>0") of `paths` ('0' is '/' + 1).
local PATHS = KEYS[1]
local LOCKS = KEYS[2]
local FENCE = KEYS[3]
-- ARGV[1] may carry "\0<ms>" after the base: a store built `with_clock` (tests) judges
-- expiry by that time instead of the server's TIME.
local BASE = ARGV[1]
local now_ms = nil
local cut = string.find(BASE, '\0', 1, true)
if cut then
  now_ms = tonumber(string.sub(BASE, cut + 1))
  BASE = string.sub(BASE, 1, cut - 1)
end

-- the server's clock (ms)
local function server_ms()
  local clock = redis.call('TIME')
  return tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end

-- the time expiry is judged by (ms), read once
local function now()
  if now_ms == nil then
    now_ms = server_ms()
  end
  return now_ms
end

local function num(n)
  return string.format('%.0f', n)
end

-- ZRANGEBYSCORE / ZCOUNT bounds of the entries still alive
local function alive()
  return '(' .. num(now()), '+inf'
end

local function lock_key(token)
  return BASE .. 'lock:' .. token
end

local KINDS = { 'x0', 'xinf', 's0', 'sinf' }

local function kind(scope, depth)
  return (scope == 'exclusive' and 'x' or 's') .. (depth == 'infinity' and 'inf' or '0')
end

local function root_key(k, path)
  return BASE .. k .. ':' .. path
end

-- the key counting the locks of a principal (nil: the anonymous bucket)
local function holder_key(principal)
  if principal then
    return BASE .. 'owner:' .. principal
  end
  return BASE .. 'anon'
end

-- a ZADD score: the expiry, "+inf" for an infinite lock
local function score(exp)
  return exp or '+inf'
end

-- the `locks` member of a lock: "<len>:<token> <kind> <path> " then "+<principal>" or "-"
local function ref(token, k, path, principal)
  local r = #token .. ':' .. token .. ' ' .. k .. ' ' .. path .. ' '
  if principal then
    return r .. '+' .. principal
  end
  return r .. '-'
end

-- token, kind, path, principal (nil when none); nil for a malformed member
local function split_ref(m)
  local n, at = string.match(m, '^(%d+):()')
  if not n then
    return nil
  end
  local token = string.sub(m, at, at + n - 1)
  local k, path, who, rest = string.match(m, '^ (%w+) (/%S*) ([+-])()', at + n)
  if not k then
    return nil
  end
  local principal = nil
  if who == '+' then
    principal = string.sub(m, rest)
  end
  return token, k, path, principal
end

-- strict ancestors of a canonical path, root first
local function ancestors(path)
  local out = {}
  if path == '/' then
    return out
  end
  out[1] = '/'
  local i = 2
  while true do
    local j = string.find(path, '/', i, true)
    if not j then
      break
    end
    out[#out + 1] = string.sub(path, 1, j - 1)
    i = j + 1
  end
  return out
end

-- the roots strictly below `path` that hold locks (lex range of `paths`)
local function roots_below(path)
  if path == '/' then
    return redis.call('ZRANGEBYLEX', PATHS, '[/!', '(0')
  end
  return redis.call('ZRANGEBYLEX', PATHS, '[' .. path .. '/', '(' .. path .. '0')
end

local function is_ancestor(a, p)
  if a == '/' then
    return p ~= '/'
  end
  return #p > #a + 1 and string.sub(p, 1, #a + 1) == a .. '/'
end

-- A record is one string: the space-free fields first, each followed by a space,
--   "2 <exp> <depth> <path> <scope> <timeout> <fence> "
-- ("2" is the format; <exp> is "-" when the lock is infinite), then TAIL, each as
-- "<len>:<bytes>" or "-" when absent. The client decodes and validates the same string
-- (`decode` in mod.rs); a record that does not parse here is never changed or judged, only
-- handed to the client as stored, which reports it (fail closed).
local TAIL = { 'token', 'href', 'principal', 'owner' }

-- {raw = the stored text, good = true and the fields when it parses}
local function parse(raw)
  local rec = { raw = raw }
  local exp, depth, path, scope, timeout, fence, i =
    string.match(raw, '^2 (%S+) (%S+) (/%S*) (%S+) (%S+) (%S+) ()')
  if not i then
    return rec
  end
  local tail = {}
  for _, name in ipairs(TAIL) do
    if string.sub(raw, i, i) == '-' then
      i = i + 1
    else
      local n, k = string.match(raw, '^(%d+):()', i)
      if not n or k + n - 1 > #raw then
        return rec
      end
      tail[name] = string.sub(raw, k, k + n - 1)
      i = k + n
    end
  end
  if i ~= #raw + 1 or not tail.token or (exp ~= '-' and not tonumber(exp))
      or (depth ~= '0' and depth ~= 'infinity') or (scope ~= 'exclusive' and scope ~= 'shared') then
    return rec
  end
  for name, v in pairs(tail) do
    rec[name] = v
  end
  if exp ~= '-' then
    rec.exp = exp
  end
  rec.depth, rec.path, rec.scope, rec.timeout, rec.fence = depth, path, scope, timeout, fence
  rec.good = true
  return rec
end

local function encode(rec)
  local parts = { '2 ', rec.exp or '-', ' ', rec.depth, ' ', rec.path, ' ', rec.scope, ' ',
    rec.timeout, ' ', rec.fence, ' ' }
  for _, name in ipairs(TAIL) do
    local v = rec[name]
    if v == nil then
      parts[#parts + 1] = '-'
    else
      parts[#parts + 1] = #v .. ':' .. v
    end
  end
  return table.concat(parts)
end

-- a malformed record never expires here: it keeps blocking until the client reports it
local function expired(rec)
  return rec.good and rec.exp ~= nil and tonumber(rec.exp) <= now()
end

-- the stored record of `token` (parsed), or nil
local function read(token)
  local raw = redis.call('GET', lock_key(token))
  if not raw then
    return nil
  end
  return parse(raw)
end

-- take `path` out of `paths` once none of its root keys is left
local function unindex_root(path)
  local keys = {}
  for i, k in ipairs(KINDS) do
    keys[i] = root_key(k, path)
  end
  if redis.call('EXISTS', unpack(keys)) == 0 then
    redis.call('ZREM', PATHS, path)
  end
end

-- A lock has three index entries, each with its `ref` as member and its expiry as score: in
-- its root key, in its holder's key and in `locks`.
local function index_keys(k, path, principal)
  return { root_key(k, path), holder_key(principal), LOCKS }
end

local function index(token, k, path, principal, exp)
  local m = ref(token, k, path, principal)
  for _, key in ipairs(index_keys(k, path, principal)) do
    redis.call('ZADD', key, score(exp), m)
  end
  redis.call('ZADD', PATHS, 0, path)
end

-- remove `m` from `key` if its entry there has expired (a lock created again later with the
-- same ref has an entry with a later expiry, which stays)
local function forget(key, m)
  local s = redis.call('ZSCORE', key, m)
  if s and not string.find(s, 'inf', 1, true) and tonumber(s) <= now() then
    redis.call('ZREM', key, m)
  end
end

-- remove the index entries of ref `m` (only expired ones when `only_expired`)
local function unindex(m, only_expired)
  local token, k, path, principal = split_ref(m)
  if not token then
    redis.call('ZREM', LOCKS, m)
    return
  end
  for _, key in ipairs(index_keys(k, path, principal)) do
    if only_expired then
      forget(key, m)
    else
      redis.call('ZREM', key, m)
    end
  end
  unindex_root(path)
end

-- remove a lock: its record and its index entries
local function drop(token, rec)
  redis.call('DEL', lock_key(token))
  unindex(ref(token, kind(rec.scope, rec.depth), rec.path, rec.principal), false)
end

-- the lock with this token unless it has expired (an expired one is removed on the way); a
-- malformed record is returned too (fail closed)
local function live(token)
  local rec = read(token)
  if rec and expired(rec) then
    drop(token, rec)
    return nil
  end
  return rec
end

-- the records of the live locks of root key `key`. An entry whose record has gone behind the
-- store's back (eviction, manual DEL) is skipped, and removed when `clean` (mutations only).
local function live_records(key, clean)
  local out = {}
  local min, max = alive()
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', key, min, max)) do
    local token = split_ref(m)
    local rec = token and read(token)
    if rec then
      if not expired(rec) then
        out[#out + 1] = rec
      end
    elseif clean then
      unindex(m, false)
    end
  end
  return out
end

-- how many live entries a ZSET holds
local function live_count(key)
  local min, max = alive()
  return redis.call('ZCOUNT', key, min, max)
end

-- Remove expired locks, at most `limit` of them: the oldest entries of `locks`. Each costs a
-- few O(log N) commands, whatever else shares its path or principal.
local function sweep(limit)
  for _, m in ipairs(redis.call('ZRANGEBYSCORE', LOCKS, '-inf', num(now()), 'LIMIT', 0, limit)) do
    unindex(m, true)
    local token = split_ref(m)
    local rec = token and read(token)
    if rec and expired(rec) then
      redis.call('DEL', lock_key(token))
    end
  end
end

local function covers(rec, path)
  return rec.path == path or (rec.depth == 'infinity' and is_ancestor(rec.path, path))
end

local function judge(rec, path, principal, privileged)
  if not rec.good then
    return 'corrupt'
  end
  if not covers(rec, path) then
    return 'out_of_scope'
  end
  if not privileged and rec.principal ~= nil and rec.principal ~= principal then
    return 'forbidden'
  end
  return 'allowed'
end

-- refresh and unlock: ARGV[2] sweep batch, [3] token, [4] request path, [5] "1" when a
-- principal follows, [6] principal. Returns the token, its live record (nil when there is
-- none) and the verdict of `judge`.
local function token_access(privileged)
  sweep(tonumber(ARGV[2]))
  local token = ARGV[3]
  local principal = nil
  if ARGV[5] == '1' then
    principal = ARGV[6]
  end
  local rec = live(token)
  if rec == nil then
    return token, nil, nil
  end
  return token, rec, judge(rec, ARGV[4], principal, privileged)
end
