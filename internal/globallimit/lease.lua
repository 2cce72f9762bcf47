-- keygate's leases: one instance takes, in one atomic step, a share of a
-- key's and its owner's rate buckets (GCRA) and blocks of their monthly
-- quotas, which it then admits from without a call per request; and gives
-- back the unused part of quota blocks it no longer uses.
--
-- KEYS: 1 key's TAT, 2 owner's TAT, 3 key's month count, 4 owner's month
--       count, 5 and 6 this instance's block records of the key's and the
--       owner's counts: the units granted to it and not given back (one hash
--       tag: one cluster slot).
-- ARGV: 1 key's emission interval in microseconds (0: no rate limit),
--       2 key's burst, 3 and 4 the owner's; 5 key's quota (0: none),
--       6 owner's quota; 7 and 8 the key's and owner's floors (see
--       admit.lua); 9 the counts' expiry in seconds; 10 to 13 the units
--       asked of the key's rate, owner's rate, key's quota, owner's quota
--       (0: none); 14 and 15 the units of the key's and owner's quota
--       blocks given back; 16 the block records' expiry in milliseconds;
--       17 the divisor of a quota's remaining units that caps a block, 18
--       that of a rate's available tokens that caps a share.
-- Returns {granted, key rate, owner rate, key quota, owner quota units
--          granted, key rate and owner rate tokens left after the grant,
--          key quota and owner quota units left after it}: granted is 1 if
--          every limit asked of granted at least one unit, else 0 and none
--          was granted (a limit asked of is at or near its end: the caller
--          asks per request); gives back are applied either way.
if redis.replicate_commands then
	redis.replicate_commands() -- for TIME below Redis 5; a no-op since
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local expiry, record_ms = ARGV[9], tonumber(ARGV[16])
local qdiv, rdiv = tonumber(ARGV[17]), tonumber(ARGV[18])

-- give back returns up to n units of a block to its count: never more
-- than the record says this instance was granted and has not given back,
-- so a give-back after the record expired (its units are spent for good)
-- or after the server lost its data returns nothing.
local function give_back(count, record, n)
	if n <= 0 then
		return
	end
	local held = tonumber(redis.call('GET', record)) or 0
	n = math.min(n, held)
	if n <= 0 then
		return
	end
	local c = tonumber(redis.call('GET', count))
	if c then
		redis.call('SET', count, math.max(0, c - n), 'KEEPTTL')
	end
	redis.call('SET', record, held - n, 'KEEPTTL')
end
give_back(KEYS[3], KEYS[5], tonumber(ARGV[14]))
give_back(KEYS[4], KEYS[6], tonumber(ARGV[15]))

-- share sizes a grant: at most asked, at most avail/div, at least 1 while
-- any is available, so that the last units go one at a time.
local function share(ask, avail, div)
	if avail < 1 then
		return 0
	end
	return math.min(ask, math.max(1, math.floor(avail / div)))
end

local g, left = {0, 0, 0, 0}, {-1, -1, -1, -1}
local tats, counts = {}, {}
local ok = true
for i = 1, 2 do
	local iv, b, ask = tonumber(ARGV[2 * i - 1]), tonumber(ARGV[2 * i]), tonumber(ARGV[9 + i])
	if iv > 0 and ask > 0 then
		local tat = tonumber(redis.call('GET', KEYS[i]))
		if not tat or tat < now then
			tat = now
		end
		-- Tokens available now: the n with tat + n*iv - b*iv <= now.
		local avail = math.floor((now - tat) / iv + b + 1e-9)
		g[i] = share(ask, avail, rdiv)
		left[i] = avail - g[i]
		tats[i] = tat + g[i] * iv
		ok = ok and g[i] > 0
	end
end
for i = 1, 2 do
	local q, floor, ask = tonumber(ARGV[4 + i]), tonumber(ARGV[6 + i]), tonumber(ARGV[11 + i])
	if q > 0 and ask > 0 then
		local n = tonumber(redis.call('GET', KEYS[2 + i])) or 0
		if floor > n then
			n = floor
		end
		g[2 + i] = share(ask, q - n, qdiv)
		left[2 + i] = q - n - g[2 + i]
		counts[i] = n + g[2 + i]
		ok = ok and g[2 + i] > 0
	end
end
if not ok then
	return {0, 0, 0, 0, 0, left[1], left[2], left[3], left[4]}
end
for i = 1, 2 do
	if tats[i] then
		redis.call('SET', KEYS[i], string.format('%.17g', tats[i]), 'PX', math.max(1, math.ceil((tats[i] - now) / 1000)))
	end
	if counts[i] then
		redis.call('SET', KEYS[2 + i], counts[i], 'EX', expiry)
		redis.call('INCRBY', KEYS[4 + i], g[2 + i])
		redis.call('PEXPIRE', KEYS[4 + i], record_ms)
	end
end
return {1, g[1], g[2], g[3], g[4], left[1], left[2], left[3], left[4]}
