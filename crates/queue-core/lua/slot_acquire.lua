-- Takes one of a limited number of slots if one is free, dropping leases that expired first
-- (a crashed holder's slot comes back by itself). Scored on the Redis server's clock.
-- KEYS[1] slots zset (holder id -> lease expiry, ms)
-- ARGV[1] holder id
-- ARGV[2] capacity
-- ARGV[3] lease TTL in milliseconds
-- Returns: 1 if the slot is held now, 0 if all slots are taken
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now_ms)
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then
  redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[3]), ARGV[1])
  return 1
end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  return 0
end
redis.call('ZADD', KEYS[1], now_ms + tonumber(ARGV[3]), ARGV[1])
return 1
