"""The per-process guardrail engines: one Presidio analyzer, one set of injection detectors.

Built once, on first use, off the event loop (importing Presidio and building its registry takes
a second or two); never per request.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from dataclasses import dataclass, field

from django.conf import settings

from routing.guardrails.core.images import ImageReader
from routing.guardrails.core.injection import DetectorSet
from routing.guardrails.core.pii import PiiScanner
from routing.guardrails.core.structured import SchemaCache

logger = logging.getLogger(__name__)
_AUTO_MODELS = ("en_core_web_lg", "en_core_web_md", "en_core_web_sm")


@dataclass
class Engines:
    scanner: PiiScanner
    detectors: DetectorSet = field(default_factory=DetectorSet)
    schemas: SchemaCache = field(default_factory=SchemaCache)
    images: ImageReader = field(default_factory=ImageReader)


def spacy_model() -> str | None:
    """The spaCy model named in settings, or the first installed one with "auto"."""
    wanted = settings.GUARDRAILS_SPACY_MODEL
    if wanted != "auto":
        return wanted or None
    import spacy.util

    return next((name for name in _AUTO_MODELS if spacy.util.is_package(name)), None)


_building = threading.Lock()


@functools.cache
def _build() -> Engines:
    model = spacy_model()
    logger.info("guardrails: PII detection with %s", model or "pattern recognizers only")
    return Engines(
        scanner=PiiScanner(spacy_model=model),
        images=ImageReader(settings.GUARDRAILS_TESSERACT),
    )


def engines() -> Engines:
    with _building:  # concurrent first requests build one analyzer, not several
        return _build()


def engines_built() -> bool:
    return bool(_build.cache_info().currsize)


async def engines_ready() -> Engines:
    if engines_built():
        return _build()
    return await asyncio.to_thread(engines)
