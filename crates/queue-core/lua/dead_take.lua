-- Removes exact entries from the dead-letter list and, for a retry, queues their tasks again:
-- one entry (an operator's retry or delete) or a batch of a sweep over the whole list.
-- KEYS[1] dead-letter list
-- KEYS[2] pending list
-- ARGV[1] the end to look for each entry from: 1 the head (the newest, where an operator
--         usually picks), -1 the tail (the oldest, where a sweep reads its batches)
-- ARGV[2k], ARGV[2k+1] for each entry: the entry exactly as stored, then the task to queue
--         ("" to only delete)
-- Returns: how many of the entries were there (and are gone now); an entry already taken by
-- someone else is skipped, its task not queued
local taken = 0
local from = tonumber(ARGV[1])
for i = 2, #ARGV, 2 do
  if redis.call('LREM', KEYS[1], from, ARGV[i]) == 1 then
    taken = taken + 1
    if ARGV[i + 1] ~= '' then
      redis.call('LPUSH', KEYS[2], ARGV[i + 1])
    end
  end
end
return taken
