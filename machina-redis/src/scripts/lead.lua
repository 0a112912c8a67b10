-- Machina: one tick of a singleton emit. The replica that holds (or
-- takes) the emit's leader lease runs the tick, if no tick ran in the
-- last half period; every other replica skips it.
--
-- KEYS[1] leader (STRING "<replica> <token>", with the lease's TTL)
-- KEYS[2] token  (STRING: the fencing counter, one more per new leader)
-- KEYS[3] last   (HASH: tick = the last tick's number, at = when, µs)
-- ARGV[1] this replica's id   ARGV[2] lease TTL, ms
-- ARGV[3] the shortest gap between two ticks, µs (half the period)
-- ARGV[4] how long the last tick is remembered, ms
-- Returns {1, token, tick} to run, {0, 0, 0} when another replica leads,
-- {0, token, 0} when this replica leads but a tick ran too recently.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local token
local current = redis.call('GET', KEYS[1])
if not current then
  token = redis.call('INCR', KEYS[2])
  redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. token, 'PX', ARGV[2])
else
  local holder, held = string.match(current, '^(%S+) (%d+)$')
  if holder ~= ARGV[1] then
    return {0, 0, 0}
  end
  token = tonumber(held)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
local last = redis.call('HMGET', KEYS[3], 'tick', 'at')
local tick = tonumber(last[1] or '0')
if last[2] and now - tonumber(last[2]) < tonumber(ARGV[3]) then
  return {0, token, 0}
end
tick = tick + 1
redis.call('HSET', KEYS[3], 'tick', tick, 'at', now, 'token', token)
redis.call('PEXPIRE', KEYS[3], ARGV[4])
return {1, token, tick}
