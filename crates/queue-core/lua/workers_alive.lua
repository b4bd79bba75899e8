-- Lists workers whose heartbeat has not expired, on the Redis server's clock.
-- KEYS[1] workers zset
-- Returns: the ids of live workers
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
return redis.call('ZRANGEBYSCORE', KEYS[1], now_ms, '+inf')
