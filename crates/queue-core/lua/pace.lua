-- Reserves the next turn to send a request to a host, spacing turns by an interval across every
-- worker, on the Redis server's clock.
-- KEYS[1] the host's pace key
-- ARGV[1] interval between requests to the host, in milliseconds
-- Returns: milliseconds to wait before sending (0 = now)
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local interval = tonumber(ARGV[1])
local next_turn = tonumber(redis.call('GET', KEYS[1]) or '0')
local turn = math.max(now_ms, next_turn)
-- The key outlives the reservations it holds by a margin, then vanishes by itself.
redis.call('SET', KEYS[1], turn + interval, 'PX', turn + interval - now_ms + 60000)
return turn - now_ms
