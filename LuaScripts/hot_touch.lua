-- StampedeCache :: hot_touch.lua
--
-- Batched hot-key promotion. The client counts hits in-process and flushes
-- each entry's count here every ~100 ms, so a fresh hit stays a plain
-- TIME + GET round trip. Adds the hits to a sliding-window counter; when the
-- entry is hot, slides its retention (the key's expiry = stale-until su) to
-- at least now + hot TTL. Freshness (fu, in the header) is never touched:
-- retention slides, freshness never does.
-- Run with EVALSHA <sha> 3 KEYS[1] KEYS[2] KEYS[3] ARGV[1..5].
--
-- KEYS (all three share one hash tag {E}; built by the client, never here):
--   KEYS[1]  P{E}:v  entry string (only its expiry is read / moved; its
--                    content is never read or written, any type is accepted)
--   KEYS[2]  P{E}:f  fence counter (its TTL is extended past a slid su)
--   KEYS[3]  P{E}:h  hot-key counter hash: ws c p
--
-- ARGV (exactly 5; integers are plain decimal digits, at most 15 of them):
--   ARGV[1]  hits n, integer >= 1 (hits aggregated by the client since its
--            last flush for this entry)
--   ARGV[2]  hot threshold, integer >= 1 (estimated hits per window)
--   ARGV[3]  hot window, integer ms >= 1
--   ARGV[4]  hot TTL, integer ms >= 0 (a hot entry's retention is slid to
--            at least now + hot TTL; 0 = never slide)
--   ARGV[5]  fence retention, integer ms >= 1 (KEYS[2] is kept alive at
--            least this long past the slid su)
--
-- Time: the only clock is redis.call('TIME'), as ms = s*1000 + floor(us/1000).
--
-- Counter (two buckets, ws = current window start, c = hits in it, p = hits
-- in the previous window), at now:
--   if now < ws: ws = now (server clock went backwards: re-anchor)
--   if now >= ws + window: p = (now < ws + 2*window) and c or 0; c = 0;
--                          ws = now - ((now - ws) % window)
--   c = c + n; HSET ws c p; PEXPIRE KEYS[3] 2*window
--   estimate = c + p * (1 - (now - ws)/window); hot iff estimate >= threshold
-- Slide: if hot and KEYS[1] exists with an expiry (su = now + PTTL):
--   new_su = now + hot TTL; if new_su > su + floor(hot TTL / 16): PEXPIREAT
--   KEYS[1] new_su and extend KEYS[2] (if it exists) to a TTL >= (new_su -
--   now) + fence retention.
--   The sixteenth is hysteresis: every PEXPIREAT is a change to the key, which
--   Redis reports to every client tracking it (near-caches drop the entry). A
--   hot key is slid at most once per hot TTL / 16, not on every flush.
--
-- Reply: flat array, element 1 is the status string. (i) integer; times are
-- epoch ms of the Redis server clock.
--   {"hot"|"cold", slid(i 0/1), su(i), now(i)}
--       su is the entry's stale-until after this call (the slid one if
--       slid = 1); 0 if KEYS[1] does not exist or has no expiry.
--   Errors: "ERR stampede: hot_touch: ..." for bad KEYS/ARGV; WRONGTYPE if
--   KEYS[3] is not a hash.

SCRIPT = 'hot_touch'

if #KEYS ~= 3 then
  return bad('expected 3 KEYS (entry, fence, hot), got ' .. #KEYS)
end
if #ARGV ~= 5 then
  return bad('expected 5 ARGV, got ' .. #ARGV)
end

local hits = int_arg(1, 1)
if not hits then return bad('ARGV[1] hits must be an integer >= 1, got ' .. shown(ARGV[1])) end
local threshold = int_arg(2, 1)
if not threshold then return bad('ARGV[2] hot threshold must be an integer >= 1, got ' .. shown(ARGV[2])) end
local window = int_arg(3, 1)
if not window then return bad('ARGV[3] hot window ms must be an integer >= 1, got ' .. shown(ARGV[3])) end
local hot_ttl = int_arg(4, 0)
if not hot_ttl then return bad('ARGV[4] hot TTL ms must be an integer >= 0, got ' .. shown(ARGV[4])) end
local fence_ret = int_arg(5, 1)
if not fence_ret then return bad('ARGV[5] fence retention ms must be an integer >= 1, got ' .. shown(ARGV[5])) end

local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)

---------------------------------------------------------------------------
-- Sliding-window counter (two buckets) in KEYS[3].
---------------------------------------------------------------------------
local MAX_COUNT = 1000000000000000 -- keeps counts exact and '%d'-formattable
local function count_of(x)
  local n = tonumber(x)
  if n == nil or n ~= n or n < 0 then return 0 end
  if n > MAX_COUNT then return MAX_COUNT end
  return math.floor(n)
end

local h = redis.call('HMGET', KEYS[3], 'ws', 'c', 'p')
local ws = tonumber(h[1])
local hc = count_of(h[2])
local hp = count_of(h[3])
if ws == nil or ws ~= ws or ws > now then
  -- no counter yet, or the server clock went backwards (e.g. failover):
  -- (re-)anchor the window at now
  if ws == nil or ws ~= ws then hc = 0; hp = 0 end
  ws = now
end
ws = math.floor(ws)
local gap = now - ws
if gap >= window then
  if gap < 2 * window then hp = hc else hp = 0 end
  hc = 0
  ws = now - (gap % window)
end
hc = hc + hits
if hc > MAX_COUNT then hc = MAX_COUNT end
redis.call('HSET', KEYS[3], 'ws', fmtint(ws), 'c', fmtint(hc), 'p', fmtint(hp))
redis.call('PEXPIRE', KEYS[3], 2 * window)

local estimate = hc + hp * (1 - (now - ws) / window)
local hot = estimate >= threshold

---------------------------------------------------------------------------
-- Retention slide: only the key's expiry moves; fu (header) never changes.
---------------------------------------------------------------------------
local su = 0
local slid = 0
local pttl = redis.call('PTTL', KEYS[1])
if pttl >= 0 then
  su = now + pttl
  if hot then
    local new_su = now + hot_ttl
    if new_su > su + math.floor(hot_ttl / 16) then
      redis.call('PEXPIREAT', KEYS[1], fmtint(new_su))
      su = new_su
      slid = 1
      local want = (new_su - now) + fence_ret
      local fpttl = redis.call('PTTL', KEYS[2])
      if fpttl == -1 or (fpttl >= 0 and fpttl < want) then
        redis.call('PEXPIRE', KEYS[2], want)
      end
    end
  end
end

if hot then
  return {'hot', slid, su, now}
end
return {'cold', slid, su, now}
