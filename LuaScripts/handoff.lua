-- StampedeCache :: handoff.lua
--
-- "Computed, deliver but don't store." The leader computed a value that must
-- not be cached (a truncated or tool-call answer, or one whose commit
-- failed) but that the followers waiting for it at this moment may receive.
-- Writes a short-lived hand-off copy, releases the lock and wakes the
-- followers. The entry itself (KEYS[1]) is never written: nothing is cached.
-- Run with EVALSHA <sha> 3 KEYS[1] KEYS[2] KEYS[3] ARGV[1..6].
--
-- KEYS (share one hash tag {E}; built by the client, never here):
--   KEYS[1]  P{E}:v  entry string (never touched; passed so every script of
--                    an entry routes to one slot)
--   KEYS[2]  P{E}:l  lock string (holder's fence token)
--   KEYS[3]  P{E}:d  hand-off string: "hd1 <token>\n" .. value, PX ARGV[3]
--
-- ARGV (exactly 6):
--   ARGV[1]  fence token, decimal integer >= 1, no leading zeros, <= 15 digits
--   ARGV[2]  value bytes (opaque, binary safe, may be empty)
--   ARGV[3]  hand-off lifetime, integer ms >= 1 (how long followers that
--            were woken may take to read it)
--   ARGV[4]  shard channel for notices (non-empty; on a cluster, one in the
--            entry's slot: a script may only SPUBLISH there)
--   ARGV[5]  entry id E (non-empty, must not contain "|")
--   ARGV[6]  why it is not stored (opaque text, may be empty, may contain "|")
--
-- Effect: if GET KEYS[2] == token: SET KEYS[3] "hd1 <token>\n"..value PX
--   ARGV[3]; DEL KEYS[2]; SPUBLISH ARGV[4] "deliver|E|token|reason". Otherwise
--   (the lock expired or is someone else's, or is of another type) nothing
--   is written and nothing is published: the followers are waiting for the
--   newer holder, not for this computation.
--
-- Reply: flat array, element 1 is the status string.
--   {"delivered", 1}
--   {"not_owner", holder(s)}   holder = current lock value or "".
--   Errors: "ERR stampede: handoff: ..." for bad KEYS/ARGV.
-- No time is used by this script.

SCRIPT = 'handoff'

if #KEYS ~= 3 then
  return bad('expected 3 KEYS (entry, lock, hand-off), got ' .. #KEYS)
end
if #ARGV ~= 6 then
  return bad('expected 6 ARGV, got ' .. #ARGV)
end

local token_s = ARGV[1]
if not string.match(token_s, '^[1-9][0-9]*$') or #token_s > 15 then
  return bad('ARGV[1] token must be a decimal integer >= 1 without leading zeros, got ' .. shown(token_s))
end
local value = ARGV[2]
local life_s = ARGV[3]
if not string.match(life_s, '^[0-9]+$') or #life_s > 15 or tonumber(life_s) < 1 then
  return bad('ARGV[3] hand-off lifetime ms must be an integer >= 1, got ' .. shown(life_s))
end
local channel = ARGV[4]
if channel == '' then return bad('ARGV[4] channel must not be empty') end
local eid = ARGV[5]
if eid == '' or string.find(eid, '|', 1, true) then
  return bad('ARGV[5] entry id must be non-empty and must not contain "|", got ' .. shown(eid))
end

if redis.call('TYPE', KEYS[2])['ok'] ~= 'string' then
  return {'not_owner', ''}
end
local holder = redis.call('GET', KEYS[2])
if holder ~= token_s then
  return {'not_owner', holder or ''}
end

redis.call('SET', KEYS[3], 'hd1 ' .. token_s .. '\n' .. value, 'PX', life_s)
redis.call('DEL', KEYS[2])
redis.call('SPUBLISH', channel, 'deliver|' .. eid .. '|' .. token_s .. '|' .. ARGV[6])
return {'delivered', 1}
