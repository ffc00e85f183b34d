"""Quickstart snippets: working calls for the developer's key, model and the gateway's URL."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.http import HttpRequest

KEY_ENV = "GATEWAY_API_KEY"


@dataclass(frozen=True, slots=True)
class Snippet:
    slug: str
    title: str
    language: str
    code: str


def gateway_url(request: HttpRequest) -> str:
    """GATEWAY_PUBLIC_URL when set, else the host the browser reached the console on."""
    return (settings.CONSOLE_PUBLIC_URL or request.build_absolute_uri("/")).rstrip("/")


def quickstart_snippets(*, base_url: str, model: str, key: str | None) -> list[Snippet]:
    """With the key only right after it was created; otherwise read from an environment variable."""
    shell_key = key or f"${KEY_ENV}"
    py_key = f'"{key}"' if key else f'os.environ["{KEY_ENV}"]'
    py_import = "" if key else "import os\n\n"
    curl = (
        f"curl {base_url}/v1/chat/completions \\\n"
        f'  -H "Authorization: Bearer {shell_key}" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f'  -d \'{{"model": "{model}", "messages": [{{"role": "user", "content": "Hello, gateway"}}]}}\''
    )
    openai_code = (
        f"{py_import}from openai import OpenAI\n\n"
        f'client = OpenAI(base_url="{base_url}/v1", api_key={py_key})\n'
        "reply = client.chat.completions.create(\n"
        f'    model="{model}",\n'
        '    messages=[{"role": "user", "content": "Hello, gateway"}],\n'
        ")\n"
        "print(reply.choices[0].message.content)\n"
    )
    anthropic_code = (
        f"{py_import}from anthropic import Anthropic\n\n"
        f'client = Anthropic(base_url="{base_url}", api_key={py_key})\n'
        "reply = client.messages.create(\n"
        f'    model="{model}",\n'
        "    max_tokens=256,\n"
        '    messages=[{"role": "user", "content": "Hello, gateway"}],\n'
        ")\n"
        "print(reply.content[0].text)\n"
    )
    return [
        Snippet("curl", "curl", "shell", curl),
        Snippet("python-openai", "Python (openai SDK)", "python", openai_code),
        Snippet("python-anthropic", "Python (anthropic SDK)", "python", anthropic_code),
    ]
