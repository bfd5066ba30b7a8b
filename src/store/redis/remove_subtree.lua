-- remove_subtree: ARGV[2] sweep batch, [3] path. Removes every lock rooted at `path` or
-- below, expired or malformed ones too; returns the number of live locks removed.
sweep(tonumber(ARGV[2]))
local path = ARGV[3]
local roots = roots_below(path)
roots[#roots + 1] = path
local removed = 0
for _, root in ipairs(roots) do
  for _, k in ipairs(KINDS) do
    local key = root_key(k, root)
    for _, m in ipairs(redis.call('ZRANGE', key, 0, -1)) do
      local token = split_ref(m)
      local rec = token and read(token)
      if rec and rec.good and rec.path == root then
        if not expired(rec) then
          removed = removed + 1
        end
        drop(token, rec)
      else
        -- gone, malformed, or the token of a lock elsewhere now: only this entry's lock goes
        if rec and not rec.good then
          redis.call('DEL', lock_key(token))
        end
        unindex(m, false)
      end
    end
    redis.call('DEL', key)
  end
  redis.call('ZREM', PATHS, root)
end
return removed
