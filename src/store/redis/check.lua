-- query, fast path: runs before the prelude (whose ~40 function definitions cost a few
-- microseconds per call) and answers the common case alone, reading only: one MGET of the
-- point index for each covering target (the path and all its ancestors), then the records of
-- the locks found there (depth infinity ones, for an ancestor; one GET each, returned as
-- stored), and TIME only when a finite lock was found. It writes nothing: when a target asks
-- for descendants, or a record is gone, expired, stale or without a path (cleanup or a
-- corruption report is due), it stops and the full query below (prelude + query.lua, with
-- `each_covering` and lazy removal) answers.
-- ARGV as for query.lua.
do
  local base = ARGV[1]
  local now = nil
  local cut = string.find(base, '\0', 1, true)
  if cut then
    now = tonumber(string.sub(base, cut + 1))
    base = string.sub(base, 1, cut - 1)
  end
  local out = {}
  local seen = {}
  local fast = true
  local n = tonumber(ARGV[2])
  for t = 0, n - 1 do
    if not fast or ARGV[4 + 2 * t] == '1' then
      fast = false
      break
    end
    local path = ARGV[3 + 2 * t]
    -- the point-index keys of the roots that may cover `path`: '/', each strict ancestor,
    -- then `path` itself, cut from the key of `path`
    local key = base .. 'root:' .. path
    local skip = #base + 5
    local keys = { string.sub(key, 1, skip + 1) }
    local ends = { 1 }
    if path ~= '/' then
      local i = 2
      while true do
        local j = string.find(path, '/', i, true)
        if not j then
          break
        end
        keys[#keys + 1] = string.sub(key, 1, skip + j - 1)
        ends[#keys] = j - 1
        i = j + 1
      end
      keys[#keys + 1] = key
      ends[#keys] = #path
    end
    local vals = redis.call('MGET', unpack(keys))
    for r = 1, #keys do
      local v = vals[r]
      if v then
        local own = r == #keys
        local root = string.sub(path, 1, ends[r])
        local i = 1
        while i <= #v do
          -- one item: "<d><len>:<token>"
          local d, len, k = string.match(v, '^(.)(%d+):()', i)
          if not k then
            fast = false
            break
          end
          len = tonumber(len)
          local token = string.sub(v, k, k + len - 1)
          i = k + len
          if (own or d == 'i') and not seen[token] then
            local raw = redis.call('GET', base .. 'lock:' .. token)
            -- the record's head: exp, depth, path (see `decode_rec` in the prelude)
            local exp, depth, rpath = nil, nil, nil
            if raw then
              exp, depth, rpath = string.match(raw, '^2 (%S+) (%S+) (%S+) ')
            end
            if exp == '-' then
              exp = nil
            elseif exp then
              exp = tonumber(exp)
            end
            if exp and not now then
              local clock = redis.call('TIME')
              now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
            end
            if rpath ~= root or (exp and exp <= now) then
              -- gone, stale, corrupt or expired: the full query decides
              fast = false
              break
            elseif own or depth ~= '0' then
              seen[token] = true
              out[#out + 1] = raw
            end
          end
        end
      end
      if not fast then
        break
      end
    end
  end
  if fast then
    return out
  end
end
