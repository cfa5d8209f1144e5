-- StampedeCache :: invalidate_key.lua
--
-- Delete one entry and announce it. Run with
-- EVALSHA <sha> 2 KEYS[1] KEYS[2] ARGV[1] ARGV[2].
--
-- KEYS (share one hash tag {E}; built by the client, never here):
--   KEYS[1]  P{E}:v  entry string -> deleted
--   KEYS[2]  P{E}:l  lock string -> deliberately NOT deleted (see below)
--
-- ARGV (exactly 2):
--   ARGV[1]  shard channel for notices (non-empty; on a cluster, one in the
--            entry's slot: a script may only SPUBLISH there)
--   ARGV[2]  entry id E (non-empty, must not contain "|")
--
-- Effect: DEL KEYS[1]; SPUBLISH ARGV[1] "inval|E" (always, even if nothing
--   was deleted, so every process drops any local copy).
--
-- What is kept, and why:
--   * The lock (KEYS[2]) is kept: a computation already in flight keeps its
--     lock, so other workers keep waiting for it instead of starting a
--     second computation (which would be a stampede right after every
--     invalidation). That in-flight computation may still commit; its result
--     was started before the invalidation, so callers that need "nothing
--     computed before time T may be served" must bump the namespace
--     generation instead (which changes E and therefore every key).
--   * The fence counter (P{E}:f) is not touched (and not even passed): it
--     keeps issuing increasing tokens, so a zombie that commits late can
--     never overwrite a commit made with a token issued after it.
--   * The hot counter (P{E}:h) is left to expire on its own.
--
-- Reply: flat array, element 1 is the status string.
--   {"invalidated", deleted_count(i 0/1)}
--   Errors: "ERR stampede: invalidate_key: ..." for bad KEYS/ARGV.
-- No time is used by this script.

SCRIPT = 'invalidate_key'

if #KEYS ~= 2 then
  return bad('expected 2 KEYS (entry, lock), got ' .. #KEYS)
end
if #ARGV ~= 2 then
  return bad('expected 2 ARGV, got ' .. #ARGV)
end

local channel = ARGV[1]
if channel == '' then return bad('ARGV[1] channel must not be empty') end
local eid = ARGV[2]
if eid == '' or string.find(eid, '|', 1, true) then
  return bad('ARGV[2] entry id must be non-empty and must not contain "|", got ' .. shown(eid))
end

local deleted = redis.call('DEL', KEYS[1])
redis.call('SPUBLISH', channel, 'inval|' .. eid)
return {'invalidated', deleted}
