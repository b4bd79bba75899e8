-- Removes a finished task from its worker's in-flight list and records its result.
-- KEYS[1] in-flight list of the worker
-- KEYS[2] result key of the task
-- KEYS[3] deliveries hash
-- ARGV[1] the task exactly as it was dequeued
-- ARGV[2] result summary JSON
-- ARGV[3] result TTL in seconds
-- ARGV[4] task id (its recovery count is forgotten)
-- Returns: 1 if the task was in flight, 0 if it was not (already acked or recovered elsewhere)
local removed = redis.call('LREM', KEYS[1], -1, ARGV[1])
redis.call('SET', KEYS[2], ARGV[2], 'EX', tonumber(ARGV[3]))
redis.call('HDEL', KEYS[3], ARGV[4])
return removed
