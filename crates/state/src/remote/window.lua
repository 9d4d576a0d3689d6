-- One rate window shared by every replica: a hash of per-second buckets (field: the second on
-- Redis's clock, value: what was counted in it), the same 61 buckets as the in-process `Window`
-- (a bucket of second s counts while s + 60 >= now).
--
-- KEYS[1]  the window's hash
-- ARGV[1]  mode: "lease" (take units against a limit) or "sync" (add a delta, read the total)
-- ARGV[2]  units to give back (an unused lease), 0 for none
-- ARGV[3]  the second (field) they were taken in
-- ARGV[4]  lease: the limit; sync: the limit to say a retry-after for (0: none)
-- ARGV[5]  lease: the least units worth granting (the request's n); sync: the delta to add
-- ARGV[6]  lease: the replicas sharing the window (for the lease size)
--
-- Returns {granted, used (after the grant), now (the second granted in), retry_after}.
local key = KEYS[1]
local now = tonumber(redis.call('TIME')[1])

local back = tonumber(ARGV[2])
if back > 0 and redis.call('HEXISTS', key, ARGV[3]) == 1 then
  if redis.call('HINCRBY', key, ARGV[3], -back) <= 0 then
    redis.call('HDEL', key, ARGV[3])
  end
end

local fields = redis.call('HGETALL', key)
local used = 0
local seconds = {}
for i = 1, #fields, 2 do
  local s = tonumber(fields[i])
  local c = tonumber(fields[i + 1])
  if s + 60 < now then
    redis.call('HDEL', key, fields[i])
  elseif c > 0 then
    used = used + c
    seconds[#seconds + 1] = {s, c}
  end
end

-- Seconds until the window holds at most limit - need: the oldest buckets leave first.
local function retry_after(limit, need)
  table.sort(seconds, function(a, b) return a[1] < b[1] end)
  local left = used
  for _, b in ipairs(seconds) do
    left = left - b[2]
    if left + need <= limit then
      return math.max(1, math.min(60, b[1] + 61 - now))
    end
  end
  return 60
end

local limit = tonumber(ARGV[4])
local n = tonumber(ARGV[5])

if ARGV[1] == 'sync' then
  if n > 0 then
    redis.call('HINCRBY', key, now, n)
    redis.call('PEXPIRE', key, 61000)
    used = used + n
    seconds[#seconds + 1] = {now, n}
  end
  local retry = 0
  if limit > 0 and used >= limit then retry = retry_after(limit, 1) end
  return {0, used, now, retry}
end

-- lease: about (limit - used) / (replicas * 4), at least n, at most what is left (the Rust
-- `lease_size` is the same rule; its unit tests pin it).
local room = limit - used
if room < n then
  return {0, used, now, retry_after(limit, n)}
end
local grant = math.floor(room / (tonumber(ARGV[6]) * 4))
if grant < n then grant = n end
if grant > room then grant = room end
redis.call('HINCRBY', key, now, grant)
redis.call('PEXPIRE', key, 61000)
return {grant, used + grant, now, 0}
