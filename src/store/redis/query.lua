-- query: ARGV[2] number of targets n, then n pairs: path, "1" when descendants are asked.
-- Reads, never judges: returns the time (ms), then for every live lock that may match, three
-- items: "1" when it is rooted at a target or below one ("0": at an ancestor, where only
-- depth-infinity kinds are read), its root and its record. The client validates the records
-- (`judge_records` in mod.rs). Each root key is read once, and a lock lives in one root key,
-- so each lock is reported once.
local keys, own, seen = {}, {}, {}
local function want(list, mine)
  for _, rk in ipairs(list) do
    local key = root_key(rk[2], rk[1])
    if not seen[key] then
      seen[key] = true
      keys[#keys + 1] = rk
      own[key] = mine
    end
  end
end
local deep, all = kind_set({ 'xinf', 'sinf' }), kind_set(KINDS)
local n = tonumber(ARGV[2])
for i = 0, n - 1 do
  local path = ARGV[3 + 2 * i]
  for _, a in ipairs(ancestors(path)) do
    local found = {}
    add_keys_at(found, a, deep)
    want(found, '0')
  end
  local found = {}
  add_keys_at(found, path, all)
  want(found, '1')
  if ARGV[4 + 2 * i] == '1' then
    want(keys_below(path), '1')
  end
end
local out = { num(now()) }
each_live(keys, false, function(raw, root, k)
  out[#out + 1] = own[root_key(k, root)]
  out[#out + 1] = root
  out[#out + 1] = raw
end)
return out
