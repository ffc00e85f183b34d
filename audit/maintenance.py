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
        # On the partitioned table (migration 0014) the index is the parent of one GIN index per
        # month; only those hold pending lists. Inserts go to this month's (and the default's).
        cursor.execute(
            "SELECT coalesce(sum(gin_clean_pending_list(i.oid)), 0) FROM pg_class i "
            "WHERE i.relkind = 'i' AND i.relam = (SELECT oid FROM pg_am WHERE amname = 'gin') AND ("
            "i.oid = %s::regclass"
            " OR i.oid IN (SELECT inhrelid FROM pg_inherits WHERE inhparent = %s::regclass))",
            [SEARCH_INDEX, SEARCH_INDEX],
        )
        return int(cursor.fetchone()[0])
