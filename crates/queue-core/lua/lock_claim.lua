-- Takes a per-site lock for a run, or confirms and extends it if that run already holds it
-- (a redelivered task keeps its lock).
-- KEYS[1] site lock
-- ARGV[1] owner token (the run_id)
-- ARGV[2] TTL in milliseconds
-- Returns: 1 if the caller holds the lock now, 0 if another owner does
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
  return 1
end
if current then
  return 0
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', tonumber(ARGV[2]))
return 1
