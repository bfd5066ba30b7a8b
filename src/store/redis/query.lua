-- query: ARGV[2] number of targets n, then n pairs: path, "1" when descendants are asked.
-- Returns the records of every live lock matching, each once.
local out = {}
local seen = {}
local function add(rec)
  if not seen[rec.raw] then
    seen[rec.raw] = true
    out[#out + 1] = encode(rec)
  end
end
local n = tonumber(ARGV[2])
for i = 0, n - 1 do
  local path = ARGV[3 + 2 * i]
  each_covering(path, ARGV[4 + 2 * i] == '1', add)
end
return out
