-- Extends a per-site lock only if the caller still owns it.
-- KEYS[1] site lock
-- ARGV[1] owner token
-- ARGV[2] new TTL in milliseconds
-- Returns: 1 if renewed, 0 if the lock is held by another owner or gone
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
end
return 0
