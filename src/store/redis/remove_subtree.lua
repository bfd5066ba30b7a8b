-- remove_subtree: ARGV[2] sweep batch, [3] path. Returns the number of live locks removed.
sweep(tonumber(ARGV[2]))
local path = ARGV[3]
local removed = 0
local function remove(rec)
  if rec.token then
    drop(rec.token, rec)
    removed = removed + 1
  end
end
local min, max = own_range(path)
each_live(min, max, remove)
min, max = below_range(path)
each_live(min, max, remove)
return removed
