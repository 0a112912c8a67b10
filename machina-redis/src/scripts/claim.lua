-- Machina: takes over a shared queue's entries that another consumer (a
-- replica that died, say) left unacknowledged for too long, and moves an
-- entry delivered too many times to the dead-letter stream instead.
--
-- KEYS[1] stream   KEYS[2] dead-letter stream
-- ARGV[1] group    ARGV[2] this consumer   ARGV[3] min idle, ms
-- ARGV[4] max entries per call   ARGV[5] max deliveries
-- ARGV[6] dead-letter stream's max length (approximate)
-- ARGV[7] result key prefix   ARGV[8] result TTL, ms   ARGV[9] channel
-- Returns the claimed entries, as XAUTOCLAIM lists them ({id, fields}),
-- without those sent to the dead-letter stream.
local claimed = redis.call('XAUTOCLAIM', KEYS[1], ARGV[1], ARGV[2], ARGV[3], '0-0', 'COUNT', ARGV[4])
local kept = {}
for _, entry in ipairs(claimed[2]) do
  local id, fields = entry[1], entry[2]
  local pending = redis.call('XPENDING', KEYS[1], ARGV[1], id, id, 1)
  local deliveries = tonumber(pending[1] and pending[1][4] or 0)
  if deliveries > tonumber(ARGV[5]) then
    local dead = {'origin', id, 'deliveries', tostring(deliveries), 'reason', 'delivered too many times'}
    for i = 1, #fields do dead[#dead + 1] = fields[i] end
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[6], '*', unpack(dead))
    -- A caller waiting for the entry is told why it will not run.
    for i = 1, #fields, 2 do
      if fields[i] == 'reply' and fields[i + 1] ~= '' then
        redis.call('SET', ARGV[7] .. fields[i + 1],
          cjson.encode({dead = 'delivered too many times (' .. deliveries .. ')'}), 'PX', ARGV[8])
        redis.call('PUBLISH', ARGV[9], fields[i + 1])
      end
    end
    redis.call('XACK', KEYS[1], ARGV[1], id)
    redis.call('XDEL', KEYS[1], id)
  else
    kept[#kept + 1] = entry
  end
end
return kept
