from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from routing.cache.core.calibration import (
    SHIPPED_SETS,
    Scored,
    best_threshold,
    load_pairs,
    score,
    table,
)
from routing.cache.core.policy import DEFAULT_SIMILARITY
from routing.cache.engine import local_embedder


class Command(BaseCommand):
    help = (
        "Report the semantic cache's hit rate and false-hit rate per similarity threshold on "
        "labelled sets of question pairs (default: the shipped sets, each and together)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--pairs", type=Path, action="append", help="a JSONL file (repeat)")
        parser.add_argument(
            "--show-pairs",
            action="store_true",
            help="list the near misses that would hit and the paraphrases that would miss",
        )

    def handle(
        self, *args: Any, pairs: list[Path] | None, show_pairs: bool, **options: Any
    ) -> None:
        embedder = local_embedder()
        if embedder is None:
            raise CommandError("No local embedder: install the 'wordllama' package.")
        self.stdout.write(f"embedder {embedder.name}; default threshold {DEFAULT_SIMILARITY:.2f}")
        everything: list[Scored] = []
        for path in pairs or SHIPPED_SETS:
            scored = score(load_pairs(path), embedder)
            everything.extend(scored)
            self._report(path.name, scored, show_pairs)
        if len(pairs or SHIPPED_SETS) > 1:
            self._report("all sets", everything, show_pairs=False)

    def _report(self, name: str, scored: list[Scored], show_pairs: bool) -> None:
        rows = table(scored)
        self.stdout.write(f"\n{name}: {len(scored)} pairs")
        self.stdout.write("threshold  hit rate         false hits     by similarity alone")
        for row in rows:
            alone = row.false_hits_by_similarity_alone
            self.stdout.write(
                f"{row.threshold:9.2f}  {row.hit_rate:6.1%} ({row.hits:>3}/{row.paraphrases})"
                f"  {row.false_hit_rate:5.1%} ({row.false_hits}/{row.near_misses})"
                f"  {alone / row.near_misses:6.1%} ({alone}/{row.near_misses})"
            )
        best = best_threshold(rows)
        self.stdout.write(
            f"lowest threshold with false hits < 1%: {best.threshold:.2f} (hit rate "
            f"{best.hit_rate:.1%})"
            if best is not None
            else "no threshold keeps false hits under 1%"
        )
        if show_pairs:
            for s in scored:
                wrong = s.candidates and s.similarity >= DEFAULT_SIMILARITY
                if wrong != s.pair.same:
                    self.stdout.write(
                        f"  {s.similarity:.3f} [{s.pair.kind}] {s.pair.a!r} ~ {s.pair.b!r}"
                    )
