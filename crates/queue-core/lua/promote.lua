-- Moves delayed tasks that are due (by Redis's own clock) to the queue. Safe to run from any
-- number of processes at once: each task is moved by exactly one of them.
-- KEYS[1] delayed zset (task -> due time, ms; a due time of n.5 ms marks a task for the front)
-- KEYS[2] pending list
-- ARGV[1] most tasks to move in one call
-- Returns: how many were moved
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now_ms, 'WITHSCORES', 'LIMIT', 0,
  tonumber(ARGV[1]))
for i = 1, #due, 2 do
  local raw = due[i]
  redis.call('ZREM', KEYS[1], raw)
  if tonumber(due[i + 1]) % 1 ~= 0 then
    -- The consuming end: a task that was at the front before it had to step aside.
    redis.call('RPUSH', KEYS[2], raw)
  else
    -- The producing end, like a newly queued task: a retry waits its turn.
    redis.call('LPUSH', KEYS[2], raw)
  end
end
return #due / 2
