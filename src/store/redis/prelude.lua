-- tower-locks Redis store: shared prelude, prepended to every script.
--
-- KEYS[1] = {prefix}:paths  ZSET, score 0, member "<path>" for every root key (lexicographic
--           index of the roots holding records)
-- KEYS[2] = {prefix}:exp    ZSET, score expiry ms, member "<path> <len>:<token>(+<principal>|-)"
-- KEYS[3] = {prefix}:fence  STRING counter (INCR)
-- ARGV[1] = "{prefix}:", the base of the per-lock, per-root and per-principal keys:
--   {prefix}:root:<path>        STRING, the records of the locks rooted at <path> (see
--                               `root_records` and `encode`): a covering check reads a path
--                               and all its ancestors with one MGET
--   {prefix}:lock:<token>       STRING, the root path of the lock (PEXPIREAT at its expiry)
--   {prefix}:owner:<principal>  ZSET, score 0, member "<path> <token>"
-- Every key shares the hash tag {prefix}, so a namespace lives in one Cluster slot.
-- Canonical paths never contain a space or a byte below '!', so the roots strictly below <path>
-- are the range ["<path>/", "<path>0") ('0' is '/' + 1), and "<path> " in a ZSET member sorts
-- before every member that extends <path>.
local PATHS = KEYS[1]
local EXP = KEYS[2]
local FENCE = KEYS[3]
-- ARGV[1] may carry "\0<ms>" after the base: a store built `with_clock` (tests) judges
-- expiry by that time instead of the server's TIME.
-- The time is read once, on first use: a check that meets no lock never calls TIME.
local BASE = ARGV[1]
local now_ms = nil
local cut = string.find(BASE, '\0', 1, true)
if cut then
  now_ms = tonumber(string.sub(BASE, cut + 1))
  BASE = string.sub(BASE, 1, cut - 1)
end

local function now()
  if now_ms == nil then
    local clock = redis.call('TIME')
    now_ms = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
  end
  return now_ms
end

local function num(n)
  return string.format('%.0f', n)
end

local function lock_key(token)
  return BASE .. 'lock:' .. token
end

local function root_key(path)
  return BASE .. 'root:' .. path
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

-- the items of a root key's value: a list of {depth flag, token}
-- A root key holds the records of the locks rooted at its path, each as "<len>:<record>".
-- The records of a value, as a list; a value that does not parse ends in one record holding
-- the rest (corrupt: handed to the client, which reports it: fail closed).
local function root_records(v)
  local recs = {}
  local i = 1
  while i <= #v do
    local n, a = string.match(v, '^(%d+):()', i)
    n = n and tonumber(n)
    if not a or a + n - 1 > #v then
      recs[#recs + 1] = string.sub(v, i)
      break
    end
    recs[#recs + 1] = string.sub(v, a, a + n - 1)
    i = a + n
  end
  return recs
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

-- the lex range of the root index holding exactly `path`
local function own_range(path)
  return '[' .. path, '[' .. path
end

-- the lex range of the root index below `path`
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

-- A record is one string: the space-free fields first, each followed by a space,
--   "2 <exp> <depth> <path> <scope> <timeout> <fence> "
-- ("2" is the format; <exp> is "-" when the lock is infinite), then TAIL, each as
-- "<len>:<bytes>" or "-" when absent (principal, owner). A walk over locks needs only the
-- first three (one string.match); the rest are parsed on first use. The client decodes the
-- same string (`decode` in mod.rs); a record that does not parse here keeps only its raw text
-- (no path), so it is handed to the client, which reports it (fail closed).
local TAIL = { 'token', 'href', 'principal', 'owner' }

-- parse the fields after the head into rec, from byte `i` (never overwriting a field already
-- set); false when malformed
local function parse_rest(rec, s, i)
  local scope, timeout, fence, j = string.match(s, '^(%S+) (%S+) (%S+) ()', i)
  if not j then
    return false
  end
  local set = function(k, v)
    if rawget(rec, k) == nil then
      rawset(rec, k, v)
    end
  end
  set('scope', scope)
  set('timeout', timeout)
  set('fence', fence)
  i = j
  for _, name in ipairs(TAIL) do
    if string.sub(s, i, i) == '-' then
      i = i + 1
    else
      local n, k = string.match(s, '^(%d+):()', i)
      if not n then
        return false
      end
      n = tonumber(n)
      set(name, string.sub(s, k, k + n - 1))
      i = k + n
    end
  end
  return i == #s + 1
end

-- Records are parsed on the first access to any field: a walk that only needs a record's
-- expiry reads it with `exp_of`, and hands the text on as it was stored.
local LAZY = {
  __index = function(rec, k)
    if rawget(rec, '_parsed') then
      return nil
    end
    rawset(rec, '_parsed', true)
    local s = rawget(rec, 'raw')
    local exp, depth, path, at = string.match(s, '^2 (%S+) (%S+) (/%S*) ()')
    if not at or not parse_rest(rec, s, at) then
      rawset(rec, '_bad', true)
    end
    if exp ~= '-' then
      rawset(rec, 'exp', exp)
    end
    rawset(rec, 'depth', depth)
    rawset(rec, 'path', path)
    return rawget(rec, k)
  end,
}

local function decode_rec(s)
  return setmetatable({ raw = s }, LAZY)
end

-- the expiry of a stored record (ms), nil when infinite (or malformed)
local function exp_of(raw)
  local e = string.match(raw, '^2 (%d+) ')
  return e and tonumber(e)
end

-- parse all fields, before a record is changed; false when it is malformed (and must be
-- left as it is, for the client to report)
local function complete(rec)
  local _ = rec.owner
  return not rawget(rec, '_bad')
end

-- the record's string: the text read when unchanged (rec.raw), else encoded from its fields
local function encode(rec)
  if rec.raw then
    return rec.raw
  end
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

-- rewrite the root key of `path` with the record of `token` replaced by `raw`, or removed
-- when `raw` is nil (the key goes when it holds no record)
local function root_put(path, token, raw)
  local key = root_key(path)
  local v = redis.call('GET', key)
  local parts = {}
  if v then
    for _, r in ipairs(root_records(v)) do
      local rec = decode_rec(r)
      if rec.token ~= token or rawget(rec, '_bad') then
        parts[#parts + 1] = #r .. ':' .. r
      end
    end
  end
  if raw then
    parts[#parts + 1] = #raw .. ':' .. raw
  end
  if #parts == 0 then
    redis.call('DEL', key)
    redis.call('ZREM', PATHS, path)
  else
    redis.call('SET', key, table.concat(parts))
    redis.call('ZADD', PATHS, 0, path)
  end
end

-- the record of `token` (its token key names its root), or nil; a corrupt record in that
-- root is returned too (fail closed)
local function read(token)
  local path = redis.call('GET', lock_key(token))
  if not path then
    return nil
  end
  local v = redis.call('GET', root_key(path))
  if not v then
    return nil
  end
  for _, r in ipairs(root_records(v)) do
    local rec = decode_rec(r)
    if rec.token == token or rawget(rec, '_bad') then
      return rec
    end
  end
  return nil
end

local function expired(rec)
  local raw = rawget(rec, 'raw')
  local e
  if raw then
    e = exp_of(raw)
  else
    e = rec.exp and tonumber(rec.exp)
  end
  return e ~= nil and e <= now()
end

-- remove the index entries of a lock
local function unindex(path, token, principal)
  redis.call('ZREM', EXP, exp_member(path, token, principal))
  if principal then
    redis.call('ZREM', owner_key(principal), entry(path, token))
  end
end

-- remove a lock: its record (from the root key of `root`, default its path), token key and
-- index entries
local function drop(token, rec, root)
  root = root or rec.path
  redis.call('DEL', lock_key(token))
  if root then
    root_put(root, token, nil)
    unindex(root, token, rec.principal)
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

-- call f(rec) for every live record of `recs`, the records of the root key of `root` (depth
-- infinity ones only unless `own`); expired ones are removed on the way. A corrupt record is
-- passed on, for the client to report.
local function each_rec(root, recs, own, f)
  for _, raw in ipairs(recs) do
    local rec = decode_rec(raw)
    if expired(rec) and rec.token then
      drop(rec.token, rec, root)
    elseif own or rec.depth ~= '0' then
      f(rec)
    end
  end
end

-- call f(root, value) for every root of the list, the root keys read with one MGET per 256;
-- value is false when the root key is gone
local function each_root_value(roots, f)
  local first = 1
  while first <= #roots do
    local last = math.min(first + 255, #roots)
    local keys = {}
    for j = first, last do
      keys[#keys + 1] = root_key(roots[j])
    end
    local vals = redis.call('MGET', unpack(keys))
    for k = 1, #keys do
      f(roots[first + k - 1], vals[k])
    end
    first = last + 1
  end
end

-- call f(rec) for every live lock rooted in the lex range [min, max) of the root index; an
-- index member whose root key is gone is deleted
local function each_live(min, max, f)
  each_root_value(redis.call('ZRANGEBYLEX', PATHS, min, max), function(root, value)
    if value then
      each_rec(root, root_records(value), true, f)
    else
      redis.call('ZREM', PATHS, root)
    end
  end)
end

-- remove index entries of expired locks, at most `limit` of them (bounded work per call)
local function sweep(limit)
  local ms = redis.call('ZRANGEBYSCORE', EXP, '-inf', num(now()), 'LIMIT', 0, limit)
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
          -- no live lock of this token at `path` (its token key is gone, or names another
          -- root): its record there, if any, is dead
          root_put(path, token, nil)
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
          redis.call('ZREM', EXP, exp_member(path, token, principal))
          root_put(path, token, nil)
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

-- call f(rec) for every live lock that covers `path` (a depth-infinity lock on an
-- ancestor, or any lock rooted at `path`) and, when `below` is true, every live lock rooted
-- strictly below it: the one place the covering rule lives in the scripts (create's
-- conflicts, query's answer; the client's covering check in mod.rs reads the same root keys).
-- The ancestors and the path itself are read with one MGET.
local function each_covering(path, below, f)
  local roots = ancestors(path)
  roots[#roots + 1] = path
  local keys = {}
  for i, root in ipairs(roots) do
    keys[i] = root_key(root)
  end
  local vals = redis.call('MGET', unpack(keys))
  for i, root in ipairs(roots) do
    if vals[i] then
      each_rec(root, root_records(vals[i]), i == #roots, f)
    end
  end
  if below then
    local min, max = below_range(path)
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
