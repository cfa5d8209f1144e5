-- StampedeCache :: get_or_lock.lua
--
-- One round trip: read an entry, count the hit for hot-key promotion, and
-- take the compute lock / refresh lease when the caller must compute.
-- Run with EVALSHA <sha> 4 KEYS[1] KEYS[2] KEYS[3] KEYS[4] ARGV[1..8].
--
-- KEYS (all four share one hash tag {E}; built by the client, never here):
--   KEYS[1]  P{E}:v  entry hash: val fu su ct cms fence fmt tags
--   KEYS[2]  P{E}:l  lock string: fence token (decimal) of the holder, PX lock TTL
--   KEYS[3]  P{E}:f  fence counter (integer, INCR'd to issue tokens)
--   KEYS[4]  P{E}:h  hot-key counter hash: ws c p
--
-- ARGV (exactly 8; integers are plain decimal digits, at most 15 of them):
--   ARGV[1]  lock TTL, integer ms >= 1
--   ARGV[2]  hot threshold, integer >= 1 (estimated hits per window)
--   ARGV[3]  hot window, integer ms >= 1
--   ARGV[4]  hot TTL, integer ms >= 0 (a hot entry's retention is slid to
--            at least now + hot TTL; 0 = never slide)
--   ARGV[5]  fence retention, integer ms >= 1 (KEYS[3] is kept alive at
--            least this long past the entry's stale-until)
--   ARGV[6]  XFetch early-refresh beta, decimal float >= 0 ("0" = off)
--   ARGV[7]  uniform random number in (0,1], decimal float, from the client
--            (used only by XFetch; Lua's math.random is never used)
--   ARGV[8]  "1" = count this hit for hot-key promotion, "0" = do not
--            (internal re-checks). With "0" KEYS[4] is not written and the
--            retention is not slid; the reported hot flag is a read-only
--            estimate.
--
-- Time: the only clock is redis.call('TIME'), as ms = s*1000 + floor(us/1000).
--
-- Reply: flat array, element 1 is the status string. Types: (s) bulk
-- string, (i) integer. Integer times are epoch ms of the Redis server clock.
--   {"fresh",  val(s), fu(i), su(i), ct(i), cms(i), fence(i), fmt(s), now(i), hot(i 0/1)}
--   {"early",  val(s), fu(i), su(i), ct(i), cms(i), fence(i), fmt(s), now(i), hot(i),
--              lease(i =1), token(i), lock_pttl(i)}
--       entry is still fresh, XFetch fired and this caller WON the refresh
--       lease: serve val now and recompute in the background with token.
--       (If XFetch fires but the lock is held, the reply is plain "fresh".)
--   {"stale",  val(s), fu(i), su(i), ct(i), cms(i), fence(i), fmt(s), now(i), hot(i),
--              lease(i 0/1), token(i, 0 if no lease), lock_pttl(i)}
--       fu <= now < su. lease=1: caller holds the lock with token and
--       lock_pttl = ARGV[1]. lease=0: someone else holds it; lock_pttl is the
--       holder's remaining PTTL.
--   {"leader", token(i), lock_ttl_ms(i), now(i)}
--       no usable entry; caller holds the lock and must compute + commit.
--   {"wait",   holder_token(i), lock_pttl(i), now(i)}
--       no usable entry; another worker holds the lock (holder_token is 0
--       if the lock value is not a decimal token).
--   Missing ct/cms/fence fields read as 0, a missing fmt as "". val and fmt
--   (and the tags field, which is never returned) are opaque bytes.
--   Errors: "ERR stampede: get_or_lock: ..." for bad KEYS/ARGV.

local SCRIPT = 'get_or_lock'

local function bad(msg)
  return redis.error_reply('ERR stampede: ' .. SCRIPT .. ': ' .. msg)
end

local function shown(s)
  s = tostring(s)
  if #s > 32 then s = string.sub(s, 1, 32) .. '...' end
  return "'" .. string.gsub(s, '[^%w%.%+%-]', '?') .. "'"
end

-- Non-negative decimal integer of at most 15 digits (exact in a double), >= min.
local function int_arg(i, min)
  local s = ARGV[i]
  if not string.match(s, '^[0-9]+$') or #s > 15 then return nil end
  local n = tonumber(s)
  if n < min then return nil end
  return n
end

-- Finite decimal number.
local function num_arg(i)
  local n = tonumber(ARGV[i])
  if n == nil or n ~= n or n == math.huge or n == -math.huge then return nil end
  return n
end

local function fmtint(n)
  return string.format('%d', n)
end

if #KEYS ~= 4 then
  return bad('expected 4 KEYS (entry, lock, fence, hot), got ' .. #KEYS)
end
if #ARGV ~= 8 then
  return bad('expected 8 ARGV, got ' .. #ARGV)
end

local lock_ttl = int_arg(1, 1)
if not lock_ttl then return bad('ARGV[1] lock TTL ms must be an integer >= 1, got ' .. shown(ARGV[1])) end
local threshold = int_arg(2, 1)
if not threshold then return bad('ARGV[2] hot threshold must be an integer >= 1, got ' .. shown(ARGV[2])) end
local window = int_arg(3, 1)
if not window then return bad('ARGV[3] hot window ms must be an integer >= 1, got ' .. shown(ARGV[3])) end
local hot_ttl = int_arg(4, 0)
if not hot_ttl then return bad('ARGV[4] hot TTL ms must be an integer >= 0, got ' .. shown(ARGV[4])) end
local fence_ret = int_arg(5, 1)
if not fence_ret then return bad('ARGV[5] fence retention ms must be an integer >= 1, got ' .. shown(ARGV[5])) end
local beta = num_arg(6)
if not beta or beta < 0 then return bad('ARGV[6] early-refresh beta must be a finite number >= 0, got ' .. shown(ARGV[6])) end
local xrand = num_arg(7)
if not xrand or xrand <= 0 or xrand > 1 then return bad('ARGV[7] random must be a number in (0,1], got ' .. shown(ARGV[7])) end
local count_hit
if ARGV[8] == '1' then count_hit = true
elseif ARGV[8] == '0' then count_hit = false
else return bad('ARGV[8] count-hit flag must be "0" or "1", got ' .. shown(ARGV[8])) end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

---------------------------------------------------------------------------
-- Entry
---------------------------------------------------------------------------
local e = redis.call('HMGET', KEYS[1], 'val', 'fu', 'su', 'ct', 'cms', 'fence', 'fmt')
local val = e[1]
local fu = tonumber(e[2])
local su = tonumber(e[3])
local ct = math.floor(tonumber(e[4]) or 0)
local cms = math.floor(tonumber(e[5]) or 0)
local e_fence = math.floor(tonumber(e[6]) or 0)
local fmt = e[7] or ''
-- Usable only if complete and not past its retention (PEXPIREAT = su, so
-- now >= su should not be observable, but treat it as missing if it is).
local exists = (val ~= false and val ~= nil) and fu ~= nil and su ~= nil and now < su
if exists then
  fu = math.floor(fu)
  su = math.floor(su)
end

---------------------------------------------------------------------------
-- Hot-key counter: two-bucket sliding window (ws, c, p) in KEYS[4].
-- Counted on every path (a miss is demand too); only entries slide.
---------------------------------------------------------------------------
local h = redis.call('HMGET', KEYS[4], 'ws', 'c', 'p')
local ws = tonumber(h[1])
local hc = tonumber(h[2]) or 0
local hp = tonumber(h[3]) or 0
if ws == nil then
  ws = now; hc = 0; hp = 0
elseif now < ws then
  ws = now -- server clock went backwards (e.g. failover): re-anchor the window
end
local gap = now - ws
if gap >= window then
  if gap < 2 * window then hp = hc else hp = 0 end
  hc = 0
  ws = now - (gap % window)
end
if count_hit then
  hc = hc + 1
  redis.call('HSET', KEYS[4], 'ws', fmtint(ws), 'c', fmtint(hc), 'p', fmtint(hp))
  redis.call('PEXPIRE', KEYS[4], 2 * window)
end
local estimate = hc + hp * (1 - (now - ws) / window)
local hot = 0
if estimate >= threshold then hot = 1 end

-- Keep the fence counter alive at least fence_ret past the entry's su.
local function extend_fence_ttl()
  local want = fence_ret
  if exists then want = want + (su - now) end
  local pttl = redis.call('PTTL', KEYS[3])
  if pttl == -2 then return end
  if pttl == -1 or pttl < want then
    redis.call('PEXPIRE', KEYS[3], want)
  end
end

-- Hot entry: slide retention (su) only; freshness (fu) never changes.
if exists and count_hit and hot == 1 then
  local new_su = now + hot_ttl
  if new_su > su then
    su = new_su
    redis.call('HSET', KEYS[1], 'su', fmtint(su))
    redis.call('PEXPIREAT', KEYS[1], su)
    extend_fence_ttl()
  end
end

---------------------------------------------------------------------------
-- Lock / lease. A token is issued only when the lock is free (no burning).
-- Tokens are strictly monotonic per entry even if KEYS[3] was lost while
-- the entry survived: never issue a token <= the entry's committed fence.
---------------------------------------------------------------------------
local function try_lock()
  local holder = redis.call('GET', KEYS[2])
  if holder then return nil end
  local tok = redis.call('INCR', KEYS[3])
  if tok <= e_fence then
    tok = e_fence + 1
    redis.call('SET', KEYS[3], fmtint(tok))
  end
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

if exists and now < fu then
  -- FRESH (possibly XFetch early refresh)
  if beta > 0 and cms > 0 and (now - cms * beta * math.log(xrand)) >= fu then
    local tok = try_lock()
    if tok then
      return {'early', val, fu, su, ct, cms, e_fence, fmt, now, hot, 1, tok, lock_ttl}
    end
  end
  return {'fresh', val, fu, su, ct, cms, e_fence, fmt, now, hot}
end

if exists then
  -- STALE: fu <= now < su
  local tok = try_lock()
  if tok then
    return {'stale', val, fu, su, ct, cms, e_fence, fmt, now, hot, 1, tok, lock_ttl}
  end
  return {'stale', val, fu, su, ct, cms, e_fence, fmt, now, hot, 0, 0, holder_pttl()}
end

-- MISSING
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
