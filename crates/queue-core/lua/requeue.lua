-- Gives every task still in a worker's in-flight list back to the queue, at the consuming end
-- so they are taken next (used at shutdown, after in-flight work had its grace period).
-- KEYS[1] in-flight list of the worker
-- KEYS[2] pending list
-- Returns: the number of tasks moved
local moved = 0
while redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'RIGHT') do
  moved = moved + 1
end
return moved
