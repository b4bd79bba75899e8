-- Gives a dead worker's in-flight tasks back to the queue, or to the dead-letter list when a
-- task has now been recovered from crashed workers MAX_DELIVERIES times (a poison task that
-- kills whoever runs it). Checks the heartbeat again, so a worker that came back is left alone.
-- A requeued task carries `recovered`: how many times its worker died holding it.
-- KEYS[1] in-flight list of the dead worker
-- KEYS[2] pending list
-- KEYS[3] dead-letter list
-- KEYS[4] deliveries hash (task id -> times recovered)
-- KEYS[5] workers zset
-- ARGV[1] worker id
-- ARGV[2] MAX_DELIVERIES
-- ARGV[3] dead-letter cap
-- ARGV[4] failed_at (RFC 3339), for dead-letter entries
-- Returns: {requeued count, {poisoned messages}}
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local expiry = redis.call('ZSCORE', KEYS[5], ARGV[1])
if expiry and tonumber(expiry) >= now_ms then
  return {0, {}}
end
local requeued = 0
local poisoned = {}
while true do
  local raw = redis.call('RPOP', KEYS[1])
  if not raw then break end
  local id = raw
  local ok, task = pcall(cjson.decode, raw)
  local is_task = ok and type(task) == 'table' and type(task['task_id']) == 'string'
  if is_task then
    id = task['task_id']
  end
  local deliveries = redis.call('HINCRBY', KEYS[4], id, 1)
  if deliveries >= tonumber(ARGV[2]) then
    redis.call('HDEL', KEYS[4], id)
    local entry = cjson.encode({id = 'poison-' .. now_ms .. '-' .. (#poisoned + 1), task = raw,
      worker_id = ARGV[1], failed_at = ARGV[4],
      reason = 'poison task: its worker died ' .. deliveries .. ' times running it (MAX_DELIVERIES)'})
    redis.call('LPUSH', KEYS[3], entry)
    redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[3]) - 1)
    table.insert(poisoned, raw)
  else
    if is_task then
      -- Marked, so the next worker runs it alone: if it is what killed its worker, it takes no
      -- innocent task down with it next time.
      task['recovered'] = deliveries
      raw = cjson.encode(task)
    end
    -- The consuming end: a recovered task is taken next.
    redis.call('RPUSH', KEYS[2], raw)
    requeued = requeued + 1
  end
end
redis.call('ZREM', KEYS[5], ARGV[1])
return {requeued, poisoned}
