-- Moves a task that failed transiently from its worker's in-flight list to the delayed set, due
-- `delay` ms from now by Redis's own clock (so workers with skewed clocks agree on when).
-- KEYS[1] in-flight list of the worker
-- KEYS[2] delayed zset (task -> due time, ms)
-- ARGV[1] the task exactly as it was dequeued
-- ARGV[2] delay in ms
-- Returns: 1 if moved, 0 if the task was no longer in flight (recovered elsewhere meanwhile)
local removed = redis.call('LREM', KEYS[1], -1, ARGV[1])
if removed == 0 then
  return 0
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', KEYS[2], now_ms + tonumber(ARGV[2]), ARGV[1])
return 1
