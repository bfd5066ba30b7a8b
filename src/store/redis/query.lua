-- query: ARGV[2] number of targets n, then n pairs: path, "1" when descendants are asked;
-- then the number of tokens m, then m tokens.
-- Reads, never judges: returns the time (ms), then for every live lock that may match, three
-- items: "1" when it is rooted at a target or below one ("0": at an ancestor, where only
-- depth-infinity kinds are read) followed by its root, or "t" followed by its token when it
-- was asked for by token only; then its record. The client validates the records
-- (`judge_records` in mod.rs). Each lock is reported once.
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
local n = tonumber(ARGV[2])
for i = 0, n - 1 do
  local path = ARGV[3 + 2 * i]
  for _, a in ipairs(ancestors(path)) do
    add(live_entries({}, a, { 'xinf', 'sinf' }), '0')
  end
  add(live_entries({}, path, KINDS), '1')
  if ARGV[4 + 2 * i] == '1' then
    add(entries_below(XTREE, path), '1')
    add(entries_below(STREE, path), '1')
  end
end
local m = tonumber(ARGV[3 + 2 * n])
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
