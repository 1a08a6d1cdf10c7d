// The Lua scripts of the Redis store. Each touches one key (a cache's hash), so it runs on a
// Redis Cluster too. A hash holds the entries (fields starting 0x01 or 0xFF) and the cache's
// own fields, starting 0x00: `\0meta` (its record), `\0epoch` (which saved state this is),
// `\0d<field>` (a tombstone left by a recovery for a key its writer deleted) and `\0tombs`
// (there are tombstones).

/**
 * One batch of a save. KEYS[1] the hash; ARGV: expected epoch ('' when this process knows
 * none), mode ('delta' | 'merge' | 'reset'), the epoch to create, the record (or ''), the
 * number n of field/value pairs, the pairs, then the fields to delete.
 * Returns {status, epoch}: 'ok'; 'lost' (the hash is gone though this process knew it: Redis
 * lost it); 'recovered' (another process rewrote it after a loss this process has not seen).
 * The check and the writes are one atomic step.
 */
export const SAVE_SCRIPT = `
local key = KEYS[1]
local mode = ARGV[2]
local cur = redis.call('HGET', key, '\\0epoch')
if mode == 'reset' then
  redis.call('DEL', key)
  cur = ARGV[3]
  redis.call('HSET', key, '\\0epoch', cur)
elseif not cur then
  if ARGV[1] ~= '' then return {'lost', ''} end
  cur = ARGV[3]
  redis.call('HSET', key, '\\0epoch', cur)
elseif mode == 'delta' and cur ~= ARGV[1] and string.sub(cur, 1, 2) == 'r:' then
  return {'recovered', cur}
end
local n = tonumber(ARGV[5])
local tombs = redis.call('HEXISTS', key, '\\0tombs') == 1
if n > 0 then
  local args = {}
  for i = 6, 5 + 2 * n do args[#args + 1] = ARGV[i] end
  redis.call('HSET', key, unpack(args))
  if tombs then
    for i = 6, 5 + 2 * n, 2 do redis.call('HDEL', key, '\\0d' .. ARGV[i]) end
  end
end
if #ARGV > 5 + 2 * n then
  local dels = {}
  for i = 6 + 2 * n, #ARGV do dels[#dels + 1] = ARGV[i] end
  redis.call('HDEL', key, unpack(dels))
end
if ARGV[4] ~= '' then redis.call('HSET', key, '\\0meta', ARGV[4]) end
return {'ok', cur}
`;

/**
 * One batch of a recovery after Redis lost a cache: KEYS[1] the hash; ARGV: the epoch to create
 * if there is none, then counts of: the process's own sets (pairs, written over anything), its
 * own deletes (removed, with a tombstone so that no other process's copy brings them back),
 * and fills (pairs written only where Redis has neither the key nor its tombstone).
 * Returns the hash's epoch.
 */
export const RECOVER_SCRIPT = `
local key = KEYS[1]
local cur = redis.call('HGET', key, '\\0epoch')
if not cur then
  cur = ARGV[1]
  redis.call('HSET', key, '\\0epoch', cur)
end
local ns, nd, nf = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local i = 5
for j = 1, ns do
  redis.call('HSET', key, ARGV[i], ARGV[i + 1])
  redis.call('HDEL', key, '\\0d' .. ARGV[i])
  i = i + 2
end
for j = 1, nd do
  redis.call('HDEL', key, ARGV[i])
  redis.call('HSET', key, '\\0d' .. ARGV[i], '1')
  i = i + 1
end
if nd > 0 then redis.call('HSET', key, '\\0tombs', '1') end
for j = 1, nf do
  if redis.call('HEXISTS', key, ARGV[i]) == 0 and redis.call('HEXISTS', key, '\\0d' .. ARGV[i]) == 0 then
    redis.call('HSET', key, ARGV[i], ARGV[i + 1])
  end
  i = i + 2
end
if redis.call('HEXISTS', key, '\\0meta') == 0 then redis.call('HSET', key, '\\0meta', '{}') end
return cur
`;

/** Deletes a cache's saved state, leaving its epoch (ARGV[1]): "deleted", not "lost". */
export const DELETE_SCRIPT = `
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], '\\0epoch', ARGV[1])
return 1
`;
