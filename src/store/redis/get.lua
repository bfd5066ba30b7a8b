-- get: ARGV[2] token. Returns the record of the live lock, or nil.
local rec = live(ARGV[2])
if rec == nil then
  return false
end
return rec.raw
