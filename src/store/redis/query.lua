-- query: ARGV[2] number of targets n, then n pairs: path, "1" when descendants are asked.
-- Reads, never judges: returns the time (ms), then for every live lock that may match, three
-- items: "1" when it is rooted at a target or below one ("0": at an ancestor, where only
-- depth-infinity locks are read), its root and its record. The client validates the records
-- and removes duplicates (`judge_records` in mod.rs). Each root key is read once.
local out = { num(now()) }
local seen = {}
local function emit(kinds, root, own)
  for _, k in ipairs(kinds) do
    local key = root_key(k, root)
    if not seen[key] then
      seen[key] = true
      for _, rec in ipairs(live_records(key, false)) do
        out[#out + 1] = own
        out[#out + 1] = root
        out[#out + 1] = rec.raw
      end
    end
  end
end
local n = tonumber(ARGV[2])
for i = 0, n - 1 do
  local path = ARGV[3 + 2 * i]
  for _, a in ipairs(ancestors(path)) do
    emit({ 'xinf', 'sinf' }, a, '0')
  end
  emit(KINDS, path, '1')
  if ARGV[4 + 2 * i] == '1' then
    for _, root in ipairs(roots_below(path)) do
      emit(KINDS, root, '1')
    end
  end
end
return out
