-- StampedeCache :: semantic_register.lua
--
-- Register a semantic computation in flight: take the namespace's next
-- registration number and write the pending document, in one atomic step.
-- Run with EVALSHA <sha> 2 KEYS[1] KEYS[2] ARGV[1..5].
--
-- KEYS (share the namespace's hash tag {N}; built by the client):
--   KEYS[1]  stampede:semseq:{N}              registration counter (INCR)
--   KEYS[2]  stampede:sem:{N}:<hash>:pending  the pending document (hash)
--
-- ARGV (exactly 5):
--   ARGV[1]  context hash (non-empty; a TAG value)
--   ARGV[2]  vector bytes (float32 little-endian; non-empty, a multiple of 4)
--   ARGV[3]  the embedded text
--   ARGV[4]  the request's exact cache key (non-empty)
--   ARGV[5]  time to live in ms (integer >= 1; the lock TTL, so a dead
--            worker's registration disappears with its lock)
--
-- Why one script: the registration number orders paraphrases that arrive
-- together (a later registration waits for an earlier one). Taking the
-- number and writing the document atomically makes the number order the
-- order in which documents became visible to the index, so of two similar
-- registrations the later one always sees the earlier one (its search runs
-- after its own registration) and only the earliest computes. With INCR and
-- HSET sent separately, a request could take a lower number but register
-- later, unseen by a higher-numbered one that already decided to compute.
--
-- Reply: {"registered", seq(i)}
--   Errors: "ERR stampede: semantic_register: ..." for bad KEYS/ARGV.
-- No time is used by this script.

SCRIPT = 'semantic_register'

if #KEYS ~= 2 then
  return bad('expected 2 KEYS (counter, pending document), got ' .. #KEYS)
end
if #ARGV ~= 5 then
  return bad('expected 5 ARGV, got ' .. #ARGV)
end
if ARGV[1] == '' then return bad('ARGV[1] context must not be empty') end
local vec = ARGV[2]
if #vec == 0 or #vec % 4 ~= 0 then
  return bad('ARGV[2] vector must be a non-empty multiple of 4 bytes, got ' .. #vec)
end
if ARGV[4] == '' then return bad('ARGV[4] cache key must not be empty') end
local ttl = int_arg(5, 1)
if not ttl then return bad('ARGV[5] ttl must be an integer >= 1, got ' .. shown(ARGV[5])) end

local seq = redis.call('INCR', KEYS[1])
redis.call('HSET', KEYS[2], 'ctx', ARGV[1], 'state', 'pending', 'vec', vec,
  'text', ARGV[3], 'key', ARGV[4], 'seq', seq)
redis.call('PEXPIRE', KEYS[2], ttl)
return {'registered', seq}
