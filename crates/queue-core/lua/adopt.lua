-- Replaces a hand-written task in a worker's in-flight list with its completed form (run_id and
-- task_id filled in), so that if the task is requeued or recovered it resumes the same run
-- instead of starting a second one.
-- KEYS[1] in-flight list of the worker
-- ARGV[1] the task exactly as it was dequeued
-- ARGV[2] the completed task JSON
-- Returns: 1 if the task was in flight and was replaced, 0 otherwise
if redis.call('LREM', KEYS[1], -1, ARGV[1]) == 0 then
  return 0
end
redis.call('LPUSH', KEYS[1], ARGV[2])
return 1
