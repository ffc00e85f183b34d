"""Upkeep of the audit table that must never fall on a request.

The full-text index (`audit_search_document`, GIN) takes new rows into a pending list and merges
the list into the index when it exceeds `gin_pending_list_limit`. Without autovacuum doing it in
the background, the insert that crosses the limit does the merge, inside the group commit that
requests wait for: a stall of 100-250 ms that grows with the index (the soak's p99 drift). Merging
the list every few seconds off the request path keeps it short, so no insert ever has to.
"""

from __future__ import annotations

from django.db import connection

SEARCH_INDEX = "audit_search_document"


def search_index_tidy() -> int:
    """Merge the search index's pending list now; the number of pages it removed (0 on SQLite).
    Harmless beside autovacuum and other workers: PostgreSQL lets one merge run at a time."""
    if connection.vendor != "postgresql":
        return 0
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [SEARCH_INDEX])
        if not cursor.fetchone()[0]:
            return 0
        cursor.execute("SELECT gin_clean_pending_list(%s::regclass)", [SEARCH_INDEX])
        return int(cursor.fetchone()[0])
