-- query, fast path: runs before the prelude (whose ~40 function definitions cost a few
-- microseconds per call) and answers the common case alone, reading only: one MGET of the
-- point index for each covering target (the path and all its ancestors), then the records of
-- the locks found there (depth infinity ones, for an ancestor; one GET each, returned as
-- stored), and TIME only when a finite lock was found. It writes nothing: when a target asks for descendants, or a record is gone,
-- expired, stale or without a path (cleanup or a corruption report is due), it stops and the
-- full query below (prelude + query.lua, with `each_covering` and lazy removal) answers.
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
    -- the roots that may cover `path`: '/', each strict ancestor, then `path` itself
    local roots = { '/' }
    if path ~= '/' then
      local i = 2
      while true do
        local j = string.find(path, '/', i, true)
        if not j then
          break
        end
        roots[#roots + 1] = string.sub(path, 1, j - 1)
        i = j + 1
      end
      roots[#roots + 1] = path
    end
    local keys = {}
    for i, root in ipairs(roots) do
      keys[i] = base .. 'root:' .. root
    end
    local vals = redis.call('MGET', unpack(keys))
    for r = 1, #roots do
      local v = vals[r]
      if v then
        local own = r == #roots
        local i = 1
        while fast and i <= #v do
          -- one item: "<d><len>:<token>"
          local colon = string.find(v, ':', i + 1, true)
          local len = colon and tonumber(string.sub(v, i + 1, colon - 1))
          if not len then
            fast = false
            break
          end
          local token = string.sub(v, colon + 1, colon + len)
          if (own or string.sub(v, i, i) == 'i') and not seen[token] then
            local raw = redis.call('GET', base .. 'lock:' .. token)
            -- the record's first fields: exp, path, depth (see FIELDS in the prelude)
            local head = {}
            local p = 2
            for f = 1, 3 do
              if not raw or string.sub(raw, 1, 1) ~= '2' then
                break
              end
              if string.sub(raw, p, p) == '-' then
                p = p + 1
              else
                local c = string.find(raw, ':', p, true)
                local n = c and tonumber(string.sub(raw, p, c - 1))
                if not n then
                  break
                end
                head[f] = string.sub(raw, c + 1, c + n)
                p = c + n + 1
              end
            end
            local exp = head[1] and tonumber(head[1])
            if exp and not now then
              local clock = redis.call('TIME')
              now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
            end
            if head[2] ~= roots[r] or (exp and exp <= now) then
              -- gone, stale, corrupt or expired: the full query decides
              fast = false
            elseif own or head[3] ~= '0' then
              seen[token] = true
              out[#out + 1] = raw
            end
          end
          i = colon + len + 1
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
