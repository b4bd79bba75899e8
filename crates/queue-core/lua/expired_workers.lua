-- Lists workers whose heartbeat has expired, on the Redis server's clock.
-- KEYS[1] workers zset
-- Returns: the ids of workers presumed dead
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. now_ms)
