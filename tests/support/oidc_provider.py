"""A small but real OpenID Connect provider on loopback, for single sign-on tests.

Authorization-code flow with a sign-in form, RS256 ID tokens signed with Authlib's JOSE library
(joserfc, which replaces the deprecated authlib.jose), a userinfo
endpoint and a JWKS. Only what a relying party exercises; the users and their claims are given.
"""

from __future__ import annotations

import html
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse

from joserfc import jwt
from joserfc.jwk import RSAKey

from tests.support.live import free_port


@dataclass
class OIDCProvider:
    client_id: str
    client_secret: str
    users: dict[str, dict[str, Any]]  # username → extra claims
    port: int = field(default_factory=free_port)
    key: RSAKey = field(
        default_factory=lambda: RSAKey.generate_key(
            2048, parameters={"kid": "test-idp-1", "alg": "RS256", "use": "sig"}
        )
    )
    codes: dict[str, dict[str, Any]] = field(default_factory=dict)
    tokens: dict[str, dict[str, Any]] = field(default_factory=dict)
    server: ThreadingHTTPServer | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        """What the gateway needs to use this provider (docs/config.md)."""
        return {
            "GATEWAY_OIDC_CLIENT_ID": self.client_id,
            "GATEWAY_OIDC_CLIENT_SECRET": self.client_secret,
            "GATEWAY_OIDC_AUTHORIZATION_ENDPOINT": f"{self.issuer}/authorize",
            "GATEWAY_OIDC_TOKEN_ENDPOINT": f"{self.issuer}/token",
            "GATEWAY_OIDC_USERINFO_ENDPOINT": f"{self.issuer}/userinfo",
            "GATEWAY_OIDC_JWKS_ENDPOINT": f"{self.issuer}/jwks",
        }

    def claims(self, username: str) -> dict[str, Any]:
        return {"sub": f"sub-{username}", "preferred_username": username, **self.users[username]}

    def id_token(self, username: str, nonce: str | None) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": self.client_id,
            "iat": now,
            "exp": now + 300,
            **({"nonce": nonce} if nonce else {}),
            **self.claims(username),
        }
        return jwt.encode({"alg": "RS256", "kid": self.key.kid}, payload, self.key)

    def jwks(self) -> dict[str, Any]:
        return {"keys": [self.key.as_dict(private=False)]}

    def start(self) -> OIDCProvider:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: str | dict[str, Any], **headers: str) -> None:
                data = json.dumps(body) if isinstance(body, dict) else body
                self.send_response(status)
                kind = "application/json" if isinstance(body, dict) else "text/html"
                self.send_header("Content-Type", headers.pop("content_type", kind))
                for name, value in headers.items():
                    self.send_header(name.replace("_", "-"), value)
                self.send_header("Content-Length", str(len(data.encode())))
                self.end_headers()
                self.wfile.write(data.encode())

            def _form(self) -> dict[str, str]:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
                return {k: v[0] for k, v in parse_qs(raw).items()}

            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                if url.path == "/authorize":
                    if query.get("client_id") != provider.client_id:
                        return self._send(400, "unknown client")
                    hidden = "".join(
                        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                        for k, v in query.items()
                    )
                    page = (
                        "<!doctype html><title>Test IdP</title><h1>Test identity provider</h1>"
                        f'<form method="post" action="/authorize">{hidden}'
                        '<label for="u">Username</label><input id="u" name="username">'
                        '<button type="submit">Continue</button></form>'
                    )
                    return self._send(200, page)
                if url.path == "/jwks":
                    return self._send(200, provider.jwks())
                if url.path == "/userinfo":
                    token = self.headers.get("Authorization", "").removeprefix("Bearer ")
                    grant = provider.tokens.get(token)
                    if grant is None:
                        return self._send(401, {"error": "invalid_token"})
                    return self._send(200, provider.claims(grant["username"]))
                return self._send(404, "not found")

            def do_POST(self) -> None:
                form = self._form()
                if self.path == "/authorize":
                    if form.get("username") not in provider.users:
                        return self._send(403, "no such user")
                    code = secrets.token_urlsafe(16)
                    provider.codes[code] = form
                    target = (
                        form["redirect_uri"]
                        + "?"
                        + urlencode({"code": code, "state": form.get("state", "")})
                    )
                    return self._send(302, "", Location=target)
                if self.path == "/token":
                    grant = provider.codes.pop(form.get("code", ""), None)
                    if (
                        grant is None
                        or form.get("client_id") != provider.client_id
                        or form.get("client_secret") != provider.client_secret
                        or form.get("redirect_uri") != grant["redirect_uri"]
                    ):
                        return self._send(400, {"error": "invalid_grant"})
                    access = secrets.token_urlsafe(24)
                    provider.tokens[access] = grant
                    return self._send(
                        200,
                        {
                            "access_token": access,
                            "token_type": "Bearer",
                            "expires_in": 300,
                            "id_token": provider.id_token(grant["username"], grant.get("nonce")),
                        },
                    )
                return self._send(404, "not found")

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
