"""A finding: one rule broken at one place, with enough identity to be baselined or ignored."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from isles.lint.rules import RULES, Severity


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    service: str | None = None
    path: Path | None = None
    line: int | None = None
    #: what the finding is about, stable across edits (``work_orders.part_id``): used by baselines
    symbol: str = ""
    severity: Severity | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        return RULES[self.code].name

    @property
    def level(self) -> Severity:
        return self.severity or RULES[self.code].severity

    def relpath(self, root: Path | None = None) -> str | None:
        if self.path is None:
            return None
        root = root or Path.cwd()
        try:
            return self.path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            return self.path.as_posix()

    def fingerprint(self, root: Path | None = None) -> str:
        """Stable identity without the line number, so a baseline survives unrelated edits."""
        text = "|".join((self.code, self.service or "", self.relpath(root) or "", self.symbol or self.message))
        return hashlib.sha256(text.encode()).hexdigest()[:16]
