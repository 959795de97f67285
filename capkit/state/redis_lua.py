"""The Lua scripts of the Redis store: the ledger algorithm, run atomically inside Redis.

Amounts are non-negative fixed-point integers (units of 10**-18) written as
decimal digit strings; Lua numbers are doubles, so the scripts add, subtract
and compare them in base-10**7 limbs, exactly. Every key of one token family
shares the hash tag ``{FAMILY}`` (one Redis Cluster slot):

* ``capkit:{F}:s``  hash: ``m:<meter>`` total in use, ``c:<meter>`` committed total
  (meters without a rolling window), ``r:<id>`` reservation record
  ``state|at|expires|meter=amount=refundable,...`` (live entries only; ``refundable``
  is 1 for budgets, 0 for call limits), ``x:<hop id>`` revocation reason,
  ``n:<nonce>`` nonce expiry;
* ``capkit:{F}:p``  zset of reservations still only reserved, by lease expiry;
* ``capkit:{F}:w``  zset of rolling-window entries ``<id>|<meter>``, by the time they age out;
* ``capkit:{F}:z``  zset of nonces by expiry;
* ``capkit:{F}:t``  zset of settled reservations whose records are gone, by settle time; their final
  state stays in the hash as ``t:<id>`` for a day (so a late commit learns the outcome).
"""

BIGNUM = r"""
local BASE = 10000000
local function parse(s)
  local t, i = {}, #s
  while i >= 1 do
    local j = math.max(1, i - 6)
    t[#t + 1] = tonumber(string.sub(s, j, i))
    i = j - 1
  end
  return t
end
local function fmt(t)
  local n = #t
  while n > 1 and t[n] == 0 do t[n] = nil; n = n - 1 end
  local parts = {tostring(t[n])}
  for i = n - 1, 1, -1 do parts[#parts + 1] = string.format("%07d", t[i]) end
  return table.concat(parts)
end
local function add(a, b)
  local A, B, r, carry = parse(a), parse(b), {}, 0
  for i = 1, math.max(#A, #B) do
    local s = (A[i] or 0) + (B[i] or 0) + carry
    if s >= BASE then r[i] = s - BASE; carry = 1 else r[i] = s; carry = 0 end
  end
  if carry > 0 then r[#r + 1] = carry end
  return fmt(r)
end
local function sub(a, b)
  local A, B, r, borrow = parse(a), parse(b), {}, 0
  for i = 1, #A do
    local s = A[i] - (B[i] or 0) - borrow
    if s < 0 then s = s + BASE; borrow = 1 else borrow = 0 end
    r[i] = s
  end
  if borrow ~= 0 then return redis.error_reply("capkit: negative total") end
  return fmt(r)
end
local function cmp(a, b)
  if #a ~= #b then if #a < #b then return -1 else return 1 end end
  if a == b then return 0 end
  if a < b then return -1 else return 1 end
end
local function split(s, sep)
  local out = {}
  for part in string.gmatch(s, "([^" .. sep .. "]+)") do out[#out + 1] = part end
  return out
end
local S, P, W, Z, T = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local SETTLED_DAY = 86400
local function record(id)
  local raw = redis.call("HGET", S, "r:" .. id)
  if not raw then return nil end
  local f = split(raw, "|")
  local entries = {}
  if f[4] then
    for _, pair in ipairs(split(f[4], ",")) do
      local kv = split(pair, "=")
      entries[#entries + 1] = {kv[1], kv[2], kv[3] ~= "0"}
    end
  end
  return {state = f[1], at = f[2], expires = f[3], entries = entries}
end
local function save(id, rec)
  local pairs_ = {}
  for _, e in ipairs(rec.entries) do pairs_[#pairs_ + 1] = e[1] .. "=" .. e[2] .. "=" .. (e[3] and "1" or "0") end
  if rec.state ~= "reserved" and #pairs_ == 0 then
    redis.call("HDEL", S, "r:" .. id)
    redis.call("HSET", S, "t:" .. id, rec.state)
    local now = tonumber(redis.call("TIME")[1])
    redis.call("ZADD", T, now, id)
    for _, old in ipairs(redis.call("ZRANGEBYSCORE", T, "-inf", now - SETTLED_DAY, "LIMIT", 0, 100)) do
      redis.call("HDEL", S, "t:" .. old)
      redis.call("ZREM", T, old)
    end
  else
    redis.call("HSET", S, "r:" .. id, rec.state .. "|" .. rec.at .. "|" .. rec.expires .. "|" .. table.concat(pairs_, ","))
  end
end
local function total(meter)
  return redis.call("HGET", S, "m:" .. meter) or "0"
end
-- A final spend: entries without a rolling window are folded into the committed total and
-- forgotten; windowed ones stay in the record until they age out.
local function settle(id, rec, state)
  local kept = {}
  for _, e in ipairs(rec.entries) do
    if redis.call("ZSCORE", W, id .. "|" .. e[1]) then
      kept[#kept + 1] = e
    else
      redis.call("HSET", S, "c:" .. e[1], add(redis.call("HGET", S, "c:" .. e[1]) or "0", e[2]))
    end
  end
  rec.entries = kept
  rec.state = state
  redis.call("ZREM", P, id)
  save(id, rec)
end
local function commit_one(id)
  local rec = record(id)
  if not rec then
    if redis.call("HGET", S, "t:" .. id) == "committed" then return 1 end
    return 0
  end
  if rec.state == "committed" then return 1 end
  if rec.state ~= "reserved" then return 0 end
  settle(id, rec, "committed")
  return 1
end
-- Nothing was spent: give back refundable entries (budgets); the others (call limits) count as spent,
-- unless every_entry (the call was never made at all).
local function release(id, every_entry)
  local rec = record(id)
  if not rec or rec.state ~= "reserved" then return 0 end
  local kept = {}
  for _, e in ipairs(rec.entries) do
    if e[3] or every_entry then
      redis.call("HSET", S, "m:" .. e[1], sub(total(e[1]), e[2]))
      redis.call("ZREM", W, id .. "|" .. e[1])
    else
      kept[#kept + 1] = e
    end
  end
  rec.entries = kept
  settle(id, rec, "released")
  return 1
end
"""

APPLY = BIGNUM + r"""
-- ARGV: now, lease, id, nonce ("" for none), nonce_expires, n_ids, ids..., n_meters,
--       (key, cap, amount, window "" or s, refundable "1" or "0")...
local now, lease, id, nonce, nonce_expires = tonumber(ARGV[1]), tonumber(ARGV[2]), ARGV[3], ARGV[4], ARGV[5]
local n_ids = tonumber(ARGV[6])
for _, old in ipairs(redis.call("ZRANGEBYSCORE", Z, "-inf", now)) do redis.call("HDEL", S, "n:" .. old) end
redis.call("ZREMRANGEBYSCORE", Z, "-inf", now)
for i = 1, n_ids do
  local reason = redis.call("HGET", S, "x:" .. ARGV[6 + i])
  if reason then return {"revoked", ARGV[6 + i], reason} end
end
if nonce ~= "" then
  local seen = redis.call("HGET", S, "n:" .. nonce)
  if seen and tonumber(seen) > now then return {"replayed"} end
end
local base = 7 + n_ids
local n_meters = tonumber(ARGV[base])
local meters = {}
for i = 1, n_meters do
  local o = base + (i - 1) * 5
  meters[i] = {ARGV[o + 1], ARGV[o + 2], ARGV[o + 3], ARGV[o + 4], ARGV[o + 5] ~= "0"}
end
if n_meters > 0 then
  -- Leases that ran out lapse into committed spends (the call may have run): never given back.
  for _, stale in ipairs(redis.call("ZRANGEBYSCORE", P, "-inf", now)) do commit_one(stale) end
  for _, member in ipairs(redis.call("ZRANGEBYSCORE", W, "-inf", now)) do
    local parts = split(member, "|")
    local rid, meter = parts[1], parts[2]
    local rec = record(rid)
    if rec then
      local kept = {}
      for _, e in ipairs(rec.entries) do
        if e[1] == meter then redis.call("HSET", S, "m:" .. meter, sub(total(meter), e[2]))
        else kept[#kept + 1] = e end
      end
      rec.entries = kept
      save(rid, rec)
    end
    redis.call("ZREM", W, member)
  end
  local exceeded = {}
  for _, m in ipairs(meters) do
    local used = total(m[1])
    if cmp(add(used, m[3]), m[2]) > 0 then exceeded[#exceeded + 1] = m[1]; exceeded[#exceeded + 1] = used end
  end
  if #exceeded > 0 then table.insert(exceeded, 1, "exceeded"); return exceeded end
end
if nonce ~= "" then
  redis.call("HSET", S, "n:" .. nonce, nonce_expires)
  redis.call("ZADD", Z, nonce_expires, nonce)
end
if n_meters == 0 then return {"ok"} end
local entries = {}
for _, m in ipairs(meters) do
  redis.call("HSET", S, "m:" .. m[1], add(total(m[1]), m[3]))
  entries[#entries + 1] = {m[1], m[3], m[5]}
  if m[4] ~= "" then redis.call("ZADD", W, now + tonumber(m[4]), id .. "|" .. m[1]) end
end
save(id, {state = "reserved", at = tostring(now), expires = tostring(now + lease), entries = entries})
redis.call("ZADD", P, now + lease, id)
return {"ok", id}
"""

COMMIT = BIGNUM + r"""
return commit_one(ARGV[1])
"""

RELEASE = BIGNUM + r"""
return release(ARGV[1], ARGV[2] == "1")
"""

USAGE = BIGNUM + r"""
-- ARGV: now, (meter, window "" or s)...; returns committed, reserved per meter
local now = tonumber(ARGV[1])
local out = {}
local records = {}
local all = redis.call("HGETALL", S)
for i = 1, #all, 2 do
  if string.sub(all[i], 1, 2) == "r:" then records[string.sub(all[i], 3)] = true end
end
for i = 2, #ARGV, 2 do
  local meter, window = ARGV[i], ARGV[i + 1]
  local committed = redis.call("HGET", S, "c:" .. meter) or "0"
  local reserved = "0"
  for rid, _ in pairs(records) do
    local rec = record(rid)
    for _, e in ipairs(rec.entries) do
      if e[1] == meter and (window == "" or tonumber(rec.at) > now - tonumber(window)) then
        if rec.state == "reserved" and tonumber(rec.expires) > now then reserved = add(reserved, e[2])
        else committed = add(committed, e[2]) end  -- committed, released (not refunded), or lapsed
      end
    end
  end
  out[#out + 1] = committed
  out[#out + 1] = reserved
end
return out
"""
