-- Records that a worker is alive until now + ttl, on the Redis server's clock.
-- KEYS[1] workers zset
-- ARGV[1] worker id
-- ARGV[2] heartbeat TTL in milliseconds
-- Returns: the expiry written (ms since epoch, Redis clock)
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local expiry = now_ms + tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], expiry, ARGV[1])
return expiry
