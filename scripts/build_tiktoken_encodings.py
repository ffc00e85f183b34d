"""Rebuild tenants/quotas/encodings/*.tiktoken from a package registry, byte-identical to OpenAI's files.

Why: tiktoken downloads its BPE rank files from OpenAI's blob storage on first use, which a
gateway without general internet access (and our CI) cannot reach. The ranks are MIT-licensed
(tiktoken, Copyright (c) 2022 OpenAI, Shantanu Jain; see tenants/quotas/encodings/LICENSE).

Provenance: the npm package `tiktoken` (MIT; the JS/WASM bindings of tiktoken), version pinned
below by its registry integrity hash, ships each encoding as `encoders/<name>.json` whose
`bpe_ranks` field holds the same ranks in a compact form: one line per run of consecutive ranks,
"<label> <first rank> <base64 token> <base64 token> ...". This script expands that form into
tiktoken's native one ("<base64 token> <rank>" per line, in rank order) and keeps the result only
if its SHA-256 equals the hash tiktoken itself pins for the file (tiktoken_ext/openai_public.py).

Usage (from the repository root; needs `npm` reaching the npm registry, or a tarball):
    python scripts/build_tiktoken_encodings.py [path/to/tiktoken-1.0.22.tgz]
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

NPM_PACKAGE = "tiktoken@1.0.22"
NPM_INTEGRITY = "sha512-PKvy1rVF1RibfF3JlXBSP0Jrcw2uq3yXdgcEXtKTYn3QJ/cBRBHDnrJ5jHky+MENZ6DIPwNUGWpkVx+7joCpNA=="
# The SHA-256 tiktoken pins for each file it would download (tiktoken_ext/openai_public.py).
EXPECTED_SHA256 = {
    "cl100k_base": "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    "o200k_base": "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
}
OUT_DIR = Path(__file__).resolve().parent.parent / "quotas" / "encodings"


def npm_pack(dest: Path) -> Path:
    out = subprocess.run(  # noqa: S603 - fixed arguments, no shell
        ["npm", "pack", NPM_PACKAGE, "--pack-destination", str(dest)],  # noqa: S607
        check=True,
        capture_output=True,
        text=True,
    )
    return dest / out.stdout.strip().splitlines()[-1]


def check_integrity(tarball: Path) -> None:
    algo, expected = NPM_INTEGRITY.split("-", 1)
    actual = base64.b64encode(hashlib.new(algo, tarball.read_bytes()).digest()).decode()
    if actual != expected:
        sys.exit(f"{tarball}: integrity {algo}-{actual} is not the pinned {NPM_INTEGRITY}")


def expand_ranks(compact: str) -> bytes:
    """The compact npm form back to tiktoken's file: "<base64 token> <rank>\\n" in rank order."""
    ranks: dict[int, bytes] = {}
    for line in compact.splitlines():
        if not line:
            continue
        _label, first, *tokens = line.split(" ")
        for offset, token in enumerate(tokens):
            rank = int(first) + offset
            if rank in ranks:
                sys.exit(f"rank {rank} appears twice")
            ranks[rank] = base64.b64decode(token, validate=True)
    if sorted(ranks) != list(range(len(ranks))):
        sys.exit("ranks are not contiguous from 0")
    return b"".join(base64.b64encode(ranks[r]) + b" %d\n" % r for r in range(len(ranks)))


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        tarball = Path(sys.argv[1]) if len(sys.argv) > 1 else npm_pack(Path(tmp))
        check_integrity(tarball)
        with tarfile.open(tarball) as archive:
            for name, expected in EXPECTED_SHA256.items():
                member = archive.extractfile(f"package/encoders/{name}.json")
                if member is None:
                    sys.exit(f"{name}.json is missing from {tarball}")
                data = expand_ranks(json.load(member)["bpe_ranks"])
                digest = hashlib.sha256(data).hexdigest()
                if digest != expected:
                    sys.exit(f"{name}: sha256 {digest} is not tiktoken's pinned {expected}")
                (OUT_DIR / f"{name}.tiktoken").write_bytes(data)
                print(f"{name}.tiktoken: {len(data)} bytes, sha256 {digest} (as tiktoken pins)")


if __name__ == "__main__":
    main()
