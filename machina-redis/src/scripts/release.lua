-- Machina: gives leases of a shared concurrent group back, and tells the
-- replicas waiting on the group (one message on its channel). Used when no
-- decision of this replica came soon enough to carry them.
-- KEYS[1] leases (ZSET)   ARGV[1] the group's channel   ARGV[2..] lease ids
-- Returns how many were still held (not expired or released already).
local removed = 0
for i = 2, #ARGV do
  removed = removed + redis.call('ZREM', KEYS[1], ARGV[i])
end
if removed > 0 then
  redis.call('PUBLISH', ARGV[1], removed)
end
return removed
