// The Lua scripts of the Redis store. Each touches the keys of one cache, which share a hash
// tag (one slot of a Redis Cluster): KEYS[1] its hash, KEYS[2] its change log, KEYS[3] its
// snapshot. The hash holds the entries (fields starting 0x01 or 0xFF) and the cache's own
// fields, starting 0x00: `\0meta` (its record), `\0epoch` (which saved state this is),
// `\0ver` (bumped by every script that changes entries), `\0d<field>` (a tombstone for a
// deleted key, left by a recovery and, for a day, by every save after one or after the save
// that made the hash from nothing), `\0tombs` (when that recovery or save last ran in this
// epoch, in seconds), `\0log` (the version since which the log is
// complete), `\0snap` (the snapshot that is current: "<id> <version> <parts> <bytes>
// <entries>") and `\0seen` (a copy of the record as these scripts wrote it).
//
// The hash is the whole truth; the snapshot only makes full loads fast. It holds the entries as
// they were at one version, packed as a cache file (parts `<id>:<n>` of the snapshot hash), and
// the log (a sorted set: field -> version of its last change) names every field changed since.
// So the hash now = the snapshot, then the log's fields as the hash has them now. An older
// depcache's save logs nothing, but it rewrites the record without its copy: a record that is
// not its copy means the log is not complete, and no snapshot is used or written until a save
// of these scripts has dropped it.

// A hash this process finds missing leaves no log or snapshot that could apply to a new one.
const FRESH_HASH = `
local function fresh(epoch)
  redis.call('DEL', KEYS[2], KEYS[3])
  redis.call('HSET', KEYS[1], '\\0epoch', epoch)
end
`;

// Whether a save that logs nothing (an older depcache's) wrote here since these scripts did.
const UNLOGGED = `
local function unlogged()
  local m = redis.call('HMGET', KEYS[1], '\\0meta', '\\0seen')
  return m[1] and m[1] ~= m[2]
end
`;

// How long after a write-back deletes leave tombstones: ample for every process that held a
// copy to reconnect and write it back, short enough that tombstones do not pile up.
const TOMBSTONE_DAYS = 1;

// Whether an epoch began after Redis lost a cache: a write-back ('r:') or a save that found
// nothing ('m:'). Processes that hold an older state may still have to write it back.
const AFTER_LOSS = `
local function afterLoss(epoch)
  local p = string.sub(epoch, 1, 2)
  return p == 'r:' or p == 'm:'
end
`;

// Bumps the version, and logs `fields` under it while the log is kept. Returns the version.
const LOG_CHANGES = `
local function logged(fields)
  local ver = redis.call('HINCRBY', KEYS[1], '\\0ver', 1)
  if #fields > 0 and redis.call('HEXISTS', KEYS[1], '\\0log') == 1 then
    local args = {}
    for _, f in ipairs(fields) do
      args[#args + 1] = ver
      args[#args + 1] = f
    end
    redis.call('ZADD', KEYS[2], unpack(args))
  end
  return ver
end
`;

/**
 * One batch of a save. KEYS: the hash, its log, its snapshot; ARGV: expected epoch ('' when
 * this process knows none), mode ('delta' | 'merge' | 'reset'), the epoch to create, the record
 * (or ''), the number n of field/value pairs, the pairs, then the fields to delete.
 * Returns {status, epoch, version, log size (-1: no log), current snapshot (or ''), 1 when
 * this batch made the hash (0 otherwise), 1 when an unlogged save had written since (0
 * otherwise: then any snapshot and log were dropped)}: 'ok';
 * 'lost' (the hash is gone though this process knew it: Redis lost it); 'recovered' (after a
 * loss this process has not seen, another process wrote it back or saved it anew from nothing).
 * The check and the writes are one atomic step.
 */
export const SAVE_SCRIPT = `${FRESH_HASH}${LOG_CHANGES}${UNLOGGED}${AFTER_LOSS}
local key = KEYS[1]
local mode = ARGV[2]
local cur = redis.call('HGET', key, '\\0epoch')
local made = 0
if mode == 'reset' then
  redis.call('DEL', key)
  cur = ARGV[3]
  fresh(cur)
elseif not cur then
  if ARGV[1] ~= '' then return {'lost', ''} end
  -- Made from nothing: 'm:', so that a process holding an older state sees a loss, not a reset.
  -- Such a process writes its copy back, so deletes from now on leave tombstones (see below).
  cur = 'm' .. string.sub(ARGV[3], 2)
  fresh(cur)
  redis.call('HSET', key, '\\0tombs', redis.call('TIME')[1])
  made = 1
elseif cur ~= ARGV[1] and afterLoss(cur) and (ARGV[1] ~= '' or (mode == 'delta' and string.sub(cur, 1, 2) == 'r:')) then
  return {'recovered', cur}
end
local foreign = 0
if unlogged() then
  foreign = 1
  redis.call('HDEL', key, '\\0log', '\\0snap')
  redis.call('DEL', KEYS[2], KEYS[3])
end
local n = tonumber(ARGV[5])
local tombs = redis.call('HGET', key, '\\0tombs')
local changed = {}
if n > 0 then
  local args = {}
  for i = 6, 5 + 2 * n do args[#args + 1] = ARGV[i] end
  redis.call('HSET', key, unpack(args))
  for i = 6, 5 + 2 * n, 2 do
    changed[#changed + 1] = ARGV[i]
    if tombs then redis.call('HDEL', key, '\\0d' .. ARGV[i]) end
  end
end
if #ARGV > 5 + 2 * n then
  local dels = {}
  for i = 6 + 2 * n, #ARGV do
    dels[#dels + 1] = ARGV[i]
    changed[#changed + 1] = ARGV[i]
  end
  redis.call('HDEL', key, unpack(dels))
  -- For a day after a write-back, another process may still write back a copy that holds
  -- these keys (every process that held one does as soon as it reconnects); later, tombstones
  -- would only pile up.
  if tombs and tonumber(redis.call('TIME')[1]) - (tonumber(tombs) or 0) < ${TOMBSTONE_DAYS * 86_400} then
    for _, f in ipairs(dels) do redis.call('HSET', key, '\\0d' .. f, '1') end
  end
end
if ARGV[4] ~= '' then redis.call('HSET', key, '\\0meta', ARGV[4], '\\0seen', ARGV[4]) end
local ver = logged(changed)
local logSize = -1
if redis.call('HEXISTS', key, '\\0log') == 1 then logSize = redis.call('ZCARD', KEYS[2]) end
return {'ok', cur, ver, logSize, redis.call('HGET', key, '\\0snap') or '', made, foreign}
`;

/**
 * One batch of a recovery after Redis lost a cache: KEYS[1] the hash; ARGV: the epoch to create
 * if there is none, then counts of: the process's own sets (pairs, written over anything), its
 * own deletes (removed, with a tombstone so that no other process's copy brings them back),
 * and fills (pairs written only where Redis has neither the key nor its tombstone).
 * Returns the hash's epoch.
 */
export const RECOVER_SCRIPT = `${FRESH_HASH}${LOG_CHANGES}
local key = KEYS[1]
local cur = redis.call('HGET', key, '\\0epoch')
if not cur then
  cur = ARGV[1]
  fresh(cur)
end
local ns, nd, nf = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local changed = {}
local i = 5
for j = 1, ns do
  redis.call('HSET', key, ARGV[i], ARGV[i + 1])
  redis.call('HDEL', key, '\\0d' .. ARGV[i])
  changed[#changed + 1] = ARGV[i]
  i = i + 2
end
for j = 1, nd do
  redis.call('HDEL', key, ARGV[i])
  redis.call('HSET', key, '\\0d' .. ARGV[i], '1')
  changed[#changed + 1] = ARGV[i]
  i = i + 1
end
-- From now on (for a while: see SAVE) every save's deletes leave tombstones too.
redis.call('HSET', key, '\\0tombs', redis.call('TIME')[1])
for j = 1, nf do
  if redis.call('HEXISTS', key, ARGV[i]) == 0 and redis.call('HEXISTS', key, '\\0d' .. ARGV[i]) == 0 then
    redis.call('HSET', key, ARGV[i], ARGV[i + 1])
    changed[#changed + 1] = ARGV[i]
  end
  i = i + 2
end
if redis.call('HEXISTS', key, '\\0meta') == 0 then redis.call('HSET', key, '\\0meta', '{}', '\\0seen', '{}') end
logged(changed)
return cur
`;

/** Deletes a cache's saved state, leaving its epoch (ARGV[1]): "deleted", not "lost". */
export const DELETE_SCRIPT = `
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HSET', KEYS[1], '\\0epoch', ARGV[1])
return 1
`;

/**
 * What a full load reads first, atomically: {epoch, record present (1/0), version, current
 * snapshot or nil, then field, value, ... for every field the log names since the snapshot's
 * version (nil value: deleted)}. No snapshot is offered when its log names more fields than
 * half its entries: reading the hash is then about as quick.
 */
export const HEAD_SCRIPT = `
local h = redis.call('HMGET', KEYS[1], '\\0epoch', '\\0meta', '\\0ver', '\\0snap', '\\0seen')
local out = {h[1], h[2] and 1 or 0, h[3] or '0', h[4]}
if not h[4] then return out end
if h[2] ~= h[5] then
  out[4] = false -- an unlogged save since: the log is not complete
  return out
end
local ver, entries = string.match(h[4], '^%S+ (%d+) %d+ %d+ (%d+)$')
if not ver or redis.call('ZCOUNT', KEYS[2], '(' .. ver, '+inf') > tonumber(entries) / 2 then
  out[4] = false
  return out
end
for _, f in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], '(' .. ver, '+inf')) do
  out[#out + 1] = f
  out[#out + 1] = redis.call('HGET', KEYS[1], f)
end
return out
`;

/**
 * Before a snapshot of the hash at version ARGV[2] (epoch ARGV[1]) is written: keeps the log
 * from that version on. 'ok', or 'moved' when that state is gone or its changes since were not
 * logged.
 */
export const SNAPSHOT_BEGIN_SCRIPT = `${UNLOGGED}
if redis.call('HGET', KEYS[1], '\\0epoch') ~= ARGV[1] then return 'moved' end
if unlogged() then return 'unlogged' end
local at = tonumber(ARGV[2])
local since = redis.call('HGET', KEYS[1], '\\0log')
if since then
  if tonumber(since) > at then return 'moved' end
  return 'ok'
end
if tonumber(redis.call('HGET', KEYS[1], '\\0ver') or '0') ~= at then return 'moved' end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[1], '\\0log', ARGV[2])
return 'ok'
`;

/**
 * Makes a written snapshot current: ARGV epoch, version, id, parts, bytes, entries. Only while
 * the hash is still that state or a later one whose changes the log holds, every part is there,
 * and no newer snapshot is current; then the older parts and the log up to its version go.
 * Otherwise its own parts go. 'ok' or why not.
 */
export const SNAPSHOT_COMMIT_SCRIPT = `${UNLOGGED}
local at, id, parts = tonumber(ARGV[2]), ARGV[3], tonumber(ARGV[4])
local function drop(why)
  for i = 0, parts - 1 do redis.call('HDEL', KEYS[3], id .. ':' .. i) end
  return why
end
if redis.call('HGET', KEYS[1], '\\0epoch') ~= ARGV[1] then return drop('moved') end
local since = redis.call('HGET', KEYS[1], '\\0log')
if not since or tonumber(since) > at or unlogged() then return drop('unlogged') end
if tonumber(redis.call('HGET', KEYS[1], '\\0ver') or '0') < at then return drop('moved') end
local current = redis.call('HGET', KEYS[1], '\\0snap')
if current and tonumber(string.match(current, '^%S+ (%d+)') or '0') > at then return drop('older') end
for i = 0, parts - 1 do
  if redis.call('HEXISTS', KEYS[3], id .. ':' .. i) == 0 then return drop('incomplete') end
end
redis.call('HSET', KEYS[1], '\\0snap', id .. ' ' .. ARGV[2] .. ' ' .. ARGV[4] .. ' ' .. ARGV[5] .. ' ' .. ARGV[6])
local prefix = id .. ':'
for _, f in ipairs(redis.call('HKEYS', KEYS[3])) do
  if string.sub(f, 1, #prefix) ~= prefix then redis.call('HDEL', KEYS[3], f) end
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[2])
return 'ok'
`;
