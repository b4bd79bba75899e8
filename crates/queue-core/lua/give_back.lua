-- Gives back a task its worker could not process (an error that was not an outage): to the
-- delayed set to run again, and counts it, so a task that can never be processed ends in the
-- dead-letter list with the reason instead of going round forever. Outages (Redis or
-- PostgreSQL unreachable) are given back with retry_later.lua and not counted.
-- KEYS[1] in-flight list of the worker
-- KEYS[2] delayed zset
-- KEYS[3] dead-letter list
-- KEYS[4] deliveries hash (task id -> failed deliveries)
-- ARGV[1] the task exactly as it is in flight
-- ARGV[2] delay in ms
-- ARGV[3] the task's id in the deliveries hash
-- ARGV[4] MAX_DELIVERIES
-- ARGV[5] dead-letter entry JSON, used when this give-back is the last one allowed
-- ARGV[6] cap on the dead-letter list length
-- Returns: 1 if delayed, 2 if dead-lettered, 0 if the task was no longer in flight
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then
  return 0
end
local failures = redis.call('HINCRBY', KEYS[4], ARGV[3], 1)
if failures >= tonumber(ARGV[4]) then
  redis.call('HDEL', KEYS[4], ARGV[3])
  redis.call('LPUSH', KEYS[3], ARGV[5])
  redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[6]) - 1)
  return 2
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', KEYS[2], now_ms + tonumber(ARGV[2]), ARGV[1])
return 1
