-- Takes up to ARGV[1] tasks from the queue into a worker's in-flight list in one atomic step:
-- the batched form of BLMOVE, with the same guarantee (a task is always in exactly one list).
-- Takes nothing while the queue is paused: the check and the move are one step, so no task
-- starts after a pause has been written.
-- KEYS[1] pending list
-- KEYS[2] in-flight list of the worker
-- KEYS[3] paused flag
-- ARGV[1] most tasks to take
-- Returns: the tasks taken, oldest first; or the integer -1 when the queue is paused
if redis.call('EXISTS', KEYS[3]) == 1 then
  return -1
end
local taken = {}
for _ = 1, tonumber(ARGV[1]) do
  local raw = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if not raw then break end
  taken[#taken + 1] = raw
end
return taken
