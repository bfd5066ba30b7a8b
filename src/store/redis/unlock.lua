-- unlock: ARGV[2] sweep batch, [3] token, [4] request path, [5] "1" when a principal
-- follows, [6] principal, [7] "1" when privileged.
-- Returns {"not_found"} | {"out_of_scope"|"forbidden"|"corrupt"|"done", record}.
local token, rec, verdict = token_access(ARGV[7] == '1')
if rec == nil then
  return { 'not_found' }
end
if verdict == 'allowed' then
  drop(token, rec)
  return { 'done', rec.raw }
end
return { verdict, rec.raw }
