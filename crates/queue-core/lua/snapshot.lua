-- Reads, in one atomic step, every task Redis holds for this queue: pending, delayed and every
-- given worker's in-flight list (a task moving between them cannot be missed).
-- KEYS[1] delayed zset
-- KEYS[2] pending list
-- KEYS[3..] in-flight lists of every registered worker
-- Returns: all the messages
local all = redis.call('ZRANGE', KEYS[1], 0, -1)
for i = 2, #KEYS do
  for _, raw in ipairs(redis.call('LRANGE', KEYS[i], 0, -1)) do
    table.insert(all, raw)
  end
end
return all
