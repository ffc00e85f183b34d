# The management API's two tenants and their admin keys (tests/management/conftest.py).
from tests.management.conftest import as_ours, ours, theirs  # noqa: F401
