-- Machina: renews (ARGV[3] = 'renew') or gives up (ARGV[3] = 'resign') a
-- singleton emit's leader lease, if this replica still holds it.
-- KEYS[1] leader   ARGV[1] "<replica> <token>"   ARGV[2] TTL, ms
-- Returns 1 if the lease was this replica's, 0 if not (lost).
if redis.call('GET', KEYS[1]) ~= ARGV[1] then
  return 0
end
if ARGV[3] == 'resign' then
  redis.call('DEL', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
