-- tower-locks Redis store: shared prelude, prepended to every script.
--
-- KEYS[1] = {prefix}:paths  ZSET, score 0, member "<path> <token>"   (lexicographic index)
-- KEYS[2] = {prefix}:exp    ZSET, score expiry ms, member "<path> <len>:<token>(+<principal>|-)"
-- KEYS[3] = {prefix}:fence  STRING counter (INCR)
-- ARGV[1] = "{prefix}:", the base of the per-lock and per-principal keys:
--   {prefix}:lock:<token>       HASH, the lock record (PEXPIREAT at its expiry)
--   {prefix}:owner:<principal>  ZSET, score 0, member "<path> <token>"
-- Every key shares the hash tag {prefix}, so a namespace lives in one Cluster slot.
-- Canonical paths never contain a space or a byte below '!', so "<path> " sorts before every
-- key that extends <path>, and '0' is '/' + 1.
local PATHS = KEYS[1]
local EXP = KEYS[2]
local FENCE = KEYS[3]
-- ARGV[1] may carry "\0<ms>" after the base: a store built `with_clock` (tests) judges
-- expiry by that time instead of the server's TIME.
local BASE = ARGV[1]
local now
local cut = string.find(BASE, '\0', 1, true)
if cut then
  now = tonumber(string.sub(BASE, cut + 1))
  BASE = string.sub(BASE, 1, cut - 1)
else
  local clock = redis.call('TIME')
  now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
end

local function num(n)
  return string.format('%.0f', n)
end

local function lock_key(token)
  return BASE .. 'lock:' .. token
end

local function owner_key(principal)
  return BASE .. 'owner:' .. principal
end

local function entry(path, token)
  return path .. ' ' .. token
end

local function split_entry(e)
  local sp = string.find(e, ' ', 1, true)
  if not sp then
    return nil, nil
  end
  return string.sub(e, 1, sp - 1), string.sub(e, sp + 1)
end

local function exp_member(path, token, principal)
  local m = path .. ' ' .. #token .. ':' .. token
  if principal then
    return m .. '+' .. principal
  end
  return m .. '-'
end

-- path, token, principal (nil when none); nil for a malformed member
local function split_exp(m)
  local sp = string.find(m, ' ', 1, true)
  if not sp then
    return nil
  end
  local colon = string.find(m, ':', sp + 1, true)
  if not colon then
    return nil
  end
  local n = tonumber(string.sub(m, sp + 1, colon - 1))
  if not n then
    return nil
  end
  local token = string.sub(m, colon + 1, colon + n)
  local rest = string.sub(m, colon + n + 1)
  local principal = nil
  if string.sub(rest, 1, 1) == '+' then
    principal = string.sub(rest, 2)
  end
  return string.sub(m, 1, sp - 1), token, principal
end

-- the lex range of the index entries of locks rooted exactly at `path`
local function own_range(path)
  return '[' .. path .. ' ', '(' .. path .. '!'
end

-- the lex range of the index entries of locks rooted strictly below `path`
local function below_range(path)
  if path == '/' then
    return '[/!', '(0'
  end
  return '[' .. path .. '/', '(' .. path .. '0'
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

local function is_ancestor(a, p)
  if a == '/' then
    return p ~= '/'
  end
  return #p > #a + 1 and string.sub(p, 1, #a + 1) == a .. '/'
end

local function covers(rec, path)
  return rec.path == path or (rec.depth == 'infinity' and rec.path ~= nil and is_ancestor(rec.path, path))
end

local function read(token)
  local flat = redis.call('HGETALL', lock_key(token))
  if #flat == 0 then
    return nil
  end
  local rec = {}
  for i = 1, #flat, 2 do
    rec[flat[i]] = flat[i + 1]
  end
  return rec
end

local function expired(rec)
  local e = rec.exp and tonumber(rec.exp)
  return e ~= nil and e <= now
end

-- remove every index entry of a lock
local function unindex(path, token, principal)
  local e = entry(path, token)
  redis.call('ZREM', PATHS, e)
  redis.call('ZREM', EXP, exp_member(path, token, principal))
  if principal then
    redis.call('ZREM', owner_key(principal), e)
  end
end

-- remove a lock record and its index entries
local function drop(token, rec)
  redis.call('DEL', lock_key(token))
  if rec.path then
    unindex(rec.path, token, rec.principal)
  end
end

-- the live lock with this token, or nil; an expired record is removed on the way
local function live(token)
  local rec = read(token)
  if rec == nil then
    return nil
  end
  if expired(rec) then
    drop(token, rec)
    return nil
  end
  return rec
end

-- call f(token, rec) for every live lock indexed in the lex range [min, max);
-- entries whose lock is gone (expired or removed) are deleted as they are met
local function each_live(min, max, f)
  local es = redis.call('ZRANGEBYLEX', PATHS, min, max)
  for _, e in ipairs(es) do
    local path, token = split_entry(e)
    local rec = nil
    if token then
      rec = live(token)
    end
    if rec == nil or (rec.path ~= nil and rec.path ~= path) then
      -- gone, or a stale entry of a reused token; a record without a path is corrupt and
      -- goes to the client, which reports it (fail closed)
      redis.call('ZREM', PATHS, e)
    else
      f(token, rec)
    end
  end
end

-- remove index entries of expired locks, at most `limit` of them (bounded work per call)
local function sweep(limit)
  local ms = redis.call('ZRANGEBYSCORE', EXP, '-inf', num(now), 'LIMIT', 0, limit)
  for _, m in ipairs(ms) do
    redis.call('ZREM', EXP, m)
    local path, token, principal = split_exp(m)
    if token then
      local rec = read(token)
      if rec and not expired(rec) and rec.path == path and rec.principal == principal then
        -- still live: keep its entry with the expiry it really has
        local e = rec.exp and tonumber(rec.exp)
        if e then
          redis.call('ZADD', EXP, num(e), m)
        end
      else
        if rec and expired(rec) then
          drop(token, rec)
        end
        if not (rec and rec.path == path) then
          redis.call('ZREM', PATHS, entry(path, token))
        end
        if principal and not (rec and rec.path == path and rec.principal == principal) then
          redis.call('ZREM', owner_key(principal), entry(path, token))
        end
      end
    end
  end
end

-- how many live locks `principal` holds, counting at most up to `limit`;
-- dangling entries met on the way are removed
local function count_owned(principal, limit)
  local key = owner_key(principal)
  local n = 0
  local offset = 0
  while n < limit do
    local es = redis.call('ZRANGE', key, offset, offset + 99)
    if #es == 0 then
      break
    end
    local kept = 0
    for _, e in ipairs(es) do
      local path, token = split_entry(e)
      local rec = nil
      if token then
        rec = live(token)
      end
      if rec and rec.path == path and rec.principal == principal then
        n = n + 1
        kept = kept + 1
        if n >= limit then
          break
        end
      else
        redis.call('ZREM', key, e)
        if path and token and not (rec and rec.path == path) then
          redis.call('ZREM', PATHS, e)
          redis.call('ZREM', EXP, exp_member(path, token, principal))
        end
      end
    end
    offset = offset + kept
  end
  return n
end

local function judge(rec, path, principal, privileged)
  if not covers(rec, path) then
    return 'out_of_scope'
  end
  if not privileged and rec.principal ~= nil and rec.principal ~= principal then
    return 'forbidden'
  end
  return 'allowed'
end

local function encode(rec)
  return cjson.encode(rec)
end

-- call f(token, rec) for every live lock that covers `path` (a depth-infinity lock on an
-- ancestor, or any lock rooted at `path`) and, when `below` is true, every live lock rooted
-- strictly below it: the one place the covering rule lives (create's conflicts, query's answer)
local function each_covering(path, below, f)
  for _, a in ipairs(ancestors(path)) do
    local min, max = own_range(a)
    each_live(min, max, function(token, rec)
      if rec.depth ~= '0' then
        f(token, rec)
      end
    end)
  end
  local min, max = own_range(path)
  each_live(min, max, f)
  if below then
    min, max = below_range(path)
    each_live(min, max, f)
  end
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
