-- Moves a task that failed transiently from its worker's in-flight list to the delayed set, due
-- `delay` ms from now by Redis's own clock (so workers with skewed clocks agree on when).
-- KEYS[1] in-flight list of the worker
-- KEYS[2] delayed zset (task -> due time, ms)
-- ARGV[1] the task exactly as it was dequeued
-- ARGV[2] delay in ms
-- ARGV[3] "front" to have it promoted to the consuming end of the queue (it keeps its turn),
--         anything else for the producing end (it waits behind what is queued)
-- Returns: 1 if moved, 0 if the task was no longer in flight (recovered elsewhere meanwhile)
local removed = redis.call('LREM', KEYS[1], -1, ARGV[1])
if removed == 0 then
  return 0
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local due = now_ms + tonumber(ARGV[2])
-- Due times are whole milliseconds: half a millisecond more marks a task for the front
-- (promote.lua reads it), with no second key to keep in step.
if ARGV[3] == 'front' then
  due = due + 0.5
end
redis.call('ZADD', KEYS[2], due, ARGV[1])
return 1
