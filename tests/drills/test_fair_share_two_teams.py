"""Drill: one advisor's flood must not get their own teammates refused.

The incident: a provider account of 60 RPM shared by two teams; one advisor flooded, colleagues
asked once every 20 s, and the advisor's teammates were refused ("no capacity left on your team's
fair share") while the account had served only 33 requests in the last minute: the share was
applied per team, so the whole team paid for one member. Here the account is shared by two
teams of one tenant and a second tenant, through two gateway processes, with end users named
(the `user` field) and one caller that names none (its key is its own share). One advisor floods;
every other caller, the flooder's teammates included, asks a few times and is never refused.
Run alone: `pytest tests/drills/test_fair_share_two_teams.py` (about 15 s).
"""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import openai
import pytest

from mock_provider.testing import run_mock_server
from routing import services as routing
from tests.support.live import LiveGateway, start_gateway
from tests.support.world import Key, build_tenant

pytestmark = [pytest.mark.e2e, pytest.mark.django_db]

ACCOUNT_RPM = 60
FLOOD = 40
# Who asks, with which key. 54 of the 60 are shared (6 kept for newcomers): 27 per tenant;
# WealthCo's 27 is 13.5 per team; the advisors' 13.5 is 3.375 each for the flooder, two
# colleagues and the batch job (a key that names no end user); research's is 6.75 each.
LIGHT = {
    "advisor-ana": "advisors",
    "advisor-ben": "advisors",
    "": "batch",  # no end user: the key is the consumer
    "analyst-cho": "research",
    "analyst-dev": "research",
    "ops-eli": "ops",
}
HEAVY = "advisor-max"
ASKS_EACH = 3  # everyone's first question, then two more during the flood


@dataclass
class Account:
    keys: dict[str, str]  # caller → key
    gateways: tuple[LiveGateway, LiveGateway]
    provider: Any


@pytest.fixture(scope="module")
def account(django_db_setup: None, django_db_blocker: Any) -> Iterator[Account]:
    with run_mock_server() as provider, django_db_blocker.unblock():
        # A name of its own per run: the account's counters never carry over from an earlier one.
        shared = routing.provider_upsert(
            name=f"shared-llm-{uuid.uuid4().hex[:8]}",
            kind="openai",
            base_url=provider.base_url + "/v1",
            credential="sk-shared",
            region="us",
            requests_per_minute=ACCOUNT_RPM,
        )
        model = routing.deployment_upsert(
            name="shared-gpt",
            provider=shared,
            upstream_model="shared-gpt-1",
            input_price_per_mtok=Decimal("1"),
            output_price_per_mtok=Decimal("2"),
        )
        routing.route_upsert(alias="assistant", description="", deployments=[model])
        wealth = build_tenant(
            "fair-wealth",
            name="WealthCo",
            teams={"advisors": "advisors", "research": "research"},
            keys=["advisors-app", "advisors-batch", Key("research-app", team="research")],
        )
        other = build_tenant("fair-other", name="OtherCo", teams={"ops": "ops"}, keys=["ops-app"])
        team_keys = {
            slug: world.key(f"{slug}-app")
            for world, slug in ((wealth, "advisors"), (wealth, "research"), (other, "ops"))
        }
        keys = {who: team_keys[team] for who, team in LIGHT.items() if team != "batch"}
        keys[""] = wealth.key("advisors-batch")
        keys[HEAVY] = team_keys["advisors"]
        # The drill is about fairness, not a failing store: a slow Redis answer on a loaded test
        # host must not count as a failure (which would let requests through unchecked).
        slow_ok = {"GATEWAY_QUOTA_STORE_TIMEOUT_SECONDS": 15}
        gateways = (start_gateway(**slow_ok), start_gateway(**slow_ok))
        try:
            yield Account(keys, gateways, provider)
        finally:
            for gateway in gateways:
                gateway.stop()


def ask(account: Account, who: str, n: int) -> tuple[int, dict[str, Any]]:
    """One request through one of the two gateways: the HTTP status and the error, if any."""
    sdk = openai.OpenAI(
        base_url=account.gateways[n % 2].api_url, api_key=account.keys[who], max_retries=0
    )
    extra = {"user": who} if who else {}
    try:
        sdk.chat.completions.create(
            model="assistant",
            messages=[{"role": "user", "content": f"Question {n} from {who or 'the batch job'}"}],
            **extra,
        )
    except openai.APIStatusError as error:
        return error.status_code, error.response.json().get("error", {})
    return 200, {}


def max_in_any_minute(times: list[float]) -> int:
    times = sorted(times)
    return max(
        (sum(1 for t in times[i:] if t < start + 60) for i, start in enumerate(times)), default=0
    )


def test_a_flooding_advisor_is_held_to_their_share_and_nobody_else_is_refused(
    account: Account,
) -> None:
    everyone = [*LIGHT, HEAVY]
    seen: dict[str, list[int]] = {who: [] for who in everyone}
    # Everyone's first question of the minute.
    for n, who in enumerate(everyone):
        seen[who].append(ask(account, who, n)[0])
    with ThreadPoolExecutor(max_workers=24) as pool:
        flood = [pool.submit(ask, account, HEAVY, 1000 + i) for i in range(FLOOD)]
        # The colleagues keep working while the flood is on, through both gateways.
        later = {
            (who, r): pool.submit(ask, account, who, 100 * r + n)
            for r in range(1, ASKS_EACH)
            for n, who in enumerate(LIGHT)
        }
        flooded = [f.result() for f in flood]
        for (who, _), future in later.items():
            seen[who].append(future.result()[0])

    for who in LIGHT:
        assert seen[who] == [200] * ASKS_EACH, f"{who or 'the batch key'} was refused: {seen[who]}"
    # The flooder got its share (3 of its 3.375), counting its first question, and no more.
    statuses = Counter(status for status, _ in flooded)
    assert seen[HEAVY] == [200]
    assert statuses == {200: 2, 429: FLOOD - 2}
    refusals = [error for status, error in flooded if status == 429]
    assert {error["code"] for error in refusals} == {"provider_capacity"}
    assert all("fair share" in error["message"] for error in refusals)
    # Refused on its share while the account had room: it served far fewer than its 60.
    received = [r["received_at"] for r in account.provider.requests()]
    assert len(received) == len(LIGHT) * ASKS_EACH + 3
    assert max_in_any_minute(received) <= ACCOUNT_RPM


def test_when_everyone_floods_each_gets_its_share_and_the_account_never_more_than_its_rpm(
    account: Account,
) -> None:
    """Every caller of both tenants at once through both gateways, after the first test (the
    same minute): each stops at its own share, wherever its teammates are."""
    callers = [*LIGHT, HEAVY] * 30
    with ThreadPoolExecutor(max_workers=24) as pool:
        answers = list(pool.map(lambda pair: ask(account, pair[1], pair[0])[0], enumerate(callers)))
    assert set(answers) <= {200, 429}
    served = Counter(who for who, status in zip(callers, answers, strict=True) if status == 200)
    # Shares: 3.375 for each of the advisors' four callers (3 each already used), 6.75 for
    # each analyst (3 used), 27 for OtherCo's only user (3 used).
    assert served == {"analyst-cho": 3, "analyst-dev": 3, "ops-eli": 24}
    received = [r["received_at"] for r in account.provider.requests()]
    assert len(received) == 4 * 3 + 2 * 6 + 27  # 51: the 6 kept for newcomers stay free
    assert max_in_any_minute(received) <= ACCOUNT_RPM
