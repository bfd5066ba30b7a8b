-- query: ARGV[2] number of targets n, then n pairs: path, "1" when descendants are asked.
-- Reads, never judges: returns the time (ms), then for every root key that may hold a
-- matching lock and exists, three items: "1" when all its locks match ("0": only depth
-- infinity ones, an ancestor's), its path and its value. The client decodes the records,
-- drops the expired ones and removes duplicates (`judge_roots` in mod.rs). Root index members
-- whose key is gone are removed.
local out = { num(now()) }
local roots, own, indexed = {}, {}, {}
local function want(root, all, from_index)
  if own[root] == nil then
    roots[#roots + 1] = root
    own[root] = all
    indexed[root] = from_index
  elseif all then
    own[root] = true
  end
end
local n = tonumber(ARGV[2])
for i = 0, n - 1 do
  local path = ARGV[3 + 2 * i]
  for _, a in ipairs(ancestors(path)) do
    want(a, false, false)
  end
  want(path, true, false)
  if ARGV[4 + 2 * i] == '1' then
    local min, max = below_range(path)
    for _, root in ipairs(redis.call('ZRANGEBYLEX', PATHS, min, max)) do
      want(root, true, true)
    end
  end
end
each_root_value(roots, function(root, value)
  if value then
    out[#out + 1] = own[root] and '1' or '0'
    out[#out + 1] = root
    out[#out + 1] = value
  elseif indexed[root] then
    redis.call('ZREM', PATHS, root)
  end
end)
return out
