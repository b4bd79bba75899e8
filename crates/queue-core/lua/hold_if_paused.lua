-- Follows a blocking BLMOVE (which cannot check anything): if the queue was paused while the
-- worker waited, the task it just took goes back to the consuming end of the queue, untouched,
-- so it is the first to run on resume and nothing starts while paused.
-- KEYS[1] in-flight list of the worker
-- KEYS[2] pending list
-- KEYS[3] paused flag
-- ARGV[1] the task as BLMOVE returned it
-- Returns: 1 if the task was handed back (paused), 0 if the worker keeps it
if redis.call('EXISTS', KEYS[3]) == 0 then
  return 0
end
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[1])
end
return 1
