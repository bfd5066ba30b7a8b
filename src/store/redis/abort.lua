-- abort: ARGV[2] token, [3] path. Removes the lock with this token rooted at `path`, if any:
-- the client's compensation for a create whose outcome it did not learn (timeout, lost
-- connection). Returns 1 when a lock was removed.
local rec = read(ARGV[2])
if rec and rec.good and rec.path == ARGV[3] then
  drop(ARGV[2], rec)
  return 1
end
return 0
