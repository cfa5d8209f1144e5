-- StampedeCache :: get_or_lock.lua
--
-- Slow path of a read: run only when the client's pipelined TIME + GET found
-- the entry missing, stale or due for an early refresh. Reads the entry and
-- takes the compute lock / refresh lease when the caller must compute.
-- Fresh hits never need this script (the client decides freshness from the
-- header and the server's TIME), and hits are not counted here any more
-- (see hot_touch.lua).
-- Run with EVALSHA <sha> 3 KEYS[1] KEYS[2] KEYS[3] ARGV[1..4].
--
-- KEYS (all three share one hash tag {E}; built by the client, never here):
--   KEYS[1]  P{E}:v  entry STRING: header .. value bytes, where the header is
--                    "sc2 <fu> <su> <ct> <cms> <fence>\n" (decimal integers:
--                    fresh-until epoch ms, servable-until epoch ms, created
--                    epoch ms, compute ms, fence token of the accepted
--                    commit). su = fu + the policy's staleFor: no answer is
--                    ever served at or past su. The key's expiry is the
--                    entry's *retention* (how long Redis keeps the bytes);
--                    it is at least su and may be longer (hot keys), but it
--                    never makes an entry servable. A valid header has every
--                    field <= 2^53-1, ct <= fu <= su, su - ct <= 316e9 ms
--                    (about 10 years, the policy's limit) and fence < 10^15.
--   KEYS[2]  P{E}:l  lock string: fence token (decimal) of the holder, PX lock TTL
--   KEYS[3]  P{E}:f  fence counter (decimal string, < 10^15)
--
-- ARGV (4, or 5 with the optional force flag; integers are plain decimal
-- digits, at most 15 of them):
--   ARGV[1]  lock TTL, integer ms >= 1
--   ARGV[2]  fence retention, integer ms >= 1 (KEYS[3] is kept alive at
--            least this long past the entry's retention)
--   ARGV[3]  XFetch early-refresh beta, decimal float >= 0 ("0" = off)
--   ARGV[4]  uniform random number in (0,1], decimal float, from the client
--            (used only by XFetch; Lua's math.random is never used)
--   ARGV[5]  optional "1" = force a refresh: a fresh entry is treated as
--            stale (the caller asked not to be served the cached answer),
--            so it gets the refresh lease or waits for its holder; "0"
--            (the default) = normal.
--
-- Time: the only clock is redis.call('TIME'), as ms = s*1000 + floor(us/1000).
-- Entry states: fresh now < fu; stale fu <= now < su; missing otherwise
-- (also when the key is still retained past su: its fence still counts).
--
-- Tokens: issued only when the lock is free, as max(counter, entry fence) + 1,
-- and written back to KEYS[3] (no INCR: a counter that is not a decimal
-- integer below 10^15 is corrupt and is reset above the entry's fence, so
-- every token is exact in a double and accepted by commit.lua).
--
-- Reply: flat array, element 1 is the status string. Types: (s) bulk
-- string, (i) integer. Integer times are epoch ms of the Redis server clock.
-- blob is the whole stored string (header + value, binary safe); the client
-- parses the header itself.
--   {"fresh",  blob(s), su(i), now(i)}
--   {"early",  blob(s), su(i), now(i), token(i)}
--       entry is still fresh, XFetch fired (beta > 0, cms > 0 and
--       now - cms*beta*ln(rand) >= fu) and this caller WON the refresh lease
--       (lock TTL = ARGV[1]): serve the value now and recompute in the
--       background with token. If XFetch fires but the lock is held, the
--       reply is plain "fresh".
--   {"stale",  blob(s), su(i), now(i), lease(i 0/1), token(i, 0 if no lease), lock_pttl(i)}
--       fu <= now < su. lease=1: caller holds the lock with token and
--       lock_pttl = ARGV[1]. lease=0: someone else holds it; lock_pttl is the
--       holder's remaining PTTL.
--   {"leader", token(i), lock_ttl_ms(i), now(i)}
--       no servable entry; caller holds the lock and must compute + commit.
--   {"wait",   holder_token(i), lock_pttl(i), now(i)}
--       no servable entry; another worker holds the lock (holder_token is 0
--       if the lock value is not a decimal token).
--   {"corrupt", reason(s), which(s)}
--       which = "value": KEYS[1] is not a string, or its header is not valid
--       ("bad header"), or it has no expiry ("no expiry").
--       which = "lock" / "fence": KEYS[2] / KEYS[3] is not a string.
--       Nothing was written; the client deletes exactly that key and calls
--       again (a valid entry is never deleted for a broken lock or fence).
--   Errors: "ERR stampede: get_or_lock: ..." for bad KEYS/ARGV.

SCRIPT = 'get_or_lock'

-- Header field: decimal digits, exact in a double (<= 2^53 - 1).
local MAX_EXACT = 9007199254740991
local MAX_SPAN = 316000000000 -- su - ct: the policy's 10-year limit plus slack
local TOKEN_LIMIT = 1000000000000000 -- tokens stay below 10^15 (15 digits)
local function hdr_int(s)
  if #s > 16 then return nil end
  local n = tonumber(s)
  if n > MAX_EXACT then return nil end
  return n
end

-- fu, su, ct, cms, fence of a valid "sc2" header, or nil.
local function parse_header(b)
  local a, b2, c, d, e = string.match(b, '^sc2 (%d+) (%d+) (%d+) (%d+) (%d+)\n')
  if not a then return nil end
  local fu, su, ct, cms, fence = hdr_int(a), hdr_int(b2), hdr_int(c), hdr_int(d), hdr_int(e)
  if not (fu and su and ct and cms and fence) then return nil end
  if ct > fu or fu > su or su - ct > MAX_SPAN or fence >= TOKEN_LIMIT - 1 then return nil end
  return fu, su, cms, fence
end

if #KEYS ~= 3 then
  return bad('expected 3 KEYS (entry, lock, fence), got ' .. #KEYS)
end
if #ARGV ~= 4 and #ARGV ~= 5 then
  return bad('expected 4 or 5 ARGV, got ' .. #ARGV)
end

local lock_ttl = int_arg(1, 1)
if not lock_ttl then return bad('ARGV[1] lock TTL ms must be an integer >= 1, got ' .. shown(ARGV[1])) end
local fence_ret = int_arg(2, 1)
if not fence_ret then return bad('ARGV[2] fence retention ms must be an integer >= 1, got ' .. shown(ARGV[2])) end
local beta = num_arg(3)
if not beta or beta < 0 then return bad('ARGV[3] early-refresh beta must be a finite number >= 0, got ' .. shown(ARGV[3])) end
local xrand = num_arg(4)
if not xrand or xrand <= 0 or xrand > 1 then return bad('ARGV[4] random must be a number in (0,1], got ' .. shown(ARGV[4])) end
local force = false
if #ARGV == 5 then
  if ARGV[5] == '1' then force = true
  elseif ARGV[5] ~= '0' then return bad('ARGV[5] force flag must be "0" or "1", got ' .. shown(ARGV[5])) end
end

-- Foreign types: say which key, write nothing (the client repairs that key).
local vtype = redis.call('TYPE', KEYS[1])['ok']
if vtype ~= 'string' and vtype ~= 'none' then return {'corrupt', 'value key holds a ' .. vtype, 'value'} end
local ltype = redis.call('TYPE', KEYS[2])['ok']
if ltype ~= 'string' and ltype ~= 'none' then return {'corrupt', 'lock key holds a ' .. ltype, 'lock'} end
local ftype = redis.call('TYPE', KEYS[3])['ok']
if ftype ~= 'string' and ftype ~= 'none' then return {'corrupt', 'fence key holds a ' .. ftype, 'fence'} end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

---------------------------------------------------------------------------
-- Entry
---------------------------------------------------------------------------
local blob = redis.call('GET', KEYS[1])
local exists = false
local fu, su, cms = 0, 0, 0
local e_fence = 0
local retained = 0 -- remaining retention (PTTL) of KEYS[1], ms
if blob then
  fu, su, cms, e_fence = parse_header(blob)
  if not fu then
    return {'corrupt', 'bad header', 'value'}
  end
  local pttl = redis.call('PTTL', KEYS[1])
  if pttl == -1 then
    return {'corrupt', 'no expiry', 'value'}
  end
  if pttl < 0 then pttl = 0 end
  retained = pttl
  -- Servable only before su, however long the bytes are retained. An entry
  -- at or past su is treated as missing, but its committed fence still
  -- bounds new tokens.
  exists = now < su
end

-- Keep the fence counter alive at least fence_ret past the entry's retention.
local function extend_fence_ttl()
  local want = fence_ret + retained
  local pttl = redis.call('PTTL', KEYS[3])
  if pttl == -2 then return end
  if pttl == -1 or pttl < want then
    redis.call('PEXPIRE', KEYS[3], want)
  end
end

---------------------------------------------------------------------------
-- Lock / lease. A token is issued only when the lock is free (no burning).
-- Tokens are strictly monotonic per entry even if KEYS[3] was lost or
-- corrupted while the entry survived: never issue a token <= the entry's
-- committed fence, never one >= 10^15.
---------------------------------------------------------------------------
local function try_lock()
  local holder = redis.call('GET', KEYS[2])
  if holder then return nil end
  local counter = 0
  local raw = redis.call('GET', KEYS[3])
  if raw and string.match(raw, '^[0-9]+$') and #raw <= 15 then
    counter = tonumber(raw)
  end -- anything else (missing, non-integer, >= 10^15) is reset above e_fence
  local base = counter
  if e_fence > base then base = e_fence end
  local tok = base + 1
  if tok >= TOKEN_LIMIT then
    -- Unreachable with a valid header (fence < 10^15 - 1) and a bounded
    -- counter; reset above the entry's fence rather than issue an
    -- uncommittable token.
    tok = e_fence + 1
  end
  redis.call('SET', KEYS[3], fmtint(tok), 'KEEPTTL')
  extend_fence_ttl()
  local ok = redis.call('SET', KEYS[2], fmtint(tok), 'NX', 'PX', lock_ttl)
  if not ok then return nil end -- unreachable inside an atomic script
  return tok
end

local function holder_pttl()
  local p = redis.call('PTTL', KEYS[2])
  if p == -1 then
    -- A lock without TTL would block the entry forever; bound it.
    redis.call('PEXPIRE', KEYS[2], lock_ttl)
    p = lock_ttl
  elseif p < 0 then
    p = 0
  end
  return p
end

if exists and now < fu and not force then
  -- FRESH (possibly XFetch early refresh)
  if beta > 0 and cms > 0 and (now - cms * beta * math.log(xrand)) >= fu then
    local tok = try_lock()
    if tok then
      return {'early', blob, su, now, tok}
    end
  end
  return {'fresh', blob, su, now}
end

if exists then
  -- STALE: fu <= now < su
  local tok = try_lock()
  if tok then
    return {'stale', blob, su, now, 1, tok, lock_ttl}
  end
  return {'stale', blob, su, now, 0, 0, holder_pttl()}
end

-- MISSING (or retained past su: not servable)
local tok = try_lock()
if tok then
  return {'leader', tok, lock_ttl, now}
end
local holder = redis.call('GET', KEYS[2])
local holder_tok = 0
if holder and string.match(holder, '^[0-9]+$') and #holder <= 15 then
  holder_tok = tonumber(holder)
end
return {'wait', holder_tok, holder_pttl(), now}
