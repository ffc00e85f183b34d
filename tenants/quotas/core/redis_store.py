"""The shared counters in Redis: one Lua script admits a request against every check at once.

One round trip per admission, atomic across every gateway process; Redis's own clock (TIME) is
the only clock, so processes with skewed clocks still agree. Same semantics as memory.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.cluster import RedisCluster

from tenants.quotas.core.checks import (
    BudgetCheck,
    Check,
    ConcurrencyCheck,
    Outcome,
    Release,
    ShareCheck,
    Verdict,
    WindowCheck,
)

# ARGV: request id, lease seconds, dry run (0|1: evaluate, count nothing), then per check:
#   kind (w|c|b|s), limit, amount, shadow (0|1), x1, x2, member; a share check (s) has x2 = its
#   depth and that many members (top level first) in place of the one member.
# KEYS per check: w → bucket hash; c → lease zset; b → state hash, reservation zset, amount hash;
#   s → the leaf's bucket hash, then one active-member zset per level (top level first).
# Returns {allowed, failed index (0 = none), retry (-1 = never), seed count, now, seeds...,
#          then 4 values per check: remaining, reset, exceeded, alert}.
_WINDOW_TOTAL = """
-- A window is a hash of one-second buckets plus a running 'total' valid at second 'at':
-- reading it drops only the buckets that left the window since, so a check is O(1), not 61 reads.
local function total(key)
  local state = redis.call('HMGET', key, 'total', 'at')
  local sum, at = tonumber(state[1]) or 0, tonumber(state[2])
  if at == nil then return 0 end
  if at < now then
    if now - at > WINDOW then
      redis.call('DEL', key)
      return 0
    end
    for s = at - WINDOW, now - WINDOW - 1 do
      local v = redis.call('HGET', key, s)
      if v then
        sum = sum - tonumber(v)
        redis.call('HDEL', key, s)
      end
    end
    redis.call('HSET', key, 'total', sum, 'at', now)
  end
  return sum
end
"""

_ADMIT = (
    """
local now = tonumber(redis.call('TIME')[1])
local WINDOW = 60
local request_id = ARGV[1]
local lease = tonumber(ARGV[2])
local dry = ARGV[3] == '1'

"""
    + _WINDOW_TOTAL
    + """
local function add(key, second, amount)
  total(key)
  redis.call('HINCRBY', key, second, amount)
  redis.call('HINCRBY', key, 'total', amount)
  redis.call('HSET', key, 'at', now)
  redis.call('EXPIRE', key, 2 * WINDOW)
end

-- The buckets still in the window, oldest first: only read to say how long a refusal waits.
local function buckets(key)
  local fields = {}
  for s = now - WINDOW, now do fields[#fields + 1] = s end
  local values = redis.call('HMGET', key, unpack(fields))
  local found = {}
  for i, v in ipairs(values) do
    if v and tonumber(v) ~= 0 then found[#found + 1] = {now - WINDOW + i - 1, tonumber(v)} end
  end
  return found
end

local function wait_to_free(buckets, need)
  local freed = 0
  for _, b in ipairs(buckets) do
    freed = freed + b[2]
    if freed >= need then return b[1] + WINDOW + 1 - now end
  end
  return WINDOW + 1
end

local function reserved(res_key, amt_key)
  local expired = redis.call('ZRANGEBYSCORE', res_key, '-inf', now)
  for _, id in ipairs(expired) do
    redis.call('ZREM', res_key, id)
    redis.call('HDEL', amt_key, id)
  end
  local total = 0
  for _, v in ipairs(redis.call('HVALS', amt_key)) do total = total + tonumber(v) end
  return total
end

local checks, k, a = {}, 1, 3
local seeds = {}
while a < #ARGV do
  local c = {kind = ARGV[a + 1], limit = tonumber(ARGV[a + 2]), amount = tonumber(ARGV[a + 3]),
             shadow = ARGV[a + 4] == '1', x1 = tonumber(ARGV[a + 5]), x2 = tonumber(ARGV[a + 6]),
             member = ARGV[a + 7], k = k}
  if c.kind == 's' then
    c.members = {}
    for l = 1, c.x2 do c.members[l] = ARGV[a + 6 + l] end
    a = a + 6 + c.x2
    k = k + 1 + c.x2
  else
    a = a + 7
    if c.kind == 'w' or c.kind == 'c' then k = k + 1 else k = k + 3 end
  end
  if c.kind == 'b' and redis.call('HEXISTS', KEYS[c.k], 'spent') == 0 then
    seeds[#seeds + 1] = #checks
  end
  checks[#checks + 1] = c
end
if #seeds > 0 then
  local out = {0, 0, -1, #seeds, now}
  for _, s in ipairs(seeds) do out[#out + 1] = s end
  return out
end

local outcomes, failed, retry = {}, 0, -1
for i, c in ipairs(checks) do
  local ok, remaining, reset, wait = true, 0, 0, -1
  if c.kind == 'w' then
    local used = total(KEYS[c.k])
    ok = used + c.amount <= c.limit
    remaining = c.limit - used - c.amount
    if used + c.amount > 0 then reset = WINDOW + 1 end
    if not ok and c.amount <= c.limit then
      wait = wait_to_free(buckets(KEYS[c.k]), used + c.amount - c.limit)
    end
  elseif c.kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', KEYS[c.k], '-inf', now)
    local held = redis.call('ZCARD', KEYS[c.k])
    ok = held + 1 <= c.limit
    remaining = c.limit - held - 1
    wait = 1
  elseif c.kind == 'b' then
    local spent = tonumber(redis.call('HGET', KEYS[c.k], 'spent'))
    local used = spent + reserved(KEYS[c.k + 1], KEYS[c.k + 2])
    ok = used + c.amount <= c.limit
    remaining = c.limit - used - c.amount
  else
    -- Fair share: what the level above gets, divided equally between the members active in
    -- the last minute, from the top level down (tenants/quotas/core/checks.py ShareCheck.share).
    local share = c.limit - math.floor(c.limit * c.x1 / 1000)
    for l, member in ipairs(c.members) do
      local active = KEYS[c.k + l]
      redis.call('ZREMRANGEBYSCORE', active, '-inf', now - WINDOW - 1)
      local members = redis.call('ZCARD', active)
      if redis.call('ZSCORE', active, member) == false then members = members + 1 end
      if not dry then
        redis.call('ZADD', active, now, member)
        redis.call('EXPIRE', active, 2 * WINDOW)
      end
      share = share / members
    end
    local used = total(KEYS[c.k])
    ok = used + c.amount <= share
    remaining = math.floor(share) - used - c.amount
    if not ok then
      wait = wait_to_free(buckets(KEYS[c.k]), math.max(1, math.ceil(used + c.amount - share)))
    end
  end
  outcomes[i] = {remaining, reset, ok and 0 or 1, 0}
  if not ok and not c.shadow and failed == 0 then failed, retry = i, wait end
end

if failed == 0 and not dry then
  for i, c in ipairs(checks) do
    if c.kind == 'w' then
      add(KEYS[c.k], now, c.amount)
    elseif c.kind == 'c' then
      redis.call('ZADD', KEYS[c.k], now + lease, request_id)
      redis.call('EXPIRE', KEYS[c.k], lease + WINDOW)
    elseif c.kind == 's' then
      add(KEYS[c.k], now, c.amount)
    else
      redis.call('ZADD', KEYS[c.k + 1], now + lease, request_id)
      redis.call('HSET', KEYS[c.k + 2], request_id, c.amount)
      for j = 0, 2 do redis.call('EXPIRE', KEYS[c.k + j], c.x1) end
      local level = tonumber(redis.call('HGET', KEYS[c.k], 'spent'))
        + reserved(KEYS[c.k + 1], KEYS[c.k + 2])
      -- member: the alert thresholds in permille, ascending; 'alerted': how many have alerted.
      local crossed = 0
      for t in string.gmatch(c.member, '%d+') do
        if level * 1000 >= tonumber(t) * c.limit then crossed = crossed + 1 end
      end
      if crossed > (tonumber(redis.call('HGET', KEYS[c.k], 'alerted')) or 0) then
        redis.call('HSET', KEYS[c.k], 'alerted', crossed)
        outcomes[i][4] = crossed
      end
    end
  end
end

local out = {failed == 0 and 1 or 0, failed, retry, 0, now}
for _, o in ipairs(outcomes) do
  for _, v in ipairs(o) do out[#out + 1] = v end
end
return out
"""
)

# ARGV: request id, then 3 values per item: kind (w|c|b), bucket second, amount.
_SETTLE = (
    """
local now = tonumber(redis.call('TIME')[1])
local WINDOW = 60
"""
    + _WINDOW_TOTAL
    + """
local k = 1
for i = 2, #ARGV, 3 do
  local kind, second, amount = ARGV[i], tonumber(ARGV[i + 1]), tonumber(ARGV[i + 2])
  if kind == 'w' then
    if second >= now - 60 and redis.call('EXISTS', KEYS[k]) == 1 then
      total(KEYS[k])
      redis.call('HINCRBY', KEYS[k], second, amount)
      redis.call('HINCRBY', KEYS[k], 'total', amount)
    end
    k = k + 1
  elseif kind == 'c' then
    redis.call('ZREM', KEYS[k], ARGV[1])
    k = k + 1
  else
    redis.call('ZREM', KEYS[k + 1], ARGV[1])
    redis.call('HDEL', KEYS[k + 2], ARGV[1])
    if redis.call('HEXISTS', KEYS[k], 'spent') == 1 then
      redis.call('HINCRBY', KEYS[k], 'spent', amount)
    end
    k = k + 3
  end
end
return 1
"""
)

_SEED = """
if ARGV[3] == '1' or redis.call('HEXISTS', KEYS[1], 'spent') == 0 then
  redis.call('HSET', KEYS[1], 'spent', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
end
return 1
"""


def hash_tag(key: str) -> str:
    """What Redis Cluster hashes to place `key`: the first non-empty "{...}", else the key."""
    start = key.find("{")
    if start >= 0:
        end = key.find("}", start + 1)
        if end > start + 1:
            return key[start + 1 : end]
    return key


def _budget_keys(key: str) -> list[str]:
    return [key, key + ":res", key + ":amt"]


def _encode(check: Check) -> tuple[list[str], list[Any]]:
    shadow = 1 if check.shadow else 0
    if isinstance(check, WindowCheck):
        return [check.key], ["w", check.limit, check.amount, shadow, 0, 0, ""]
    if isinstance(check, ConcurrencyCheck):
        return [check.key], ["c", check.limit, 1, shadow, 0, 0, ""]
    if isinstance(check, BudgetCheck):
        thresholds = ",".join(str(p) for p in check.alert_permille)
        args = ["b", check.limit, check.amount, shadow, check.ttl_s, 0, thresholds]
        return _budget_keys(check.key), args
    assert isinstance(check, ShareCheck)
    keys = [check.usage_key, *(active_key for active_key, _ in check.levels)]
    members = [member for _, member in check.levels]
    args = ["s", check.capacity, check.amount, shadow, check.reserve_permille, len(members)]
    return keys, [*args, *members]


class StoreBusy(Exception):
    """Every connection to the store stayed busy for the whole wait: the gateway is overloaded,
    the store is not down. Never a reason to serve a request unchecked."""


class RedisQuotaStore:
    """`max_in_flight` calls at once (the client's pool holds as many connections); the others
    wait in line up to `wait_s`, so a burst queues for a connection instead of failing."""

    def __init__(
        self, client: Redis | RedisCluster, *, max_in_flight: int = 64, wait_s: float = 2.0
    ) -> None:
        self.client = client
        self._cluster = isinstance(client, RedisCluster)
        self._admit = client.register_script(_ADMIT)
        self._settle = client.register_script(_SETTLE)
        self._seed = client.register_script(_SEED)
        self._slots = asyncio.Semaphore(max_in_flight)
        self._wait_s = wait_s

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """A connection, waited for at most `wait_s`; then the call itself gets `wait_s` in
        all (connecting included), whatever the client does inside it."""
        try:
            async with asyncio.timeout(self._wait_s):
                await self._slots.acquire()
        except TimeoutError:
            raise StoreBusy(
                f"no free connection to the quota store within {self._wait_s}s"
            ) from None
        try:
            async with asyncio.timeout(self._wait_s):
                yield
        finally:
            self._slots.release()

    async def admit(
        self, checks: Sequence[Check], request_id: str, lease_s: int, *, dry: bool = False
    ) -> Verdict:
        keys: list[str] = []
        args: list[Any] = [request_id, lease_s, 1 if dry else 0]
        for check in checks:
            check_keys, check_args = _encode(check)
            keys += check_keys
            args += check_args
        async with self._slot():
            raw = [int(v) for v in await self._admit(keys=keys, args=args)]
        allowed, failed, retry, seeds = raw[0], raw[1], raw[2], raw[3]
        now = raw[4]
        if seeds:
            return Verdict(allowed=False, needs_seed=tuple(raw[5 : 5 + seeds]), at_s=now)
        values = raw[5:]
        outcomes = tuple(
            Outcome(values[i], values[i + 1], bool(values[i + 2]), int(values[i + 3]))
            for i in range(0, len(values), 4)
        )
        return Verdict(
            allowed=bool(allowed),
            outcomes=outcomes,
            failed=failed - 1 if failed else None,
            retry_after_s=None if retry < 0 else retry,
            at_s=now,
        )

    async def settle(self, release: Release, request_id: str) -> None:
        # One script per hash tag on a cluster (a tenant's counters, a provider account's):
        # each item settles on its own, so settling them slot by slot loses no atomicity.
        calls: dict[str, tuple[list[str], list[Any]]] = {}

        def call(key: str) -> tuple[list[str], list[Any]]:
            return calls.setdefault(hash_tag(key) if self._cluster else "", ([], [request_id]))

        for key, second, delta in release.window_adjustments:
            keys, args = call(key)
            keys.append(key)
            args += ["w", second, delta]
        for key in release.concurrency_keys:
            keys, args = call(key)
            keys.append(key)
            args += ["c", 0, 0]
        for key, actual in release.budget_spend:
            keys, args = call(key)
            keys += _budget_keys(key)
            args += ["b", 0, actual]
        for keys, args in calls.values():
            async with self._slot():
                await self._settle(keys=keys, args=args)

    async def seed(self, key: str, spent: int, ttl_s: int, *, force: bool = False) -> None:
        async with self._slot():
            await self._seed(keys=[key], args=[spent, ttl_s, "1" if force else "0"])

    async def budget_state(self, key: str) -> tuple[int | None, int]:
        async with self._slot():
            spent = await self.client.hget(key, "spent")
            amounts = await self.client.hvals(key + ":amt")
        return (None if spent is None else int(spent)), sum(int(v) for v in amounts)
