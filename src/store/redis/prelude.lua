-- tower-locks Redis store: shared prelude, prepended to every script.
--
-- KEYS[1] = {prefix}:xtree  ZSET, score 0, member "<path> <kind> <token>" for every exclusive
-- KEYS[2] = {prefix}:stree  lock, and for every shared one: lexicographic indexes of the locks
--           by root, for subtree questions
-- KEYS[3] = {prefix}:locks  ZSET, score = expiry (ms, "+inf" when infinite), member = `ref`
--           (see `ref`): every lock of the namespace (store quota, sweep)
-- KEYS[4] = {prefix}:fence  STRING counter (INCR)
-- ARGV[1] = "{prefix}:", the base of the per-lock, per-root and per-principal keys:
--   {prefix}:lock:<token>         STRING, the lock's record (see `parse`); PEXPIREAT at its
--                                 expiry
--   {prefix}:<kind>:<path>        ZSET, score = expiry, member = token: the locks rooted at
--                                 <path>, one key per kind ("x0", "xinf", "s0", "sinf": scope
--                                 and depth), so a check reads only the kinds that matter to it
--   {prefix}:owner:<principal>    ZSET, score = expiry, member = token: a principal's locks
--   {prefix}:htree:<principal>    ZSET, score 0, member "<path> <kind> <token>": the same
--                                 locks by root, for listings of one principal's locks
--   {prefix}:anon                 ZSET, score = expiry, member = token: locks without principal
-- Every key shares the hash tag {prefix}, so a namespace lives in one Cluster slot.
--
-- Every call touches a bounded number of keys per lock it reads, writes or returns: one record
-- per key, and every count is a ZCOUNT of the entries whose expiry is still ahead, so an
-- expired lock never counts even before it is swept. A `locks` member names the lock's token,
-- kind, root and principal, so the sweep finds every entry of a lock whose record has already
-- gone by TTL. Canonical paths never contain a space or a byte below '!', so the locks rooted
-- strictly below <path> are the lex range ["<path>/", "<path>0") of a tree ('0' is '/' + 1).
local XTREE = KEYS[1]
local STREE = KEYS[2]
local LOCKS = KEYS[3]
local FENCE = KEYS[4]
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
-- a kind read back from an index member must be one of these: it becomes part of a key name
local IS_KIND = { x0 = true, xinf = true, s0 = true, sinf = true }

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

-- the lexicographic index of a principal's locks by root (anonymous locks have none)
local function held_tree_key(principal)
  return BASE .. 'htree:' .. principal
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
  if not IS_KIND[k] then
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

-- the tree holding the locks of kind `k`
local function tree_key(k)
  if string.sub(k, 1, 1) == 'x' then
    return XTREE
  end
  return STREE
end

-- Whether `a` sorts after `b` byte by byte, as ZRANGEBYLEX orders. (Lua's own `<` and `>` on
-- strings follow the collation of the locale Redis was started in, which need not be bytes.)
local function bytes_after(a, b)
  for i = 1, math.min(#a, #b) do
    local x, y = string.byte(a, i), string.byte(b, i)
    if x ~= y then
      return x > y
    end
  end
  return #a > #b
end

local function tree_member(path, k, token)
  return path .. ' ' .. k .. ' ' .. token
end

-- Call f(entries) with the locks rooted strictly below `path` in `tree` (and after root
-- `after`, when given: not its own, but its members'), as {root, kind, token} entries
-- (expired ones too, until the sweep takes them out), at most `page` at a time in tree order,
-- until f returns false or none are left. Each page starts after the last member of the one
-- before, so f may remove entries from the tree.
local function pages_below(tree, path, page, f, after)
  local min, max = '[' .. path .. '/', '(' .. path .. '0'
  if path == '/' then
    min, max = '[/!', '(0'
  end
  -- a root's members are "<root> <kind> <token>"; no canonical path has a byte below '!'
  if after and bytes_after('[' .. after .. '!', min) then
    min = '[' .. after .. '!'
  end
  while true do
    local members = redis.call('ZRANGEBYLEX', tree, min, max, 'LIMIT', 0, page)
    local out = {}
    for _, m in ipairs(members) do
      local root, k, token = string.match(m, '^(/%S*) (%w+) (.+)$')
      if IS_KIND[k] then
        out[#out + 1] = { root, k, token }
      end
    end
    if (#out > 0 and not f(out)) or #members < page then
      return
    end
    min = '(' .. members[#members]
  end
end

-- Every lock rooted strictly below `path` in `tree` (see pages_below).
local function entries_below(tree, path)
  local out = {}
  pages_below(tree, path, 1024, function(entries)
    for _, e in ipairs(entries) do
      out[#out + 1] = e
    end
    return true
  end)
  return out
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

-- the stored records of `tokens` (parsed, false when gone), read with one MGET per 256
local function read_all(tokens)
  local out = {}
  for first = 1, #tokens, 256 do
    local keys = {}
    for i = first, math.min(first + 255, #tokens) do
      keys[#keys + 1] = lock_key(tokens[i])
    end
    for _, raw in ipairs(redis.call('MGET', unpack(keys))) do
      out[#out + 1] = raw and parse(raw)
    end
  end
  return out
end

-- remove `member` from `key` if its entry there has expired (a lock created again later with
-- the same token has an entry with a later expiry, which stays)
local function forget(key, member)
  local s = redis.call('ZSCORE', key, member)
  if s and not string.find(s, 'inf', 1, true) and tonumber(s) <= now() then
    redis.call('ZREM', key, member)
  end
end

-- remove `token` from root key <kind>:<path> (only an expired entry when `only_expired`),
-- and from its tree once it is gone from the root key
local function unroot(k, path, token, only_expired)
  local key = root_key(k, path)
  if only_expired then
    forget(key, token)
  else
    redis.call('ZREM', key, token)
  end
  if not redis.call('ZSCORE', key, token) then
    redis.call('ZREM', tree_key(k), tree_member(path, k, token))
  end
end

-- A lock has four index entries: its token in its root key and in its holder's key, and its
-- `ref` in `locks`, each scored by its expiry; and its tree member, in its principal's tree
-- too when it has one.
local function index(token, k, path, principal, exp)
  redis.call('ZADD', root_key(k, path), score(exp), token)
  redis.call('ZADD', tree_key(k), 0, tree_member(path, k, token))
  redis.call('ZADD', holder_key(principal), score(exp), token)
  redis.call('ZADD', LOCKS, score(exp), ref(token, k, path, principal))
  if principal then
    redis.call('ZADD', held_tree_key(principal), 0, tree_member(path, k, token))
  end
end

-- remove a lock's index entries (only expired ones when `only_expired`)
local function unindex(token, k, path, principal, only_expired)
  unroot(k, path, token, only_expired)
  local m = ref(token, k, path, principal)
  if only_expired then
    forget(holder_key(principal), token)
    forget(LOCKS, m)
  else
    redis.call('ZREM', holder_key(principal), token)
    redis.call('ZREM', LOCKS, m)
  end
  -- the principal's tree member goes with the lock: once its holder entry or its root entry
  -- has gone (a custom token used again elsewhere keeps one of them alive)
  if principal and not (only_expired and redis.call('ZSCORE', holder_key(principal), token)
      and redis.call('ZSCORE', root_key(k, path), token)) then
    redis.call('ZREM', held_tree_key(principal), tree_member(path, k, token))
  end
end

-- remove a lock: its record and its index entries
local function drop(token, rec)
  redis.call('DEL', lock_key(token))
  unindex(token, kind(rec.scope, rec.depth), rec.path, rec.principal, false)
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

-- the expiry (ms) of a stored record, read without parsing the rest; nil when infinite or
-- malformed (then it never expires here: fail closed)
local function exp_of(raw)
  local e = string.match(raw, '^2 (%d+) ')
  return e and tonumber(e)
end

-- Call f(raw, entry) for every live lock of `entries` ({root, kind, token}), with its
-- record as stored (read with one MGET per 256, not parsed: the client validates it). An entry
-- whose record has gone behind the store's back (eviction, manual DEL) is skipped, and taken
-- out of its root key and tree when `clean` (mutations only; its other entries go with their
-- expiry).
local function each_record(entries, clean, f)
  for first = 1, #entries, 256 do
    local last = math.min(first + 255, #entries)
    local ks = {}
    for i = first, last do
      ks[#ks + 1] = lock_key(entries[i][3])
    end
    for j, raw in ipairs(redis.call('MGET', unpack(ks))) do
      local e = entries[first + j - 1]
      if raw then
        local exp = exp_of(raw)
        if not (exp and exp <= now()) then
          f(raw, e)
        end
      elseif clean then
        unroot(e[2], e[1], e[3], false)
      end
    end
  end
end

-- the live entries of the root keys of `path` of the given kinds, appended to `out`
local function live_entries(out, path, kinds)
  local min, max = alive()
  for _, k in ipairs(kinds) do
    for _, token in ipairs(redis.call('ZRANGEBYSCORE', root_key(k, path), min, max)) do
      out[#out + 1] = { path, k, token }
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
    local token, k, path, principal = split_ref(m)
    if token then
      unindex(token, k, path, principal, true)
      local rec = read(token)
      if rec and expired(rec) then
        redis.call('DEL', lock_key(token))
      end
    else
      redis.call('ZREM', LOCKS, m)
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
