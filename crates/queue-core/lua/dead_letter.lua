-- Moves a task that cannot be processed from the in-flight list to the dead-letter list.
-- KEYS[1] in-flight list of the worker
-- KEYS[2] dead-letter list
-- ARGV[1] the task exactly as it was dequeued
-- ARGV[2] dead-letter entry JSON (task, reason, failed_at)
-- ARGV[3] cap on the dead-letter list length; the oldest entries beyond it are trimmed
-- Returns: the dead-letter list length after the push
redis.call('LREM', KEYS[1], -1, ARGV[1])
redis.call('LPUSH', KEYS[2], ARGV[2])
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[3]) - 1)
return redis.call('LLEN', KEYS[2])
