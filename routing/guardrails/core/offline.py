"""Keep Presidio's dependencies off the network.

Presidio's e-mail recognizer asks tldextract for the domain suffix; tldextract's default extractor
downloads the public-suffix list on first use. The snapshot shipped inside tldextract is enough
to tell a domain from garbage, so the module-level extractor is replaced by one that never
fetches and never writes a cache directory.
"""

from __future__ import annotations


def make_tldextract_offline() -> None:
    # Imported here, with Presidio: tldextract brings `requests` (about 18 MiB), which a worker
    # whose tenants have no PII policy never needs.
    import tldextract.tldextract as _tldextract

    current = _tldextract.TLD_EXTRACTOR
    if getattr(current, "suffix_list_urls", None) == ():
        return
    _tldextract.TLD_EXTRACTOR = _tldextract.TLDExtract(
        suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True
    )
