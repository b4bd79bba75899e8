-- One queue's figures for GET /jobs/queue/status in one round trip: its lists and sets, the
-- workers whose heartbeat is current (on the Redis server's clock) and every registered worker
-- (whose in-flight lists the caller counts next: their keys are not known before this).
-- KEYS[1] workers zset
-- KEYS[2] pending list
-- KEYS[3] dead-letter list
-- KEYS[4] paused flag
-- KEYS[5] delayed zset
-- Returns: {pending, dead, paused (0 or 1), delayed, live worker ids, registered worker ids}
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
return {
  redis.call('LLEN', KEYS[2]),
  redis.call('LLEN', KEYS[3]),
  redis.call('EXISTS', KEYS[4]),
  redis.call('ZCARD', KEYS[5]),
  redis.call('ZRANGEBYSCORE', KEYS[1], now_ms, '+inf'),
  redis.call('ZRANGE', KEYS[1], 0, -1),
}
