-- Machina: extends the leases a live replica holds by one TTL from now.
-- KEYS[1] leases (ZSET)   ARGV[1] TTL, µs   ARGV[2..] lease ids
-- Returns the ids that were no longer held (expired: the replica was cut
-- off from Redis for longer than the TTL, and the slot was given away).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local ttl = tonumber(ARGV[1])
local lost = {}
for i = 2, #ARGV do
  local expiry = redis.call('ZSCORE', KEYS[1], ARGV[i])
  if expiry and tonumber(expiry) > now then
    redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[i])
  else
    redis.call('ZREM', KEYS[1], ARGV[i])
    table.insert(lost, ARGV[i])
  end
end
redis.call('PEXPIRE', KEYS[1], math.ceil(ttl / 1000) + 1000)
return lost
