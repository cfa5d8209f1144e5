-- StampedeCache :: release.lua
--
-- Compare-and-delete of the compute lock (abort after a failed or abandoned
-- computation). A worker can only delete a lock that holds its own token.
-- Run with EVALSHA <sha> 2 KEYS[1] KEYS[2] ARGV[1..5].
--
-- KEYS (share one hash tag {E}; built by the client, never here):
--   KEYS[1]  P{E}:v  entry string (never written; its header's servable-until
--                    su bounds the fail-safe hold, see ARGV[6])
--   KEYS[2]  P{E}:l  lock string (holder's fence token)
--
-- ARGV (5, or 6 with the optional hold):
--   ARGV[1]  fence token, decimal integer >= 1, no leading zeros
--   ARGV[2]  shard channel for notices (non-empty; on a cluster, one in the
--            entry's slot: a script may only SPUBLISH there)
--   ARGV[3]  entry id E (non-empty, must not contain "|")
--   ARGV[4]  failure message (opaque, may be empty, may contain "|")
--   ARGV[5]  "0" = silent release, "1" = publish a failure notice that a
--            retry may fix ("fail"), "2" = publish a failure notice that a
--            retry cannot fix ("fatal": followers must not try again)
--   ARGV[6]  optional fail-safe hold, integer ms >= 0 (default 0). When > 0
--            the lock is not deleted but kept (still holding this token) for
--            that long, so no worker retries a failing computation before it
--            expires: stale values keep being served meanwhile (FusionCache's
--            "fail-safe throttle"). The hold never outlasts the stale copy:
--            it is cut to su - now (su from KEYS[1]'s "sc2" header, on the
--            server clock), and with no servable copy the lock is deleted, so
--            no caller waits on a throttle with nothing to serve.
--
-- Effect: if GET KEYS[2] == token then DEL KEYS[2] (or PEXPIRE it to the
--   hold) and, if ARGV[5] == "1",
--   SPUBLISH ARGV[2] "fail|E|token|message" (or "fatal|E|token|message").
--   Otherwise (including a lock key of another type) nothing is written and
--   nothing is published.
--
-- Reply: flat array, element 1 is the status string.
--   {"released", 1}
--   {"not_owner", holder(s)}   holder = current lock value (the holder's
--                              token as a decimal string) or "" if no lock.
--   Errors: "ERR stampede: release: ..." for bad KEYS/ARGV.
-- Time (only for the hold): redis.call('TIME'), ms = s*1000 + floor(us/1000).

SCRIPT = 'release'

if #KEYS ~= 2 then
  return bad('expected 2 KEYS (entry, lock), got ' .. #KEYS)
end
if #ARGV ~= 5 and #ARGV ~= 6 then
  return bad('expected 5 or 6 ARGV, got ' .. #ARGV)
end

local token_s = ARGV[1]
if not string.match(token_s, '^[1-9][0-9]*$') or #token_s > 15 then
  return bad('ARGV[1] token must be a decimal integer >= 1 without leading zeros, got ' .. shown(token_s))
end
local channel = ARGV[2]
if channel == '' then return bad('ARGV[2] channel must not be empty') end
local eid = ARGV[3]
if eid == '' or string.find(eid, '|', 1, true) then
  return bad('ARGV[3] entry id must be non-empty and must not contain "|", got ' .. shown(eid))
end
local message = ARGV[4]
local publish
local kind = 'fail'
if ARGV[5] == '1' then publish = true
elseif ARGV[5] == '2' then publish = true; kind = 'fatal'
elseif ARGV[5] == '0' then publish = false
else return bad('ARGV[5] publish flag must be "0", "1" or "2", got ' .. shown(ARGV[5])) end

local hold = 0
if #ARGV == 6 then
  if not string.match(ARGV[6], '^[0-9]+$') or #ARGV[6] > 15 then
    return bad('ARGV[6] hold ms must be an integer >= 0, got ' .. shown(ARGV[6]))
  end
  hold = tonumber(ARGV[6])
end

if redis.call('TYPE', KEYS[2])['ok'] ~= 'string' then
  return {'not_owner', ''}
end
local holder = redis.call('GET', KEYS[2])
if holder ~= token_s then
  return {'not_owner', holder or ''}
end

-- The hold ends when the stale copy ends (never past the header's su).
if hold > 0 then
  local su = nil
  if redis.call('TYPE', KEYS[1])['ok'] == 'string' then
    local head = redis.call('GETRANGE', KEYS[1], 0, 127)
    local ssu = string.match(head, '^sc2 %d+ (%d+) %d+ %d+ %d+\n')
    if ssu and #ssu <= 16 then su = tonumber(ssu) end
  end
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  if su == nil or su <= now then
    hold = 0
  elseif su - now < hold then
    hold = su - now
  end
end

if hold > 0 then
  redis.call('PEXPIRE', KEYS[2], hold)
else
  redis.call('DEL', KEYS[2])
end
if publish then
  redis.call('SPUBLISH', channel, kind .. '|' .. eid .. '|' .. token_s .. '|' .. message)
end
return {'released', 1}
