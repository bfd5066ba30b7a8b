-- query: ARGV[2] number of targets n, then n pairs: path, and what is asked below it ("0":
-- nothing, "1": every lock, "2": what judging a removal needs, "3": a page of a listing);
-- then the number of tokens m, then m tokens; then for "2", how many blocked roots are
-- enough, and "1" followed by the holder whose locks count as open, or "0"; for "3", how
-- many roots a page holds, and "1" followed by the root it starts after, or "0"; last, "1"
-- followed by the principal whose locks a page lists (only theirs), or "0".
-- Reads, never judges: returns the time (ms), then for every live lock that may match, three
-- items: "1" when it is rooted at a target or below one ("0": at an ancestor, where only
-- depth-infinity kinds are read) followed by its root, or "t" followed by its token when it
-- was asked for by token only; then its record. The client validates the records
-- (`judge_records` in mod.rs). Each lock is reported once.
local n = tonumber(ARGV[2])
local m = tonumber(ARGV[3 + 2 * n])
local asked = {}
for i = 1, m do
  asked[ARGV[3 + 2 * n + i]] = true
end
local count = tonumber(ARGV[4 + 2 * n + m])
local given = nil
local at = 5 + 2 * n + m
if ARGV[at] == '1' then
  given = ARGV[at + 1]
  at = at + 2
else
  at = at + 1
end
local lister = nil
if ARGV[at] == '1' then
  lister = ARGV[at + 1]
end

-- Whether the entry {root, kind, token} of `owner`'s tree is stale: its token's record (`raw`)
-- names a lock elsewhere now, or another principal's (a custom token used again). A record
-- that does not parse is no reason: the client reports it (fail closed).
local function stale(raw, e, owner)
  if not (raw and owner) then
    return false
  end
  local rec = parse(raw)
  return rec.good == true
    and (rec.path ~= e[1] or kind(rec.scope, rec.depth) ~= e[2] or rec.principal ~= owner)
end

-- Call more(entries, open) with the entries of each root strictly below `path` in `tree`
-- with a live lock (after root `after`, when given), in tree order, until it returns false:
-- `open` when one of them has an asked token or is held by `holder`. A root's entries are
-- adjacent in the tree (its path, then a space), so each root comes whole. With `owner`,
-- `tree` is that principal's: an entry whose token names a lock elsewhere now, or another
-- principal's (a custom token used again), is taken out of it, not reported.
local function roots_below(tree, path, after, holder, more, owner)
  local group, live, open = {}, false, false
  local stop = false
  local function close()
    if live and not more(group, open) then
      stop = true
    end
    group, live, open = {}, false, false
  end
  pages_below(tree, path, 64, function(entries)
    local keys = {}
    for i, e in ipairs(entries) do
      keys[i] = lock_key(e[3])
    end
    local records = redis.call('MGET', unpack(keys))
    for i, e in ipairs(entries) do
      if group[1] and group[1][1] ~= e[1] then
        close()
        if stop then
          return false
        end
      end
      local raw = records[i]
      if stale(raw, e, owner) then
        redis.pcall('ZREM', tree, tree_member(e[1], e[2], e[3]))
      else
        group[#group + 1] = e
        if raw then
          local exp = exp_of(raw)
          live = live or not (exp and exp <= now())
        else
          -- gone by its TTL (or behind the store's back): take the entry out, so that the
          -- next walk does not read it again
          -- a cleanup only: where Redis refuses writes (NOREPLICAS, MISCONF, a read-only
          -- replica) the entry stays and the query still answers
          local removed = redis.pcall('ZREM', root_key(e[2], e[1]), e[3])
          if type(removed) ~= 'table' then
            local member = tree_member(e[1], e[2], e[3])
            redis.pcall('ZREM', tree_key(e[2]), member)
            if tree ~= tree_key(e[2]) then
              redis.pcall('ZREM', tree, member)
            end
          end
        end
        open = open or asked[e[3]] ~= nil
          or (holder ~= nil and redis.call('ZSCORE', holder_key(holder), e[3]) ~= false)
      end
    end
    return true
  end, after)
  if not stop then
    close()
  end
end

-- The entries below `path` a removal's verdict needs (`Below::UntilBlocked`, store/query.rs):
-- those of every open root, and those of the first `count` roots that are not, where the
-- walk stops.
local function until_blocked(tree, path)
  local out, blocked = {}, 0
  roots_below(tree, path, nil, given, function(group, open)
    for _, e in ipairs(group) do
      out[#out + 1] = e
    end
    if not open then
      blocked = blocked + 1
    end
    return blocked < count
  end)
  return out
end

-- The entries of the first `count` roots below `path` in `tree` after root `given`
-- (`Below::Page`); `owner` when `tree` is that principal's.
local function page(tree, path, owner)
  local out, roots = {}, 0
  roots_below(tree, path, given, nil, function(group)
    for _, e in ipairs(group) do
      out[#out + 1] = e
    end
    roots = roots + 1
    return roots < count
  end, owner)
  return out
end

local entries, own = {}, {}
local function add(list, mine)
  for _, e in ipairs(list) do
    local token = e[3]
    if own[token] == nil then
      entries[#entries + 1] = e
    end
    if own[token] ~= '1' then
      own[token] = mine
    end
  end
end
-- Targets often share ancestors (the members of one collection): each is read once.
local seen = {}
for i = 0, n - 1 do
  local path = ARGV[3 + 2 * i]
  for _, a in ipairs(ancestors(path)) do
    if not seen[a] then
      seen[a] = true
      add(live_entries({}, a, { 'xinf', 'sinf' }), '0')
    end
  end
  add(live_entries({}, path, KINDS), '1')
  local below = ARGV[4 + 2 * i]
  if below == '1' then
    add(entries_below(XTREE, path), '1')
    add(entries_below(STREE, path), '1')
  elseif below == '2' then
    add(until_blocked(XTREE, path), '1')
    add(until_blocked(STREE, path), '1')
  elseif below == '3' and lister then
    -- one principal's locks: its own tree holds both kinds, and no one else's roots
    add(page(held_tree_key(lister), path, lister), '1')
  elseif below == '3' then
    add(page(XTREE, path), '1')
    add(page(STREE, path), '1')
  end
end
for i = 1, m do
  local token = ARGV[3 + 2 * n + i]
  if own[token] == nil then
    entries[#entries + 1] = { token, nil, token }
    own[token] = 't'
  end
end
local out = { num(now()) }
each_record(entries, false, function(raw, e)
  out[#out + 1] = own[e[3]]
  out[#out + 1] = e[1]
  out[#out + 1] = raw
end)
return out
