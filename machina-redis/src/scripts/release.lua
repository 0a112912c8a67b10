-- Machina: gives a lease of a shared concurrent group back, and tells the
-- replicas waiting on the group (one message on its channel).
-- KEYS[1] leases (ZSET)   ARGV[1] lease id   ARGV[2] the group's channel
-- Returns 1 if the lease was held, 0 if it had expired or was released.
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
if removed > 0 then
  redis.call('PUBLISH', ARGV[2], ARGV[1])
end
return removed
