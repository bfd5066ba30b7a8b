-- create: ARGV[2] sweep batch, [3] deadline (server ms; "" for none), [4] token, [5] path,
-- [6] href, [7] scope, [8] depth, [9] timeout ("infinite" or seconds), [10] "1" when an owner
-- follows, [11] owner, [12] "1" when a principal follows, [13] principal, then the quotas
-- ("" for none): [14] principal (or anonymous), [15] resource, [16] store; [17] how many
-- conflicts are enough to report (`Below::BLOCKED`).
-- Returns {"created", record} | {"conflict", record...} | {"quota", which} | {"duplicate"}
-- | {"late"}.

-- The client gave up on this call after the deadline (Redis held it, e.g. CLIENT PAUSE): a
-- lock created now would be held by nobody.
if ARGV[3] ~= '' and server_ms() > tonumber(ARGV[3]) then
  return { 'late' }
end
sweep(tonumber(ARGV[2]))
local token, path, scope, depth = ARGV[4], ARGV[5], ARGV[7], ARGV[8]
local principal = nil
if ARGV[12] == '1' then
  principal = ARGV[13]
end

if live(token) then
  return { 'duplicate' }
end

-- Conflicts: a shared request conflicts with exclusive locks only, so it reads only the
-- exclusive kinds (never the shared locks piled up on a path); an exclusive request conflicts
-- with every lock it reads, and reports each. Ancestors matter with depth infinity only.
-- Below a depth-infinity request, the trees are read a page at a time, and no further once
-- enough conflicts are known: a refusal names that many, however many locks lie below.
local MAX_CONFLICTS = tonumber(ARGV[17])
local mine, above, trees = KINDS, { 'xinf', 'sinf' }, { XTREE, STREE }
if scope == 'shared' then
  mine, above, trees = { 'x0', 'xinf' }, { 'xinf' }, { XTREE }
end
local entries = {}
for _, a in ipairs(ancestors(path)) do
  live_entries(entries, a, above)
end
live_entries(entries, path, mine)
local out = { 'conflict' }
local function report(raw)
  out[#out + 1] = raw
end
-- a chunk at a time, no further once enough conflicts are known (as below)
for first = 1, #entries, MAX_CONFLICTS do
  if #out > MAX_CONFLICTS then
    break
  end
  local chunk = {}
  for i = first, math.min(first + MAX_CONFLICTS - 1, #entries) do
    chunk[#chunk + 1] = entries[i]
  end
  each_record(chunk, true, report)
end
if depth == 'infinity' then
  for _, tree in ipairs(trees) do
    if #out > MAX_CONFLICTS then
      break
    end
    pages_below(tree, path, 64, function(page)
      each_record(page, true, report)
      return #out <= MAX_CONFLICTS
    end)
  end
end
if #out > 1 then
  return out
end

-- Quotas, after conflicts; each a ZCOUNT of live entries.
local k = kind(scope, depth)
local holder = holder_key(principal)
if ARGV[14] ~= '' and live_count(holder) >= tonumber(ARGV[14]) then
  return { 'quota', principal and 'principal' or 'anonymous' }
end
if ARGV[15] ~= '' then
  local n = 0
  for _, kk in ipairs(KINDS) do
    n = n + live_count(root_key(kk, path))
  end
  if n >= tonumber(ARGV[15]) then
    return { 'quota', 'resource' }
  end
end
if ARGV[16] ~= '' and live_count(LOCKS) >= tonumber(ARGV[16]) then
  return { 'quota', 'store' }
end

local rec = {
  token = token,
  path = path,
  href = ARGV[6],
  scope = scope,
  depth = depth,
  timeout = ARGV[9],
  fence = num(redis.call('INCR', FENCE)),
  principal = principal,
}
if ARGV[10] == '1' then
  rec.owner = ARGV[11]
end
if rec.timeout ~= 'infinite' then
  rec.exp = num(now() + tonumber(rec.timeout) * 1000)
end
local raw = encode(rec)
redis.call('SET', lock_key(token), raw)
if rec.exp then
  redis.call('PEXPIREAT', lock_key(token), rec.exp)
end
index(token, k, path, principal, rec.exp)
return { 'created', raw }
