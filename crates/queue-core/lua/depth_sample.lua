-- Records a queue's pending count at this minute, for the dashboard's last-hour chart, and
-- keeps the last hour. One sample per minute: a second scheduler pass in the same minute
-- replaces the first.
-- KEYS[1] pending list
-- KEYS[2] depth history zset (member "<minute ms>:<count>", score = minute ms, Redis clock)
-- Returns: the pending count recorded
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local minute = now_ms - (now_ms % 60000)
local pending = redis.call('LLEN', KEYS[1])
redis.call('ZREMRANGEBYSCORE', KEYS[2], minute, minute)
redis.call('ZADD', KEYS[2], minute, minute .. ':' .. pending)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', minute - 3600000)
return pending
