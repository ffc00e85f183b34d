"""What other apps hear of the audit trail, so that audit/ imports none of them."""

from __future__ import annotations

from django.dispatch import Signal

# An end user's records were erased (audit.services.audit_records_erase), inside its
# transaction: `tenant_id`, `request_ids` (none when every record was erased before) and
# `end_user`. An app that keeps copies of those requests' content elsewhere (stored Responses API
# responses and conversation items, also those the end user added directly) erases them too and
# returns how many rows it erased.
records_erased = Signal()
