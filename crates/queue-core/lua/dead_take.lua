-- Removes one exact entry from the dead-letter list and, for a retry, queues its task again.
-- KEYS[1] dead-letter list
-- KEYS[2] pending list
-- ARGV[1] the dead-letter entry exactly as stored
-- ARGV[2] the task to queue ("" to only delete)
-- Returns: 1 if the entry was there (and is gone now), 0 if not
if redis.call('LREM', KEYS[1], 1, ARGV[1]) == 0 then
  return 0
end
if ARGV[2] ~= '' then
  redis.call('LPUSH', KEYS[2], ARGV[2])
end
return 1
