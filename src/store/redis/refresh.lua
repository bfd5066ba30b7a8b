-- refresh: ARGV[2] sweep batch, [3] token, [4] request path, [5] "1" when a principal
-- follows, [6] principal, [7] timeout ("infinite" or seconds).
-- Returns {"not_found"} | {"out_of_scope"|"forbidden"|"corrupt"|"done", record}.
-- Only the timer changes: the record's expiry and timeout, its TTL, and the scores of its
-- three index entries.
local token, rec, verdict = token_access(false)
if rec == nil then
  return { 'not_found' }
end
if verdict ~= 'allowed' then
  return { verdict, rec.raw }
end
rec.timeout = ARGV[7]
rec.exp = nil
if rec.timeout ~= 'infinite' then
  rec.exp = num(now() + tonumber(rec.timeout) * 1000)
end
local raw = encode(rec)
local key = lock_key(token)
redis.call('SET', key, raw)
if rec.exp then
  redis.call('PEXPIREAT', key, rec.exp)
end
index(token, kind(rec.scope, rec.depth), rec.path, rec.principal, rec.exp)
return { 'done', raw }
