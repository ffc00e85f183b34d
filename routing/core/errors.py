"""Failures the proxy distinguishes: the client's fault, or the provider's."""

from __future__ import annotations

# Statuses after which another deployment may succeed: rate limits, overload, server faults.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504, 529})


class UpstreamError(Exception):
    """A provider answered with an error or could not be reached.

    `status` is None when no HTTP answer came (timeout, refused connection, broken stream).
    `body` is the provider's error body, already in OpenAI's error format.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None,
        cause: str,
        body: bytes = b"",
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.cause = (
            cause  # "rate_limited", "server_error", "timeout", "connection", "client_error"
        )
        self.body = body
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        # A provider that refused the gateway's key did nothing: another deployment may answer.
        return (
            self.status is None
            or self.status in RETRYABLE_STATUSES
            or self.cause == "provider_auth"
        )


def cause_for_status(status: int) -> str:
    if status == 429:
        return "rate_limited"
    if status in (529, 503):
        return "overloaded"
    if status >= 500:
        return "server_error"
    if status in (401, 403):
        # The provider refused the gateway's own credentials: not the client's doing.
        return "provider_auth"
    return "client_error"


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None  # an HTTP date; rare for LLM providers and not worth parsing here


def public_reason(error: UpstreamError) -> str:
    """What a client may be told of a provider's failure: its status or its kind, never the
    exception text underneath (hosts, library names; those stay in the audit record)."""
    if error.cause == "stream_stalled":
        return "no data within the upstream read timeout"
    if error.cause == "stream_broken":
        return "the connection broke"
    if error.status is not None:
        return f"HTTP {error.status}"
    return error.cause.replace("_", " ")
