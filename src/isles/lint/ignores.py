"""Inline ignores: ``# ignore[ISL106] why this rule does not apply here``.

An ignore covers findings on its own line, or on the next line when the comment stands alone.
It must give a reason (ISL001) and name known codes (ISL003); one that suppresses nothing is
reported (ISL002), so ignores do not outlive the code they excused.
"""
from __future__ import annotations

import io
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path

from isles.lint.findings import Finding
from isles.lint.rules import RULES

_IGNORE = re.compile(r"#\s*isles:\s*ignore\[([^\]]*)\]\s*(.*)$")


@dataclass
class Ignore:
    path: Path
    line: int  # the line of the comment
    covers: tuple[int, ...]  # lines it applies to
    codes: tuple[str, ...]
    reason: str
    used: set[str] = field(default_factory=set)


def parse(path: Path) -> list[Ignore]:
    try:
        source = path.read_text()
    except OSError:
        return []
    lines = source.splitlines()
    found = []
    try:
        tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    except (tokenize.TokenError, SyntaxError):
        return []
    for tok in tokens:
        if tok.type != tokenize.COMMENT:
            continue
        match = _IGNORE.search(tok.string)
        if not match:
            continue
        row = tok.start[0]
        standalone = lines[row - 1].strip().startswith("#")
        codes = tuple(c.strip().upper() for c in match.group(1).split(",") if c.strip())
        found.append(Ignore(path, row, (row + 1,) if standalone else (row,), codes,
                            match.group(2).strip().strip("-—:").strip()))
    return found


def apply(findings: list[Finding], files: set[Path], active: set[str] | None = None
          ) -> tuple[list[Finding], list[Finding]]:
    """Split findings into (kept, suppressed) and add the findings about the ignores themselves.

    ``active``: the codes whose rules ran; an ignore for a rule that did not run is not "unused".
    """
    ignores: dict[tuple[Path, int], list[Ignore]] = {}
    all_ignores: list[Ignore] = []
    for path in sorted(files):
        for ig in parse(path):
            all_ignores.append(ig)
            for line in ig.covers:
                ignores.setdefault((path.resolve(), line), []).append(ig)
    kept, suppressed = [], []
    for f in findings:
        matched = None
        if f.path is not None and f.line is not None:
            for ig in ignores.get((f.path.resolve(), f.line), []):
                if f.code in ig.codes and ig.reason:
                    matched = ig
                    break
        if matched:
            matched.used.add(f.code)
            suppressed.append(f)
        else:
            kept.append(f)
    for ig in all_ignores:
        unknown = [c for c in ig.codes if c not in RULES]
        if unknown:
            kept.append(Finding("ISL003", f"unknown rule code(s) {', '.join(unknown)} in ignore comment",
                                path=ig.path, line=ig.line, symbol=f"ignore:{','.join(unknown)}"))
        if not ig.reason:
            kept.append(Finding("ISL001", f"ignore[{', '.join(ig.codes)}] gives no reason; write why after it",
                                path=ig.path, line=ig.line, symbol=f"ignore:{','.join(ig.codes)}"))
            continue
        unused = [c for c in ig.codes if c in RULES and c not in ig.used and (active is None or c in active)]
        if unused:
            kept.append(Finding("ISL002", f"ignore[{', '.join(unused)}] suppresses nothing; remove it",
                                path=ig.path, line=ig.line, symbol=f"ignore:{','.join(unused)}"))
    return kept, suppressed
