-- Moves delayed tasks that are due (by Redis's own clock) to the queue. Safe to run from any
-- number of processes at once: each task is moved by exactly one of them.
-- KEYS[1] delayed zset (task -> due time, ms)
-- KEYS[2] pending list
-- ARGV[1] most tasks to move in one call
-- Returns: how many were moved
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms, 'LIMIT', 0, tonumber(ARGV[1]))
for _, raw in ipairs(due) do
  redis.call('ZREM', KEYS[1], raw)
  -- The producing end, like a newly queued task: a retry waits its turn.
  redis.call('LPUSH', KEYS[2], raw)
end
return #due
