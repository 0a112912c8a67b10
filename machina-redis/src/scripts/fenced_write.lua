-- Machina: a write that a stale leader cannot make — HSET KEYS[2] field
-- value only if the token is at least the emit's current fencing token.
-- KEYS[1] the emit's token counter   KEYS[2] the hash written
-- ARGV[1] token   ARGV[2] field   ARGV[3] value
-- Returns 1 if written, 0 if refused (a newer leader exists).
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) < current then
  return 0
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
return 1
