-- remove_subtree: ARGV[2] sweep batch, [3] path. Removes every lock rooted at `path` or
-- below, expired or malformed ones too; returns the number of live locks removed.
sweep(tonumber(ARGV[2]))
local path = ARGV[3]
local entries = entries_below(XTREE, path)
for _, e in ipairs(entries_below(STREE, path)) do
  entries[#entries + 1] = e
end
for _, k in ipairs(KINDS) do
  for _, token in ipairs(redis.call('ZRANGE', root_key(k, path), 0, -1)) do
    entries[#entries + 1] = { path, k, token }
  end
end
local tokens = {}
for i, e in ipairs(entries) do
  tokens[i] = e[3]
end
local removed = 0
for i, rec in ipairs(read_all(tokens)) do
  local root, k, token = entries[i][1], entries[i][2], entries[i][3]
  if rec and rec.good and rec.path == root then
    if not expired(rec) then
      removed = removed + 1
    end
    drop(token, rec)
  else
    -- gone, malformed, or the token of a lock elsewhere now: only this entry goes (a
    -- malformed record's holder and `locks` entries go with their expiry)
    if rec and not rec.good then
      redis.call('DEL', lock_key(token))
    end
    unroot(k, root, token, false)
  end
end
return removed
