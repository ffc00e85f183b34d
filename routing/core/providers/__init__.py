"""One adapter per wire format, behind `ProviderAdapter` (base.py)."""
