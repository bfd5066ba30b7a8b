-- refresh: ARGV[2] sweep batch, [3] token, [4] request path, [5] "1" when a principal
-- follows, [6] principal, [7] timeout ("infinite" or seconds).
-- Returns {"not_found"} | {"out_of_scope"|"forbidden"|"done", record}.
local token, rec, verdict = token_access(false)
if rec == nil then
  return {'not_found'}
end
if verdict ~= 'allowed' then
  return {verdict, encode(rec)}
end
local key = lock_key(token)
local member = exp_member(rec.path, token, rec.principal)
if not complete(rec) then
  -- malformed: not rewritten; the client reports it
  return {'done', encode(rec)}
end
rec.raw = nil
rec.timeout = ARGV[7]
if rec.timeout == 'infinite' then
  rec.exp = nil
  redis.call('PERSIST', key)
  redis.call('ZREM', EXP, member)
else
  rec.exp = num(now() + tonumber(rec.timeout) * 1000)
  redis.call('PEXPIREAT', key, rec.exp)
  redis.call('ZADD', EXP, rec.exp, member)
end
root_put(rec.path, token, encode(rec))
return {'done', encode(rec)}
