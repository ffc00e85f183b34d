"""Varied demo traffic through a running gateway, so every console page has something to show.

Three teams' keys, several end users and features, the chat, small, auto-routed and embedding
models, a stream, a tool call, client data the PII policy masks, a fallback (demo-failover's first
deployment is offline), a provider error and a request the gateway refuses. Reads .env.demo's
variables from the environment: `source .env.demo && .venv/bin/python scripts/demo_traffic.py`.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

USERS = ("carol-42", "dan-7", "erin-3", "farid-11")
TOOL = {
    "type": "function",
    "function": {
        "name": "get_portfolio",
        "description": "The client's holdings",
        "parameters": {"type": "object", "properties": {"client_id": {"type": "string"}}},
    },
}


@dataclass
class Call:
    key: str  # the variable holding the key
    model: str
    text: str
    user: str
    feature: str
    stream: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    path: str = "/chat/completions"


def calls() -> list[Call]:
    made = []
    questions = [
        "Summarise the Hartley portfolio's bond exposure in two lines.",
        "Draft a short note to a client about rebalancing.",
        "classify the sentiment of: markets look steady this quarter",
        "extract the invoice number from: Invoice INV-2291 due 2026-12-31",
    ]
    keys = ("GATEWAY_API_KEY", "GATEWAY_DEMO_RESEARCH_KEY", "GATEWAY_DEMO_OPS_KEY")
    features = ("advice", "research", "back-office")
    for i in range(24):
        team = i % 3
        made.append(
            Call(
                keys[team],
                ("demo", "demo-auto", "mock-gpt-mini")[i % 3],
                questions[i % len(questions)],
                USERS[i % len(USERS)],
                features[team],
            )
        )
    made += [
        Call(
            "GATEWAY_API_KEY", "demo", "Explain dollar-cost averaging.", "carol-42", "advice", True
        ),
        Call(
            "GATEWAY_API_KEY",
            "demo",
            "Client Jane Roe, SSN 078-05-1120, e-mail jane.roe@example.com, asks about her IRA.",
            "carol-42",
            "advice",
        ),
        Call(
            "GATEWAY_API_KEY",
            "demo",
            "What does client C-1042 hold?",
            "dan-7",
            "advice",
            extra={"tools": [TOOL]},
        ),
        Call("GATEWAY_DEMO_OPS_KEY", "demo-failover", "Nightly summary, please.", "", "batch"),
        Call("GATEWAY_DEMO_OPS_KEY", "demo-failover", "Morning summary, please.", "", "batch"),
        Call(
            "GATEWAY_DEMO_RESEARCH_KEY", "demo", "[mock status=500] Retry me.", "erin-3", "research"
        ),
        Call(
            "GATEWAY_DEMO_RESEARCH_KEY", "gpt-unknown", "Which model is this?", "erin-3", "research"
        ),
        Call(
            "GATEWAY_DEMO_RESEARCH_KEY",
            "demo-embed",
            "quarterly outlook",
            "farid-11",
            "search",
            path="/embeddings",
        ),
    ]
    return made


def send(client: httpx.Client, base: str, call: Call) -> int:
    headers = {"authorization": f"Bearer {os.environ[call.key]}", "x-gateway-feature": call.feature}
    if call.user:
        headers["x-gateway-end-user"] = call.user
    if call.path == "/embeddings":
        body: dict[str, Any] = {"model": call.model, "input": call.text}
    else:
        body = {"model": call.model, "messages": [{"role": "user", "content": call.text}]}
        body |= {"stream": call.stream, **call.extra}
    if call.stream:
        with client.stream("POST", base + call.path, headers=headers, json=body) as response:
            for _ in response.iter_bytes():
                pass
            return response.status_code
    return client.post(base + call.path, headers=headers, json=body).status_code


def wait_until_up(client: httpx.Client, base: str, seconds: float = 60) -> bool:
    root = base.removesuffix("/v1")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if client.get(root + "/healthz").status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    return False


def main() -> int:
    base = os.environ["GATEWAY_URL"].rstrip("/")
    with httpx.Client(timeout=30) as client:
        if not wait_until_up(client, base):
            print("demo traffic: the gateway did not come up", file=sys.stderr)
            return 1
        statuses = [send(client, base, call) for call in calls()]
    ok = sum(1 for s in statuses if s == 200)
    print(
        f"Demo traffic: {len(statuses)} requests sent ({ok} answered, {len(statuses) - ok} errors as planned)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
