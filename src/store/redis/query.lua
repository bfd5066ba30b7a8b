-- query: ARGV[2] number of targets n, then n pairs: path, "1" when descendants are asked.
-- Returns the records of every live lock matching, each once.
local out = {}
local seen = {}
local function add(token, rec)
  if not seen[token] then
    seen[token] = true
    out[#out + 1] = encode(rec)
  end
end
local n = tonumber(ARGV[2])
for i = 0, n - 1 do
  local path = ARGV[3 + 2 * i]
  local descendants = ARGV[4 + 2 * i] == '1'
  for _, a in ipairs(ancestors(path)) do
    local min, max = own_range(a)
    each_live(min, max, function(token, rec)
      if rec.depth ~= '0' then
        add(token, rec)
      end
    end)
  end
  local min, max = own_range(path)
  each_live(min, max, add)
  if descendants then
    min, max = below_range(path)
    each_live(min, max, add)
  end
end
return out
