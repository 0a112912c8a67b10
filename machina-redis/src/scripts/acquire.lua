-- Machina: one start decision for a shared concurrent group, atomically.
-- It mirrors machina_core::limit::GroupPolicy: the in-flight cap first,
-- then the sliding window of starts and the GCRA bucket, the later of the
-- two refusals winning; all checked before anything is committed.
--
-- KEYS[1] leases  (ZSET: lease id -> expiry, µs of server time)
-- KEYS[2] starts  (ZSET: lease id -> start time, µs)
-- KEYS[3] tat     (STRING: the bucket's theoretical arrival time, µs)
-- ARGV[1] lease id          ARGV[2] lease TTL, µs
-- ARGV[3] max in flight (0: no cap)
-- ARGV[4] max starts per window (0: no window)   ARGV[5] window, µs
-- ARGV[6] emission interval, µs (0: no bucket)   ARGV[7] tolerance, µs
-- ARGV[8] now, µs ('' : the server's TIME; set only by tests)
-- ARGV[9] the group's channel   ARGV[10] n   ARGV[11..10+n] lease ids this
-- replica released since its last call: given back first (one message on
-- the channel if any was held), so a release rides the next decision.
-- Returns {1, now} when granted, or {0, reason, wait µs} when refused:
-- reason 1 = in flight (wait = until the earliest lease expires, an upper
-- bound: a release publishes first), 2 = window, 3 = rate.
local now
if ARGV[8] ~= '' then
  now = tonumber(ARGV[8])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local released = tonumber(ARGV[10] or '0')
if released > 0 then
  local freed = 0
  for i = 11, 10 + released do
    freed = freed + redis.call('ZREM', KEYS[1], ARGV[i])
  end
  if freed > 0 then
    redis.call('PUBLISH', ARGV[9], freed)
  end
end
local ttl = tonumber(ARGV[2])
local max_in_flight = tonumber(ARGV[3])
local max_starts = tonumber(ARGV[4])
local window = tonumber(ARGV[5])
local interval = tonumber(ARGV[6])
local tolerance = tonumber(ARGV[7])

if max_in_flight > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
  if redis.call('ZCARD', KEYS[1]) >= max_in_flight then
    local first = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
    return {0, 1, math.max(0, math.ceil(tonumber(first[2]) - now))}
  end
end

local reason, wait = 0, 0
if max_starts > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
  if redis.call('ZCARD', KEYS[2]) >= max_starts then
    local oldest = redis.call('ZRANGE', KEYS[2], 0, 0, 'WITHSCORES')
    reason, wait = 2, tonumber(oldest[2]) + window - now
  end
end
local tat = now
if interval > 0 then
  tat = tonumber(redis.call('GET', KEYS[3]) or '0')
  local allowed_from = tat - tolerance
  if now < allowed_from and allowed_from - now > wait then
    reason, wait = 3, allowed_from - now
  end
end
if reason ~= 0 then
  return {0, reason, math.ceil(wait)}
end

if max_in_flight > 0 then
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], math.ceil(ttl / 1000) + 1000)
end
if max_starts > 0 then
  redis.call('ZADD', KEYS[2], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[2], math.ceil(window / 1000) + 1000)
end
if interval > 0 then
  local next_tat = math.max(tat, now) + interval
  redis.call('SET', KEYS[3], string.format('%.3f', next_tat),
    'PX', math.ceil((next_tat - now) / 1000) + 1000)
end
return {1, now}
