-- unlock: ARGV[2] sweep batch, [3] token, [4] request path, [5] "1" when a principal
-- follows, [6] principal, [7] "1" when privileged.
-- Returns {"not_found"} | {"out_of_scope"|"forbidden"|"done", record}.
sweep(tonumber(ARGV[2]))
local token = ARGV[3]
local principal = nil
if ARGV[5] == '1' then
  principal = ARGV[6]
end
local rec = live(token)
if rec == nil then
  return {'not_found'}
end
local verdict = judge(rec, ARGV[4], principal, ARGV[7] == '1')
if verdict == 'allowed' then
  drop(token, rec)
  return {'done', encode(rec)}
end
return {verdict, encode(rec)}
