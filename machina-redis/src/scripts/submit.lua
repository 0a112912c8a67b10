-- Machina: adds an entry to a shared queue, unless the queue holds its
-- maximum already (then the caller is told: nothing is dropped).
-- KEYS[1] stream   ARGV[1] max length (0: none)   ARGV[2..] fields
-- Returns the entry's id, or '' when the queue is full.
local max = tonumber(ARGV[1])
if max > 0 and redis.call('XLEN', KEYS[1]) >= max then
  return ''
end
local fields = {}
for i = 2, #ARGV do fields[#fields + 1] = ARGV[i] end
return redis.call('XADD', KEYS[1], '*', unpack(fields))
