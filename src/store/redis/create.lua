-- create: ARGV[2] sweep batch, [3] token, [4] path, [5] href, [6] scope, [7] depth,
-- [8] timeout ("infinite" or seconds), [9] "1" when an owner follows, [10] owner,
-- [11] "1" when a principal follows, [12] principal, [13] quota ("" for none).
-- Returns {"created", record} | {"conflict", record...} | {"quota"} | {"duplicate"}.
sweep(tonumber(ARGV[2]))
local token, path, scope, depth = ARGV[3], ARGV[4], ARGV[6], ARGV[7]
local principal = nil
if ARGV[11] == '1' then
  principal = ARGV[12]
end

if live(token) then
  return {'duplicate'}
end

local out = {'conflict'}
each_covering(path, depth == 'infinity', function(rec)
  if not (rec.scope == 'shared' and scope == 'shared') then
    out[#out + 1] = encode(rec)
  end
end)
if #out > 1 then
  return out
end

if principal and ARGV[13] ~= '' then
  local quota = tonumber(ARGV[13])
  if count_owned(principal, quota) >= quota then
    return {'quota'}
  end
end

local rec = {
  token = token,
  path = path,
  href = ARGV[5],
  scope = scope,
  depth = depth,
  timeout = ARGV[8],
  fence = num(redis.call('INCR', FENCE)),
}
if ARGV[9] == '1' then
  rec.owner = ARGV[10]
end
if principal then
  rec.principal = principal
end
local exp = nil
if rec.timeout ~= 'infinite' then
  exp = now() + tonumber(rec.timeout) * 1000
  rec.exp = num(exp)
end
local key = lock_key(token)
local raw = encode(rec)
redis.call('SET', key, path)
root_put(path, token, raw)
if principal then
  redis.call('ZADD', owner_key(principal), 0, entry(path, token))
end
if exp then
  redis.call('PEXPIREAT', key, rec.exp)
  redis.call('ZADD', EXP, rec.exp, exp_member(path, token, principal))
end
return {'created', raw}
