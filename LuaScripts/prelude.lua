-- StampedeCache :: prelude.lua
--
-- The helpers every script shares. The build (EmbedLuaScripts) and
-- verify_scripts.py prepend this file to each script, so what runs on the
-- server, and what EVALSHA's digest covers, is prelude.lua followed by the
-- script. Each script sets SCRIPT to its own name first thing.

local SCRIPT = '?'

-- An error reply naming the script: "ERR stampede: <script>: <msg>".
local function bad(msg)
  return redis.error_reply('ERR stampede: ' .. SCRIPT .. ': ' .. msg)
end

-- A caller's value for an error message: at most 32 characters, anything
-- unusual replaced, so a message never echoes secrets or control bytes.
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

