-- Extends a held slot's lease; a lease that already expired is not revived (its slot may have
-- been given to someone else).
-- KEYS[1] slots zset
-- ARGV[1] holder id
-- ARGV[2] lease TTL in milliseconds
-- Returns: 1 if renewed, 0 if the lease was gone
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expiry or tonumber(expiry) <= now_ms then
  return 0
end
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[2]), ARGV[1])
return 1
