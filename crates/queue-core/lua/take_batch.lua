-- Takes up to ARGV[1] tasks from the queue into a worker's in-flight list in one atomic step:
-- the batched form of BLMOVE, with the same guarantee (a task is always in exactly one list).
-- KEYS[1] pending list
-- KEYS[2] in-flight list of the worker
-- ARGV[1] most tasks to take
-- Returns: the tasks taken, oldest first
local taken = {}
for _ = 1, tonumber(ARGV[1]) do
  local raw = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if not raw then break end
  taken[#taken + 1] = raw
end
return taken
