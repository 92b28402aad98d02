/**
 * Lua for the Redis adapters, as string constants so the compiled output needs no file copying.
 * Every script touches keys of one hash tag only, so it also runs on Redis Cluster; the one
 * exception is the append's optional fourth key, the id index (see APPEND_LUA).
 */

/** RFC 3339 UTC with milliseconds and `Z` from epoch ms (days-to-civil, H. Hinnant). */
const ISO_FN = `
local function iso(ms)
  local s = math.floor(ms / 1000)
  local msr = ms - s * 1000
  local days = math.floor(s / 86400)
  local sod = s - days * 86400
  local hh = math.floor(sod / 3600)
  local mi = math.floor((sod - hh * 3600) / 60)
  local ss = sod - hh * 3600 - mi * 60
  local z = days + 719468
  local era = math.floor(z / 146097)
  local doe = z - era * 146097
  local yoe = math.floor((doe - math.floor(doe / 1460) + math.floor(doe / 36524) - math.floor(doe / 146096)) / 365)
  local y = yoe + era * 400
  local doy = doe - (365 * yoe + math.floor(yoe / 4) - math.floor(yoe / 100))
  local mp = math.floor((5 * doy + 2) / 153)
  local d = doy - math.floor((153 * mp + 2) / 5) + 1
  local m = mp + 3
  if mp >= 10 then m = mp - 9 end
  if m <= 2 then y = y + 1 end
  return string.format('%04d-%02d-%02dT%02d:%02d:%02d.%03dZ', y, m, d, hh, mi, ss, msr)
end

local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
`;

/** Reads the `at` field of one XRANGE entry. */
const FIELD_FN = `
local function field(entry, name)
  local f = entry[2]
  for i = 1, #f, 2 do
    if f[i] == name then return f[i + 1] end
  end
  return nil
end
`;

/**
 * First held seq whose `at` >= target, or nil. received_at is monotonic per region and the
 * fixed-format ISO strings compare as times, so a binary search over seq works; each probe takes
 * the first entry at or after the probed seq, which tolerates holes.
 */
const SEARCH_FN = `${FIELD_FN}
local function first_at_or_after(log, target)
  local first = redis.call('XRANGE', log, '-', '+', 'COUNT', 1)[1]
  if not first then return nil end
  local last = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)[1]
  if field(last, 'at') < target then return nil end
  local lo = tonumber(string.match(first[1], '^(%d+)'))
  local hi = tonumber(string.match(last[1], '^(%d+)'))
  -- invariant: the answer is in [lo, hi] and the entry at hi has at >= target
  while lo < hi do
    local mid = math.floor((lo + hi) / 2)
    local e = redis.call('XRANGE', log, mid .. '-0', '+', 'COUNT', 1)[1]
    local eseq = tonumber(string.match(e[1], '^(%d+)'))
    if field(e, 'at') >= target then
      hi = eseq
    else
      lo = eseq + 1
    end
  end
  return lo
end
`;

/**
 * Append one alert version, all or nothing.
 * KEYS: meta, log, versions-of-id, and optionally the id index `<prefix>alert:<id>` (which region
 * the id belongs to): given, it is checked and claimed in the same atomic step, saving a round
 * trip per alert; it lies outside the region's hash tag, so on Redis Cluster it is claimed by a
 * separate command before the script instead. ARGV: candidate epoch, modified, created, issuer
 * state, revoked ('1'|'0'), content hash, body, visibility key ('' = none, then no `k` field),
 * region, retention bound ('' = none: entries older than the newest N are trimmed in this step).
 * Returns {'appended', seq, at, epoch} | {'duplicate', seq, at, epoch} | {'rejected', reason}.
 */
export const APPEND_LUA = `${ISO_FN}
local meta, log, vkey, ikey = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local modified, created, state, revoked, hash = ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
if ikey then
  local owner = redis.call('GET', ikey)
  if owner and owner ~= ARGV[9] then return {'rejected', 'field-changed'} end
  if not owner then redis.call('SET', ikey, ARGV[9]) end
end
local m = redis.call('HMGET', meta, 'epoch', 'last_ms')
-- a missing meta means a new log (or one that was lost): it gets the fresh epoch passed in
local epoch = m[1] or ARGV[1]
local mfield = 'm:' .. modified
local v = redis.call('HMGET', vkey, 'created', 'state', 'latest', 'revoked', mfield)
-- only the issuing state may touch the id, even with a modified already held (not an equivocation)
if v[1] and v[2] ~= state then return {'rejected', 'not-issuer'} end
if v[5] then
  local vh, vseq, vat = string.match(v[5], '^([^|]*)|([^|]*)|(.*)$')
  if vh == hash then return {'duplicate', tonumber(vseq), vat, epoch} end
  return {'rejected', 'equivocation'}
end
if v[1] then
  if v[1] ~= created then return {'rejected', 'field-changed'} end
  if v[4] == '1' then return {'rejected', 'after-revocation'} end
  if modified <= v[3] then return {'rejected', 'stale'} end
end
local at_ms = now_ms()
local last = tonumber(m[2] or '0')
if at_ms < last then at_ms = last end
local at = iso(at_ms)
if not m[1] then redis.call('HSET', meta, 'epoch', epoch) end
local seq = redis.call('HINCRBY', meta, 'seq', 1)
redis.call('HSET', meta, 'last_ms', at_ms)
if ARGV[8] and ARGV[8] ~= '' then
  redis.call('XADD', log, seq .. '-0', 'at', at, 'b', ARGV[7], 'k', ARGV[8])
else
  redis.call('XADD', log, seq .. '-0', 'at', at, 'b', ARGV[7])
end
-- the retention bound (ARGV[10], '' = none) holds at every append, in this same atomic step
if ARGV[10] and ARGV[10] ~= '' then
  local cut = seq - tonumber(ARGV[10]) + 1
  if cut > 1 then redis.call('XTRIM', log, 'MINID', cut .. '-0') end
end
if not v[1] then redis.call('HSET', vkey, 'created', created, 'state', state) end
redis.call('HSET', vkey, 'latest', modified, mfield, hash .. '|' .. seq .. '|' .. at)
if revoked == '1' then redis.call('HSET', vkey, 'revoked', '1') end
return {'appended', seq, at, epoch}
`;

/**
 * State and a page of the log in one round trip.
 * KEYS: meta, log. ARGV: first seq wanted, limit (0 = state only).
 * Returns {epoch|false, latest, earliest, entries}.
 */
export const READ_LUA = `
local m = redis.call('HMGET', KEYS[1], 'epoch', 'seq')
local first = redis.call('XRANGE', KEYS[2], '-', '+', 'COUNT', 1)[1]
local earliest = 0
if first then earliest = tonumber(string.match(first[1], '^(%d+)')) end
local entries = {}
local limit = tonumber(ARGV[2])
if limit > 0 then entries = redis.call('XRANGE', KEYS[2], ARGV[1] .. '-0', '+', 'COUNT', limit) end
return {m[1], tonumber(m[2] or '0'), earliest, entries}
`;

/**
 * A new epoch for the entries held, if the epoch is still the one expected (compare-and-set: of
 * several nodes that find the log rolled back, one rotates it and the others adopt its epoch).
 * KEYS: meta. ARGV: expected epoch, fresh epoch. Returns 1 when rotated, 0 when not.
 */
export const ROTATE_EPOCH_LUA = `
if redis.call('HGET', KEYS[1], 'epoch') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'epoch', ARGV[2])
return 1
`;

/** KEYS: log. ARGV: target ISO time. Returns the first seq received at or after it, or false. */
export const SEQ_AT_OR_AFTER_LUA = `${SEARCH_FN}
return first_at_or_after(KEYS[1], ARGV[1])
`;

/**
 * KEYS: meta, log. ARGV: maxAlerts ('' = none), age cut-off ISO ('' = none).
 * Drops every entry below the higher cut point; version hashes stay so idempotency survives.
 * Returns how many entries were dropped.
 */
export const TRIM_LUA = `${SEARCH_FN}
local latest = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0')
if latest == 0 then return 0 end
local cut = 0
if ARGV[1] ~= '' then cut = latest - tonumber(ARGV[1]) + 1 end
if ARGV[2] ~= '' then
  local s = first_at_or_after(KEYS[2], ARGV[2])
  if not s then s = latest + 1 end
  if s > cut then cut = s end
end
if cut <= 1 then return 0 end
return redis.call('XTRIM', KEYS[2], 'MINID', cut .. '-0')
`;

/**
 * Every held version of one alert, oldest first.
 * KEYS: meta, log, versions-of-id. Returns {epoch|false, entries}.
 */
export const VERSIONS_LUA = `
local fields = redis.call('HGETALL', KEYS[3])
local seqs = {}
for i = 1, #fields, 2 do
  if string.sub(fields[i], 1, 2) == 'm:' then
    local s = string.match(fields[i + 1], '^[^|]*|(%d+)|')
    if s then seqs[#seqs + 1] = tonumber(s) end
  end
end
table.sort(seqs)
local out = {}
for _, s in ipairs(seqs) do
  local e = redis.call('XRANGE', KEYS[2], s .. '-0', s .. '-0')[1]
  if e then out[#out + 1] = e end
end
return {redis.call('HGET', KEYS[1], 'epoch'), out}
`;

/**
 * Append audit records with the next n's, in order, all or nothing. Appends that arrive in the same
 * event-loop turn travel together (one script call instead of one per record).
 * KEYS: stream, counter. ARGV: record JSON, one per record. Returns {first n, at}.
 */
export const AUDIT_APPEND_LUA = `${ISO_FN}
local count = #ARGV
local last = redis.call('INCRBY', KEYS[2], count)
local first = last - count + 1
local at = iso(now_ms())
for i = 1, count do
  redis.call('XADD', KEYS[1], (first + i - 1) .. '-0', 'at', at, 'r', ARGV[i])
end
return {first, at}
`;

/** KEYS: stream, counter. ARGV: first n wanted, limit. Returns {top, entries}. */
export const AUDIT_READ_LUA = `
local top = tonumber(redis.call('GET', KEYS[2]) or '0')
local entries = {}
local limit = tonumber(ARGV[2])
if limit > 0 then entries = redis.call('XRANGE', KEYS[1], ARGV[1] .. '-0', '+', 'COUNT', limit) end
return {top, entries}
`;
