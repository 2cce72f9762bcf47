-- keygate's admission of one request: its key's and its owner's rate
-- limits (GCRA) and monthly quotas, checked together and, only if all pass,
-- taken together, in one atomic step that every instance shares.
--
-- KEYS: 1 key's theoretical arrival time (TAT), 2 owner's TAT, 3 key's
--       month count, 4 owner's month count (one hash tag: one cluster slot).
-- ARGV: 1 key's emission interval in microseconds (0: no rate limit),
--       2 key's burst, 3 and 4 the owner's; 5 key's quota (0: none),
--       6 owner's quota; 7 and 8 the key's and owner's floors (a count below
--       one is raised to it: see Request.KeyUsed); 9 the counts' expiry in
--       seconds.
-- Returns {allowed, rate which (0 none, 1 key, 2 owner), burst, remaining,
--          reset us, retry us, quota which (0 none, 1 key, 2 owner), used,
--          quota}.
if redis.replicate_commands then
	redis.replicate_commands() -- for TIME below Redis 5; a no-op since
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

-- gcra answers a request of a bucket with emission interval iv and burst
-- b: allowed, requests left, until full, until the next would pass, and
-- the TAT to store if the request is taken.
local function gcra(key, iv, b)
	local tat = tonumber(redis.call('GET', key))
	if not tat or tat < now then
		tat = now
	end
	local new = tat + iv
	local allow_at = new - iv * b
	if now < allow_at then
		return false, 0, tat - now, allow_at - now, tat
	end
	return true, math.floor((now - allow_at) / iv + 1e-9), new - now, 0, new
end

local which, burst, remaining, reset, retry = 0, 0, 0, 0, 0
local function refused(qwhich, used, quota)
	return {0, which, burst, remaining, math.ceil(reset), math.ceil(retry), qwhich, used, quota}
end

local kiv, kb = tonumber(ARGV[1]), tonumber(ARGV[2])
local oiv, ob = tonumber(ARGV[3]), tonumber(ARGV[4])
local ktat, otat
-- The key's own limit first, so that a key over it costs its owner's other
-- keys nothing.
if kiv > 0 then
	local ok, rem, rst, rty, tat = gcra(KEYS[1], kiv, kb)
	which, burst, remaining, reset, retry = 1, kb, rem, rst, rty
	if not ok then
		return refused(0, 0, 0)
	end
	ktat = tat
end
if oiv > 0 then
	local ok, rem, rst, rty, tat = gcra(KEYS[2], oiv, ob)
	-- The headers show the limit that refused, or else the one with fewer
	-- requests left.
	if not ok or which == 0 or rem < remaining then
		which, burst, remaining, reset, retry = 2, ob, rem, rst, rty
	end
	if not ok then
		return refused(0, 0, 0)
	end
	otat = tat
end

local function used(key, floor)
	local n = tonumber(redis.call('GET', key)) or 0
	if floor > n then
		n = floor
	end
	return n
end
local kq, oq = tonumber(ARGV[5]), tonumber(ARGV[6])
local ku, ou
if kq > 0 then
	ku = used(KEYS[3], tonumber(ARGV[7]))
	if ku >= kq then
		return refused(1, ku, kq)
	end
end
if oq > 0 then
	ou = used(KEYS[4], tonumber(ARGV[8]))
	if ou >= oq then
		return refused(2, ou, oq)
	end
end

-- All pass: take. A TAT lives until it is past (the bucket is full again);
-- a count until its month is over.
if ktat then
	redis.call('SET', KEYS[1], string.format('%.17g', ktat), 'PX', math.max(1, math.ceil((ktat - now) / 1000)))
end
if otat then
	redis.call('SET', KEYS[2], string.format('%.17g', otat), 'PX', math.max(1, math.ceil((otat - now) / 1000)))
end
if ku then
	redis.call('SET', KEYS[3], ku + 1, 'EX', ARGV[9])
end
if ou then
	redis.call('SET', KEYS[4], ou + 1, 'EX', ARGV[9])
end
return {1, which, burst, remaining, math.ceil(reset), 0, 0, 0, 0}
