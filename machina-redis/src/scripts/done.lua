-- Machina: a shared queue's entry is handled — keep its result for the
-- caller (if one waits), tell it, and acknowledge the entry, atomically.
--
-- KEYS[1] stream   KEYS[2] result key ('' when nobody waits)
-- ARGV[1] group    ARGV[2] entry id   ARGV[3] result (JSON)
-- ARGV[4] result TTL, ms   ARGV[5] results channel   ARGV[6] reply token
-- Returns 1 if the entry was still pending (so this is its first
-- acknowledgement), 0 if another consumer had acknowledged it already.
if KEYS[2] ~= '' then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
  redis.call('PUBLISH', ARGV[5], ARGV[6])
end
local acked = redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return acked
