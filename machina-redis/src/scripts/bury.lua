-- Machina: moves a shared queue's entry that cannot be handled (an
-- unknown execute, arguments that do not decode) to the dead-letter
-- stream, tells a waiting caller why, and acknowledges it.
--
-- KEYS[1] stream   KEYS[2] dead-letter stream   KEYS[3] result key or ''
-- ARGV[1] group    ARGV[2] entry id   ARGV[3] reason
-- ARGV[4] result (JSON)   ARGV[5] result TTL, ms   ARGV[6] channel
-- ARGV[7] reply token     ARGV[8] dead-letter max length
-- ARGV[9..] the entry's fields
local dead = {'origin', ARGV[2], 'deliveries', '1', 'reason', ARGV[3]}
for i = 9, #ARGV do dead[#dead + 1] = ARGV[i] end
redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[8], '*', unpack(dead))
if KEYS[3] ~= '' then
  redis.call('SET', KEYS[3], ARGV[4], 'PX', ARGV[5])
  redis.call('PUBLISH', ARGV[6], ARGV[7])
end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
