"""The shared counters in Redis: one Lua script admits a request against every check at once.

One round trip per admission, atomic across every gateway process; Redis's own clock (TIME) is
the only clock, so processes with skewed clocks still agree. Same semantics as memory.py.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping, Sequence
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

# ARGV: request id, lease seconds, dry run (0|1: evaluate, count nothing), the settlements,
#   the checks, then the strings those refer to by their ARGV index (request ids, members).
#   Settlements, 4 words each: kind (w|c|b|h), bucket second, amount, ARGV index of the request id.
#   Checks, 7 words each: kind (w|c|b|s), limit, amount, shadow (0|1), x1, x2, extra; a budget's
#   extra is its alert thresholds ("500,800,950", "-" for none), a share check's the ARGV index
#   of its first member (x2 = its depth: that many members, top level first).
# KEYS: one per settlement, then each check's: w → bucket hash; c → lease zset; b → state hash
#   ('spent', 'alerted', and one field per reservation: 'r:<request id>' → "amount expiry");
#   s → the leaf's bucket hash, then one active-member zset per level (top level first).
# Every command a script calls costs Redis a few microseconds, and one Redis serves every
# worker: a budget is one hash (two commands to check and reserve), and a window is read with
# its current bucket and written in one command.
# Returns one string of integers: allowed, failed index (0 = none), retry (-1 = never), seed
#   count, now, seeds..., then 4 per check: remaining, reset, exceeded, alert. One string, not a
#   list of integers: parsing 60 replies cost the gateway more than the script cost Redis.
_WINDOW_TOTAL = """
-- A window is a hash of one-second buckets plus a running 'total' valid at second 'at':
-- reading it drops only the buckets that left the window since, so a check is O(1), not 61 reads.
-- Its expiry is renewed when 'at' moves on (once a second at most, not on every request); a key
-- with no 'at' yet is `fresh` until add() gives it one.
local fresh, current = {}, {}
local function total(key)
  local state = redis.call('HMGET', key, 'total', 'at', now)
  local sum, at = tonumber(state[1]) or 0, tonumber(state[2])
  if at == nil or now - at > WINDOW then
    if at ~= nil then redis.call('DEL', key) end
    fresh[key], current[key], current[key .. ' total'] = true, 0, 0
    return 0
  end
  if at < now then
    for s = at - WINDOW, now - WINDOW - 1 do
      local v = redis.call('HGET', key, s)
      if v then
        sum = sum - tonumber(v)
        redis.call('HDEL', key, s)
      end
    end
    redis.call('HSET', key, 'total', sum, 'at', now)
    redis.call('EXPIRE', key, 2 * WINDOW)
  end
  -- This second's bucket and the total, for add().
  current[key], current[key .. ' total'] = tonumber(state[3]) or 0, sum
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
local function words(text)
  local found = {}
  for w in string.gmatch(text, '%S+') do found[#found + 1] = w end
  return found
end

-- Only after the checks, each of which read its key's total() in this script: 'at' is now, and
-- `current` holds the key's total and this second's bucket (one HSET, not two HINCRBYs).
local function add(key, amount)
  local bucket, sum = current[key] + amount, current[key .. ' total'] + amount
  current[key], current[key .. ' total'] = bucket, sum
  if fresh[key] then
    redis.call('HSET', key, now, bucket, 'total', sum, 'at', now)
    redis.call('EXPIRE', key, 2 * WINDOW)
    fresh[key] = nil
  else
    redis.call('HSET', key, now, bucket, 'total', sum)
  end
end

-- Earlier requests' settlements (this worker's, batched) go first: what they give back is free
-- for this admission, and settling costs no round trip of its own.
local k = 1
local settle = words(ARGV[4])
for i = 1, #settle, 4 do
  local kind, second, amount = settle[i], tonumber(settle[i + 1]), tonumber(settle[i + 2])
  local id = ARGV[tonumber(settle[i + 3])]
  if kind == 'w' then
    -- Its bucket is still in the window, so 'total' holds it (whatever 'at' is): both change
    -- together, and total() subtracts the bucket as adjusted when it leaves.
    if second >= now - WINDOW and redis.call('EXISTS', KEYS[k]) == 1 then
      redis.call('HINCRBY', KEYS[k], second, amount)
      redis.call('HINCRBY', KEYS[k], 'total', amount)
    end
    k = k + 1
  elseif kind == 'c' then
    redis.call('ZREM', KEYS[k], id)
    k = k + 1
  else
    -- 'h': charged only if its reservation was still held (a settlement that may be repeated).
    local held = redis.call('HDEL', KEYS[k], 'r:' .. id)
    -- 'c:<id>': a reload from the ledger found the call there and counted it in 'spent'.
    -- 'x:<id>': its reservation lapsed unsettled (its worker died): charged as if still held.
    local counted, lapsed = false, 0
    if held == 0 then
      counted = redis.call('HDEL', KEYS[k], 'c:' .. id) == 1
      if not counted then lapsed = redis.call('HDEL', KEYS[k], 'x:' .. id) end
    end
    if not counted and (kind == 'b' or held == 1 or lapsed == 1)
        and redis.call('HEXISTS', KEYS[k], 'spent') == 1 then
      redis.call('HINCRBY', KEYS[k], 'spent', amount)
    end
    k = k + 1
  end
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

-- A budget's state, one read: spent (nil: not seeded), alerted, and what its live reservations
-- hold (expired ones are dropped: their worker died, and recovery did not release them; each
-- leaves 'x:<id>', so that recovery's settlement, which may come later, still charges it).
local function budget(key)
  local fields = redis.call('HGETALL', key)
  local spent, alerted, held, expired, lapsed = nil, 0, 0, {}, {}
  for j = 1, #fields, 2 do
    local f, v = fields[j], fields[j + 1]
    if f == 'spent' then
      spent = tonumber(v)
    elseif f == 'alerted' then
      alerted = tonumber(v)
    elseif string.sub(f, 1, 2) == 'r:' then
      local amount, expiry = string.match(v, '(%d+) (%d+)')
      if tonumber(expiry) <= now then
        expired[#expired + 1] = f
        lapsed[#lapsed + 1], lapsed[#lapsed + 2] = 'x:' .. string.sub(f, 3), 1
      else
        held = held + tonumber(amount)
      end
    elseif string.sub(f, 1, 2) == 'c:' and tonumber(v) <= now then
      expired[#expired + 1] = f
    end
  end
  if #expired > 0 then redis.call('HDEL', key, unpack(expired)) end
  if #lapsed > 0 then redis.call('HSET', key, unpack(lapsed)) end
  return spent, alerted, held
end

local function answer(values)
  for i, v in ipairs(values) do values[i] = string.format('%d', v) end
  return table.concat(values, ' ')
end

local checks, seeds = {}, {}
local spec = words(ARGV[5])
for i = 1, #spec, 7 do
  local c = {kind = spec[i], limit = tonumber(spec[i + 1]), amount = tonumber(spec[i + 2]),
             shadow = spec[i + 3] == '1', x1 = tonumber(spec[i + 4]), x2 = tonumber(spec[i + 5]),
             member = spec[i + 6], k = k}
  if c.kind == 's' then
    c.members = {}
    local first = tonumber(c.member)
    for l = 1, c.x2 do c.members[l] = ARGV[first + l - 1] end
    k = k + 1 + c.x2
  else
    k = k + 1
  end
  if c.kind == 'b' then
    c.spent, c.alerted, c.held = budget(KEYS[c.k])
    if c.spent == nil then seeds[#seeds + 1] = #checks end
  end
  checks[#checks + 1] = c
end
if #seeds > 0 then
  local out = {0, 0, -1, #seeds, now}
  for _, s in ipairs(seeds) do out[#out + 1] = s end
  return answer(out)
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
    local used = c.spent + c.held
    c.used = used
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
      add(KEYS[c.k], c.amount)
    elseif c.kind == 'c' then
      redis.call('ZADD', KEYS[c.k], now + lease, request_id)
      redis.call('EXPIRE', KEYS[c.k], lease + WINDOW)
    elseif c.kind == 's' then
      add(KEYS[c.k], c.amount)
    else
      -- The reservation, in the state hash: it has its expiry from its seed (the window's end).
      local fields = {'r:' .. request_id, string.format('%d %d', c.amount, now + lease)}
      -- What it held when checked, plus this reservation (nothing changed it since).
      local level = c.used + c.amount
      -- member: the alert thresholds in permille, ascending; 'alerted': how many have alerted.
      local crossed = 0
      for t in string.gmatch(c.member, '%d+') do
        if level * 1000 >= tonumber(t) * c.limit then crossed = crossed + 1 end
      end
      if crossed > c.alerted then
        fields[3], fields[4] = 'alerted', crossed
        outcomes[i][4] = crossed
      end
      redis.call('HSET', KEYS[c.k], unpack(fields))
    end
  end
end

local out = {failed == 0 and 1 or 0, failed, retry, 0, now}
for _, o in ipairs(outcomes) do
  for _, v in ipairs(o) do out[#out + 1] = v end
end
return answer(out)
"""
)

# ARGV: spent, ttl, force (0|1), then the calls unsettled (reserved, or lapsed) whose spend
# `spent` holds: each becomes 'c:<id>' → expiry (the hash's), so that their settlement, if it
# ever comes, neither charges them again nor is waited for (the reload followed a failure: it
# may have been lost).
_SEED = """
if ARGV[3] == '1' or redis.call('HEXISTS', KEYS[1], 'spent') == 0 then
  redis.call('HSET', KEYS[1], 'spent', ARGV[1])
  redis.call('EXPIRE', KEYS[1], ARGV[2])
  local keep = tonumber(redis.call('TIME')[1]) + tonumber(ARGV[2])
  for i = 4, #ARGV do
    local id = ARGV[i]
    if redis.call('HDEL', KEYS[1], 'r:' .. id, 'x:' .. id) > 0 then
      redis.call('HSET', KEYS[1], 'c:' .. id, keep)
    end
  end
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


def _encode(check: Check, strings: list[str]) -> tuple[list[str], str]:
    """The check's keys and its 7 words; a share check's members go to `strings` (the ARGV
    entries after the fixed five, referred to by index)."""
    shadow = 1 if check.shadow else 0
    if isinstance(check, WindowCheck):
        return [check.key], f"w {check.limit} {check.amount} {shadow} 0 0 -"
    if isinstance(check, ConcurrencyCheck):
        return [check.key], f"c {check.limit} 1 {shadow} 0 0 -"
    if isinstance(check, BudgetCheck):
        thresholds = ",".join(str(p) for p in check.alert_permille) or "-"
        words = f"b {check.limit} {check.amount} {shadow} 0 0 {thresholds}"
        return [check.key], words
    assert isinstance(check, ShareCheck)
    first = _FIXED_ARGS + len(strings) + 1
    strings.extend(member for _, member in check.levels)
    keys = [check.usage_key, *(active_key for active_key, _ in check.levels)]
    words = (
        f"s {check.capacity} {check.amount} {shadow} {check.reserve_permille} "
        f"{len(check.levels)} {first}"
    )
    return keys, words


_FIXED_ARGS = 5  # request id, lease, dry, settlements, checks
# How long a settlement waits for an admission to carry it to Redis before it goes on its own.
# 0: to the end of the event loop's current pass only. Settlements of requests that finish
# together still go together, and an admission sent in the same pass still carries them; but no
# admission waits on a later request's settlement. Carried settlements made the admission's own
# script longer: at 100 evenly spaced req/s, waiting 20 ms for the next admission cost about
# 1.0 ms p50 per request with every level of limits on, sending them at once about 0.5 ms, for
# the same req/s at 32 connections (docs/perf/README.md, item 16).
SETTLE_BATCH_S = 0.0


class _Batch:
    """Settlements waiting to go to Redis with the next admission on their hash tag."""

    __slots__ = ("done", "items", "keys", "tag")

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.keys: list[str] = []
        self.items: list[tuple[str, int, int, str]] = []  # kind, bucket second, amount, request
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def encode(self, strings: list[str]) -> str:
        index: dict[str, int] = {}
        words = []
        for kind, second, amount, request_id in self.items:
            if request_id not in index:
                strings.append(request_id)
                index[request_id] = _FIXED_ARGS + len(strings)
            words.append(f"{kind} {second} {amount} {index[request_id]}")
        return " ".join(words)

    def resolve(self, error: BaseException | None) -> None:
        if self.done.done():
            return
        if error is None:
            self.done.set_result(None)
        else:
            self.done.set_exception(error)
            self.done.exception()  # retrieved: a batch nobody awaits must not log


class StoreBusy(Exception):
    """Every connection to the store stayed busy for the whole wait: the gateway is overloaded,
    the store is not down. Never a reason to serve a request unchecked."""


class RedisQuotaStore:
    """`max_in_flight` calls at once (the client's pool holds as many connections); the others
    wait in line up to `wait_s`, so a burst queues for a connection instead of failing.

    One round trip on a request's path: its admission. Its settlement comes after its answer,
    batched with the other settlements of the same event-loop pass (on a cluster, per hash tag),
    and with an admission if one goes in that pass, in the same script and before it
    (SETTLE_BATCH_S; docs/quotas.md, "What it costs")."""

    def __init__(
        self,
        client: Redis | RedisCluster,
        *,
        max_in_flight: int = 64,
        wait_s: float = 2.0,
        settle_batch_s: float = SETTLE_BATCH_S,
    ) -> None:
        self.client = client
        self._cluster = isinstance(client, RedisCluster)
        self._admit = client.register_script(_ADMIT)
        self._seed = client.register_script(_SEED)
        self._slots = asyncio.Semaphore(max_in_flight)
        self._wait_s = wait_s
        self._batch_s = settle_batch_s
        self._batches: dict[str, _Batch] = {}  # hash tag ("" off a cluster) → waiting
        self._flush: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task[list[int]]] = set()

    @asynccontextmanager
    async def _slot(self) -> AsyncIterator[None]:
        """A connection, waited for at most `wait_s`; then the call itself gets `wait_s` in
        all (connecting included), whatever the client does inside it."""
        try:
            if self._slots.locked():  # only a wait needs a deadline (a timer per call costs)
                async with asyncio.timeout(self._wait_s):
                    await self._slots.acquire()
            else:
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

    def _tag(self, key: str) -> str:
        return hash_tag(key) if self._cluster else ""

    async def _call(
        self,
        keys: list[str],
        checks: str,
        strings: list[str],
        request_id: str,
        lease_s: int,
        dry: bool,
        batch: _Batch | None,
    ) -> list[int]:
        """One script: `batch`'s settlements, then the checks. Shielded when it carries
        settlements: a request cancelled mid-admission must not leave them unknown."""
        settlements = ""
        if batch is not None:
            extra: list[str] = []
            settlements = batch.encode(extra)
            # The settlements' request ids come first among the strings: renumber the checks'.
            if extra and strings:
                checks = _shift_members(checks, len(extra))
            strings = [*extra, *strings]
            keys = [*batch.keys, *keys]
        args = [request_id, lease_s, 1 if dry else 0, settlements, checks, *strings]

        async def run() -> list[int]:
            try:
                async with self._slot():
                    raw = await self._admit(keys=keys, args=args)
            except StoreBusy:
                if batch is not None:  # nothing was sent: the settlements wait for the next call
                    self._wait_again(batch)
                raise
            except BaseException as error:
                if batch is not None:
                    batch.resolve(error)
                raise
            if batch is not None:
                batch.resolve(None)
            return [int(v) for v in raw.split()]

        if batch is None:
            return await run()
        return await asyncio.shield(asyncio.ensure_future(run()))

    async def admit(
        self, checks: Sequence[Check], request_id: str, lease_s: int, *, dry: bool = False
    ) -> Verdict:
        keys: list[str] = []
        words: list[str] = []
        strings: list[str] = []
        for check in checks:
            check_keys, check_words = _encode(check, strings)
            keys += check_keys
            words.append(check_words)
        batch = self._batches.pop(self._tag(keys[0]), None) if keys else None
        raw = await self._call(keys, " ".join(words), strings, request_id, lease_s, dry, batch)
        allowed, failed, retry, seeds = raw[0], raw[1], raw[2], raw[3]
        now = raw[4]
        if seeds:
            return Verdict(allowed=False, needs_seed=tuple(raw[5 : 5 + seeds]), at_s=now)
        values = iter(raw[5:])
        outcomes = tuple(
            Outcome(remaining, reset, exceeded == 1, alert)
            for remaining, reset, exceeded, alert in zip(
                values, values, values, values, strict=True
            )
        )
        return Verdict(
            allowed=bool(allowed),
            outcomes=outcomes,
            failed=failed - 1 if failed else None,
            retry_after_s=None if retry < 0 else retry,
            at_s=now,
        )

    async def settle(self, release: Release, request_id: str, *, at_once: bool = False) -> None:
        """Returns once Redis applied the release (raises what the call that carried it
        raised); `at_once`: send it (and whatever waits) now, not with the next admission.
        On a cluster, one batch per hash tag (a tenant's counters, a provider account's): each
        item settles on its own, so settling slot by slot loses no atomicity."""
        waits: list[asyncio.Future[None]] = []

        def batch(key: str) -> _Batch:
            tag = self._tag(key)
            found = self._batches.get(tag)
            if found is None:
                found = self._batches[tag] = _Batch(tag)
            if not waits or waits[-1] is not found.done:
                waits.append(found.done)
            return found

        for key, second, delta in release.window_adjustments:
            b = batch(key)
            b.keys.append(key)
            b.items.append(("w", second, delta, request_id))
        for key in release.concurrency_keys:
            b = batch(key)
            b.keys.append(key)
            b.items.append(("c", 0, 0, request_id))
        for key, actual in release.budget_spend:
            b = batch(key)
            b.keys.append(key)
            b.items.append(("h" if release.if_still_reserved else "b", 0, actual, request_id))
        if not waits:
            return
        if at_once:
            if self._flush is not None:
                self._flush.cancel()
            self._flush_now()
        elif self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(self._batch_s, self._flush_now)
        for done in set(waits):
            await asyncio.shield(done)

    def _wait_again(self, batch: _Batch) -> None:
        waiting = self._batches.get(batch.tag)
        if waiting is None:
            self._batches[batch.tag] = batch
        else:
            waiting.keys[:0] = batch.keys
            waiting.items[:0] = batch.items
            waiting.done.add_done_callback(lambda done: batch.resolve(done.exception()))
        if self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(self._batch_s, self._flush_now)

    async def drain(self) -> None:
        """Send every waiting settlement now, and wait for it to be applied (before a budget
        window is reloaded from the ledger, which already holds their spend)."""
        if self._flush is not None:
            self._flush.cancel()
        waiting = [batch.done for batch in self._batches.values()]
        self._flush_now()
        if waiting:
            await asyncio.wait(waiting)

    def _flush_now(self) -> None:
        """No admission came to carry the waiting settlements: they go on their own."""
        self._flush = None
        batches, self._batches = self._batches, {}
        for batch in batches.values():
            task = asyncio.ensure_future(self._call([], "", [], "", 0, False, batch))
            self._flushing.add(task)
            task.add_done_callback(self._flushed)

    def _flushed(self, task: asyncio.Task[Any]) -> None:
        self._flushing.discard(task)
        if not task.cancelled():
            task.exception()  # the settlements' own callers were told; nothing left to log

    async def seed(
        self, key: str, spent: int, ttl_s: int, *, force: bool = False, counted: Sequence[str] = ()
    ) -> None:
        async with self._slot():
            await self._seed(keys=[key], args=[spent, ttl_s, "1" if force else "0", *counted])

    async def reserved_ids(self, key: str) -> list[str]:
        """The requests unsettled on a budget hash: holding a reservation, or one that lapsed."""
        async with self._slot():
            fields = await self.client.hkeys(key)
        return [name[2:] for name in map(_text, fields) if name.startswith(("r:", "x:"))]

    async def budget_state(self, key: str) -> tuple[int | None, int]:
        async with self._slot():
            fields = await self.client.hgetall(key)
        return budget_counters(fields)


def budget_counters(fields: Mapping[Any, Any]) -> tuple[int | None, int]:
    """A budget hash's (spent, reserved) in nano-USD, from HGETALL (bytes or, with a client that
    decodes, str): spent None if not seeded."""
    text = {_text(f): _text(v) for f, v in fields.items()}
    held = sum(int(v.split()[0]) for f, v in text.items() if f.startswith("r:"))
    spent = text.get("spent")
    return (None if spent is None else int(spent)), held


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _shift_members(checks: str, by: int) -> str:
    """The checks' words with each share check's first-member index moved on by `by`."""
    words = checks.split(" ")
    for i in range(0, len(words), 7):
        if words[i] == "s":
            words[i + 6] = str(int(words[i + 6]) + by)
    return " ".join(words)
