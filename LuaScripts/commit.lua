-- StampedeCache :: commit.lua
--
-- Fenced write of a computed value. Accepts the write iff the caller's fence
-- token is not older than the entry's committed fence and was actually
-- issued by the fence counter. Releases the lock if the caller holds it
-- (also on rejection: a zombie must not keep the lock) and announces the
-- accepted commit on a pub/sub channel.
-- Run with EVALSHA <sha> 3 KEYS[1] KEYS[2] KEYS[3] ARGV[1..10].
--
-- KEYS (share one hash tag {E}; built by the client, never here):
--   KEYS[1]  P{E}:v  entry STRING: "sc2 <fu> <su> <ct> <cms> <fence>\n" .. value,
--                    key expiry (PEXPIREAT) = retention, at least su
--   KEYS[2]  P{E}:l  lock string (holder's fence token)
--   KEYS[3]  P{E}:f  fence counter
--
-- ARGV (exactly 10; integers are plain decimal digits, at most 15 of them):
--   ARGV[1]   fence token, decimal integer >= 1, no leading zeros
--   ARGV[2]   value bytes (opaque, binary safe, may be empty)
--   ARGV[3]   fresh-for, integer ms >= 1
--   ARGV[4]   stale-for, integer ms >= 0 (how long after fresh-until the
--             value may still be served: su = fu + stale)
--   ARGV[5]   jitter fraction, decimal float in [0, 0.5]
--   ARGV[6]   uniform random number in [0,1), decimal float, from the client
--   ARGV[7]   measured compute time, integer ms >= 0 (stored as cms, for XFetch)
--   ARGV[8]   shard channel for notices (non-empty; on a cluster, one in the
--            entry's slot: a script may only SPUBLISH there)
--   ARGV[9]   entry id E (non-empty, must not contain "|")
--   ARGV[10]  fence retention, integer ms >= 1
--
-- Time: the only clock is redis.call('TIME'), as ms = s*1000 + floor(us/1000).
-- Jitter only shortens freshness:
--   fresh' = max(1, floor(fresh * (1 - jitter * rand)))
--   fu = now + fresh' ; su = fu + stale   (so su >= fu > now)
--
-- entry.fence is read from the header with GETRANGE KEYS[1] 0 127; a missing
-- entry, one whose header is not valid, or a key of another type counts as
-- fence 0 (and is simply overwritten). A lock key of another type is not
-- owned; a fence key of another type counts as missing.
-- Accept iff token >= entry.fence
--        and (KEYS[3] missing or token <= GET KEYS[3]).
-- On accept: SET KEYS[1] "sc2 <fu> <su> <now> <cms> <token>\n"..value PXAT su;
--   DEL KEYS[2] if it holds this token; keep KEYS[3] (if it exists) alive
--   for at least (su - now) + fence retention; SPUBLISH ARGV[8] "done|E|token".
-- On reject: DEL KEYS[2] if it holds this token; nothing is published.
--
-- Reply: flat array, element 1 is the status string. (s) bulk string,
-- (i) integer; times are epoch ms of the Redis server clock.
--   {"ok",       fu(i), su(i), now(i), released(i 0/1)}
--   {"rejected", reason(s), current_fence(i), now(i)}
--       reason "stale_token":   token < entry.fence (a newer commit exists)
--       reason "unknown_token": token > fence counter (never issued)
--       current_fence is the entry's committed fence (0 if no valid entry).
--   Errors: "ERR stampede: commit: ..." for bad KEYS/ARGV.

SCRIPT = 'commit'

if #KEYS ~= 3 then
  return bad('expected 3 KEYS (entry, lock, fence), got ' .. #KEYS)
end
if #ARGV ~= 10 then
  return bad('expected 10 ARGV, got ' .. #ARGV)
end

local token_s = ARGV[1]
if not string.match(token_s, '^[1-9][0-9]*$') or #token_s > 15 then
  return bad('ARGV[1] token must be a decimal integer >= 1 without leading zeros, got ' .. shown(token_s))
end
local token = tonumber(token_s)
local value = ARGV[2]
local fresh = int_arg(3, 1)
if not fresh then return bad('ARGV[3] fresh-for ms must be an integer >= 1, got ' .. shown(ARGV[3])) end
local stale = int_arg(4, 0)
if not stale then return bad('ARGV[4] stale-for ms must be an integer >= 0, got ' .. shown(ARGV[4])) end
local jitter = num_arg(5)
if not jitter or jitter < 0 or jitter > 0.5 then return bad('ARGV[5] jitter must be a number in [0,0.5], got ' .. shown(ARGV[5])) end
local jrand = num_arg(6)
if not jrand or jrand < 0 or jrand >= 1 then return bad('ARGV[6] random must be a number in [0,1), got ' .. shown(ARGV[6])) end
local cms = int_arg(7, 0)
if not cms then return bad('ARGV[7] compute ms must be an integer >= 0, got ' .. shown(ARGV[7])) end
local channel = ARGV[8]
if channel == '' then return bad('ARGV[8] channel must not be empty') end
local eid = ARGV[9]
if eid == '' or string.find(eid, '|', 1, true) then
  return bad('ARGV[9] entry id must be non-empty and must not contain "|", got ' .. shown(eid))
end
local fence_ret = int_arg(10, 1)
if not fence_ret then return bad('ARGV[10] fence retention ms must be an integer >= 1, got ' .. shown(ARGV[10])) end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

-- Committed fence from the header (the header is at most 90 bytes). A
-- missing or corrupt entry, or a key of another type, counts as fence 0 and
-- is simply overwritten.
local function is_string(key)
  return redis.call('TYPE', key)['ok'] == 'string'
end
local e_fence = 0
if is_string(KEYS[1]) then
  local head = redis.call('GETRANGE', KEYS[1], 0, 127)
  local sfu, ssu, sct, scms, sfence = string.match(head, '^sc2 (%d+) (%d+) (%d+) (%d+) (%d+)\n')
  if sfence and #sfu <= 16 and #ssu <= 16 and #sct <= 16 and #scms <= 16 and #sfence <= 16 then
    local f = tonumber(sfence)
    if f <= 9007199254740991 and tonumber(sfu) <= 9007199254740991 and tonumber(ssu) <= 9007199254740991
       and tonumber(sct) <= 9007199254740991 and tonumber(scms) <= 9007199254740991 then
      e_fence = f
    end
  end
end
local counter = nil
if is_string(KEYS[3]) then counter = tonumber(redis.call('GET', KEYS[3])) end
local owns = is_string(KEYS[2]) and (redis.call('GET', KEYS[2]) == token_s)

local reason = nil
if token < e_fence then
  reason = 'stale_token'
elseif counter ~= nil and token > counter then
  reason = 'unknown_token'
end

if reason then
  if owns then redis.call('DEL', KEYS[2]) end
  return {'rejected', reason, e_fence, now}
end

local fresh_eff = math.floor(fresh * (1 - jitter * jrand))
if fresh_eff < 1 then fresh_eff = 1 end
local fu = now + fresh_eff
local su = fu + stale

local header = 'sc2 ' .. fmtint(fu) .. ' ' .. fmtint(su) .. ' ' .. fmtint(now) .. ' ' .. fmtint(cms) .. ' ' .. token_s .. '\n'
redis.call('SET', KEYS[1], header .. value, 'PXAT', fmtint(su))

local released = 0
if owns then
  redis.call('DEL', KEYS[2])
  released = 1
end

-- The fence counter must outlive the entry (it is never recreated here: a
-- missing counter is re-seeded from entry.fence at the next issuance).
local want = (su - now) + fence_ret
local pttl = redis.call('PTTL', KEYS[3])
if pttl == -1 or (pttl >= 0 and pttl < want) then
  redis.call('PEXPIRE', KEYS[3], want)
end

redis.call('SPUBLISH', channel, 'done|' .. eid .. '|' .. token_s)

return {'ok', fu, su, now, released}
