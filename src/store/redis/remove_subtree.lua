-- remove_subtree: ARGV[2] sweep batch, [3] path. Removes every lock rooted at `path` or
-- below, expired or malformed ones too; returns the number of live locks removed.
sweep(tonumber(ARGV[2]))
local path = ARGV[3]
local keys = keys_below(path)
for _, rk in ipairs(keys_at(path)) do
  keys[#keys + 1] = rk
end
local removed = 0
for _, rk in ipairs(keys) do
  local root, k = rk[1], rk[2]
  local key = root_key(k, root)
  local tokens = redis.call('ZRANGE', key, 0, -1)
  for i, rec in ipairs(read_all(tokens)) do
    if rec and rec.good and rec.path == root then
      if not expired(rec) then
        removed = removed + 1
      end
      drop(tokens[i], rec)
    elseif rec and not rec.good then
      -- malformed: its holder and `locks` entries go with their expiry (sweep)
      redis.call('DEL', lock_key(tokens[i]))
    end
  end
  -- what is left: entries whose record has gone, or whose token now names a lock elsewhere
  redis.call('DEL', key)
  redis.call('ZREM', PATHS, root .. ' ' .. k)
end
return removed
