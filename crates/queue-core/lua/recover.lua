-- Gives a dead worker's in-flight tasks back to the queue, or to the dead-letter list when the
-- evidence says a task is poison (it kills whoever runs it). Checks the heartbeat again, so a
-- worker that came back is left alone.
--
-- Blame: a worker's death counts against a task only when it points at that task: every other
-- worker death recorded in the last ARGV[5] ms also held it. Deaths of workers that were not
-- running the task (an operator killing workers, a host going down, the OOM killer on a busy
-- fleet) explain the death without it, so nobody is blamed. A task blamed MAX_DELIVERIES
-- times is poison. Whatever the blame, a task whose workers died 3 × MAX_DELIVERIES times is
-- dead-lettered too, so a poison task cannot go round forever on a fleet that also dies of
-- other causes.
-- A requeued task carries `recovered`: how many of its workers died holding it; the next
-- worker runs it alone, so if it is what killed its worker it takes no innocent task down.
-- KEYS[1] in-flight list of the dead worker
-- KEYS[2] pending list
-- KEYS[3] dead-letter list
-- KEYS[4] deliveries hash (task id -> deaths blamed on it)
-- KEYS[5] workers zset
-- KEYS[6] deaths zset (JSON {worker, at, tasks} -> ms): recent worker deaths
-- ARGV[1] worker id
-- ARGV[2] MAX_DELIVERIES
-- ARGV[3] dead-letter cap
-- ARGV[4] failed_at (RFC 3339), for dead-letter entries
-- ARGV[5] blame window in ms
-- Returns: {requeued count, {poisoned messages}, {their reasons}}
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local expiry = redis.call('ZSCORE', KEYS[5], ARGV[1])
if expiry and tonumber(expiry) >= now_ms then
  return {0, {}, {}}
end
local max = tonumber(ARGV[2])
local raws = redis.call('LRANGE', KEYS[1], 0, -1)
local ids, tasks = {}, {}
for i, raw in ipairs(raws) do
  local ok, task = pcall(cjson.decode, raw)
  if ok and type(task) == 'table' and type(task['task_id']) == 'string' then
    ids[i], tasks[i] = task['task_id'], task
  else
    ids[i] = raw
  end
end
-- The other recent deaths, each as the set of tasks its worker held.
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', now_ms - tonumber(ARGV[5]))
local others = {}
for _, member in ipairs(redis.call('ZRANGE', KEYS[6], 0, -1)) do
  local ok, death = pcall(cjson.decode, member)
  if ok and type(death) == 'table' and type(death['tasks']) == 'table' then
    local held = {}
    for _, id in ipairs(death['tasks']) do held[id] = true end
    table.insert(others, held)
  end
end
if #raws > 0 then
  redis.call('ZADD', KEYS[6], now_ms, cjson.encode({worker = ARGV[1], at = now_ms, tasks = ids}))
  -- Bounded even if a whole fleet dies at once.
  redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -1001)
end
local requeued = 0
local poisoned, reasons = {}, {}
-- Oldest first (the in-flight list grows at its head).
for i = #raws, 1, -1 do
  local raw, id, task = raws[i], ids[i], tasks[i]
  local explained = false
  for _, held in ipairs(others) do
    if not held[id] then explained = true break end
  end
  local blamed
  if explained then
    blamed = tonumber(redis.call('HGET', KEYS[4], id) or '0')
  else
    blamed = redis.call('HINCRBY', KEYS[4], id, 1)
  end
  local deaths = blamed
  if task then deaths = (tonumber(task['recovered']) or 0) + 1 end
  local reason = nil
  if blamed >= max then
    reason = 'poison task: its worker died ' .. blamed ..
      ' times running it, with no other worker dying meanwhile (MAX_DELIVERIES)'
  elseif deaths >= 3 * max then
    reason = 'poison task: ' .. deaths .. ' workers died holding it (3 x MAX_DELIVERIES)'
  end
  if reason then
    redis.call('HDEL', KEYS[4], id)
    local entry = cjson.encode({id = 'poison-' .. now_ms .. '-' .. (#poisoned + 1), task = raw,
      worker_id = ARGV[1], failed_at = ARGV[4], reason = reason})
    redis.call('LPUSH', KEYS[3], entry)
    redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[3]) - 1)
    table.insert(poisoned, raw)
    table.insert(reasons, reason)
  else
    if task then
      task['recovered'] = deaths
      raw = cjson.encode(task)
    end
    -- The consuming end: a recovered task is taken next.
    redis.call('RPUSH', KEYS[2], raw)
    requeued = requeued + 1
  end
end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[5], ARGV[1])
return {requeued, poisoned, reasons}
