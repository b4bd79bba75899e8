-- Deletes a per-site lock only if the caller owns it.
-- KEYS[1] site lock
-- ARGV[1] owner token
-- Returns: 1 if released, 0 if the lock is held by another owner or gone
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
