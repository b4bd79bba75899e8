-- Acks finished tasks of one worker, one or several in one round trip: removes each from the
-- in-flight list, keeps its result summary for RESULT_TTL, and forgets its recoveries.
-- KEYS[1] in-flight list of the worker
-- KEYS[2] deliveries hash
-- KEYS[3..] result key of each task, in the order of the triples below
-- ARGV[1] result TTL in seconds
-- ARGV[2..] triples: the task as dequeued, its result summary JSON, its task id
-- Returns: for each task, 1 if it was still in flight, else 0
local removed = {}
local ttl = tonumber(ARGV[1])
for i = 0, #KEYS - 3 do
  local raw, summary, id = ARGV[2 + i * 3], ARGV[3 + i * 3], ARGV[4 + i * 3]
  removed[i + 1] = redis.call('LREM', KEYS[1], -1, raw)
  redis.call('SET', KEYS[3 + i], summary, 'EX', ttl)
  redis.call('HDEL', KEYS[2], id)
end
return removed
