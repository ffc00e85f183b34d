"""Reading the Sentinel settings (REDIS_SENTINELS); imported by settings, so no Django here."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from gateway_site.env import SettingError


def redis_sentinels(entries: list[str]) -> tuple[tuple[str, int], ...]:
    """ "host:port,host:port" → ((host, port), …); a bad entry fails at start-up."""
    found = []
    for entry in entries:
        host, _, port = entry.rpartition(":")
        if not host or not port.isdigit():
            raise SettingError(f"REDIS_SENTINELS entries are host:port, got {entry!r}")
        found.append((host.strip("[]"), int(port)))
    return tuple(found)


def celery_sentinel_url(sentinels: tuple[tuple[str, int], ...], redis_url: str) -> str:
    """Celery's broker through the same sentinels, in kombu's form
    (`sentinel://[:password@]host:port/db;…`, the master's name in its transport options)."""
    parts = urlsplit(redis_url)
    credentials = ""
    if parts.password:
        credentials = f"{quote(parts.username or '', safe='')}:{quote(parts.password, safe='')}@"
    db = parts.path.strip("/") or "0"
    return ";".join(f"sentinel://{credentials}{host}:{port}/{db}" for host, port in sentinels)
