"""PII in the images of a request: OCR (presidio-image-redactor's tesseract reader), the policy's
entities looked for in the text found, and the words that hold them painted over.

What happens is the policy's (`images:`): `mask` forwards the image with the PII boxes filled,
`refuse` refuses the request, `record` forwards it as sent; the finding is recorded either way.
An image that cannot be read — no tesseract on the machine, a remote URL (the gateway fetches
nothing), bytes that are not an image — gets the policy's `fallback` (`refuse` or `record`),
and that is recorded too. Findings carry the entity type and where, never the text read.
"""

from __future__ import annotations

import base64
import binascii
import copy
import io
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from routing.guardrails.core.checks import JSON, Refusal
from routing.guardrails.core.pii import PiiScanner, Span
from routing.guardrails.core.policy import Policy

_MAX_PIXELS = 40_000_000


class Unreadable(Exception):
    """The image could not be checked; the message says why (no value in it)."""


@dataclass(frozen=True, slots=True)
class _Word:
    start: int
    end: int
    box: tuple[int, int, int, int]  # left, top, width, height


class ImageReader:
    """OCR with tesseract through presidio-image-redactor; `available` is checked once."""

    def __init__(self, tesseract_cmd: str = "tesseract") -> None:
        self.tesseract_cmd = tesseract_cmd
        self.available = shutil.which(tesseract_cmd) is not None
        self.missing = "" if self.available else f"no OCR on this gateway ({tesseract_cmd!r})"

    def words(self, image: Any) -> tuple[str, list[_Word]]:
        import pytesseract
        from presidio_image_redactor import TesseractOCR

        pytesseract.pytesseract.tesseract_cmd = self.tesseract_cmd
        try:
            found = TesseractOCR().perform_ocr(image)
        except (pytesseract.TesseractError, OSError) as exc:
            raise Unreadable(f"OCR failed ({type(exc).__name__})") from None
        text, words = "", []
        for i, word in enumerate(found.get("text") or ()):
            word = str(word).strip()
            if not word:
                continue
            if text:
                text += " "
            box = (found["left"][i], found["top"][i], found["width"][i], found["height"][i])
            words.append(_Word(len(text), len(text) + len(word), box))
            text += word
        return text, words


def _decode(url: str) -> Any:
    from PIL import Image, UnidentifiedImageError

    if not url.startswith("data:"):
        raise Unreadable("a remote image (the gateway does not fetch URLs)")
    header, _, data = url.partition(",")
    if ";base64" not in header:
        raise Unreadable("an image data URL that is not base64")
    try:
        raw = base64.b64decode(data, validate=False)
        image = Image.open(io.BytesIO(raw))
        if image.width * image.height > _MAX_PIXELS:
            raise Unreadable("an image too large to read")
        image.load()
    except (binascii.Error, UnidentifiedImageError, OSError, ValueError):
        raise Unreadable("not a readable image") from None
    return image.convert("RGB")


def _masked_url(image: Any, boxes: list[tuple[int, int, int, int]]) -> str:
    from PIL import ImageDraw

    draw = ImageDraw.Draw(image)
    for left, top, width, height in boxes:
        draw.rectangle((left - 2, top - 2, left + width + 2, top + height + 2), fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return "data:image/png;base64," + base64.b64encode(out.getvalue()).decode("ascii")


def _image_parts(payload: JSON) -> Iterator[tuple[str, dict[str, Any]]]:
    for i, message in enumerate(payload.get("messages") or ()):
        content = message.get("content") if isinstance(message, dict) else None
        for j, part in enumerate(content if isinstance(content, list) else ()):
            if isinstance(part, dict) and part.get("type") == "image_url":
                image_url = part.get("image_url")
                url = image_url.get("url") if isinstance(image_url, dict) else image_url
                if isinstance(url, str):
                    yield f"messages[{i}].content[{j}].image_url", part


def has_images(payload: JSON) -> bool:
    return next(_image_parts(payload), None) is not None


@dataclass
class ImageCheck:
    payload: JSON
    findings: list[JSON] = field(default_factory=list)
    refusal: Refusal | None = None


def _spans(text: str, policy: Policy, scanner: PiiScanner) -> list[Span]:
    entities = list(policy.pii) or ["CREDIT_CARD", "IBAN_CODE", "US_SSN", "EMAIL_ADDRESS"]
    return scanner.find(text, entities, min_score=policy.pii_min_score, custom=policy.recognizers)


def check_images(
    policy: Policy, payload: JSON, scanner: PiiScanner, reader: ImageReader
) -> ImageCheck:
    """Every image part of a chat request, under `policy.images` (slow: OCR; off the loop)."""
    settings = policy.images
    result = ImageCheck(payload=payload)
    if settings is None:
        return result
    masked: JSON | None = None
    for where, part in list(_image_parts(payload)):
        base = {"stage": "request", "check": "image", "policy": settings.policy, "where": where}
        url = part["image_url"]["url"] if isinstance(part["image_url"], dict) else part["image_url"]
        try:
            if not reader.available:
                raise Unreadable(reader.missing)
            image = _decode(url)
            text, words = reader.words(image)
        except Unreadable as why:
            result.findings.append(
                {**base, "type": "unreadable", "action": settings.fallback, "reason": str(why)}
            )
            if settings.fallback == "refuse" and result.refusal is None:
                result.refusal = Refusal(
                    "image_not_checked",
                    f"The request was refused by guardrail policy '{settings.policy}': {where} "
                    f"could not be checked for personal data ({why}).",
                    settings.policy,
                )
            continue
        spans = _spans(text, policy, scanner)
        for span in spans:
            result.findings.append(
                {
                    **base,
                    "type": span.entity,
                    "action": settings.action,
                    "score": round(span.score, 2),
                }
            )
        if not spans:
            continue
        if settings.action == "refuse" and result.refusal is None:
            kinds = ", ".join(sorted({s.entity for s in spans}))
            result.refusal = Refusal(
                "pii_blocked",
                f"The request was blocked by guardrail policy '{settings.policy}': "
                f"{where} shows {kinds}.",
                settings.policy,
            )
        elif settings.action == "mask":
            boxes = [
                w.box for w in words if any(w.start < s.end and s.start < w.end for s in spans)
            ]
            masked = masked if masked is not None else copy.deepcopy(payload)
            _set_url(masked, where, _masked_url(image, boxes))
    if masked is not None:
        result.payload = masked
    return result


def _set_url(payload: JSON, where: str, url: str) -> None:
    for found, part in _image_parts(payload):
        if found == where:
            if isinstance(part["image_url"], dict):
                part["image_url"]["url"] = url
            else:
                part["image_url"] = url
            return
