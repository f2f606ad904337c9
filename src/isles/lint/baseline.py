"""A baseline: the findings an existing code base already has, accepted so that only new ones fail.

Stored as JSON next to the code; findings are matched by fingerprint (rule, service, file and
symbol - not the line number), each baseline entry absorbing at most one finding.
"""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from isles.errors import ConfigurationError
from isles.lint.findings import Finding

VERSION = 1


def write(path: Path, findings: list[Finding], root: Path | None = None) -> None:
    entries = sorted(({"code": f.code, "service": f.service, "path": f.relpath(root), "symbol": f.symbol,
                       "fingerprint": f.fingerprint(root)} for f in findings),
                     key=lambda e: (e["path"] or "", e["code"], e["symbol"]))
    path.write_text(json.dumps({"version": VERSION, "findings": entries}, indent=2) + "\n")


def load(path: Path) -> Counter[str]:
    try:
        data = json.loads(path.read_text())
        return Counter(entry["fingerprint"] for entry in data["findings"])
    except FileNotFoundError:
        raise ConfigurationError(f"baseline file {path} does not exist",
                                 fix=f"create it with: isles lint --update-baseline --baseline {path}") from None
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"baseline file {path} is not an isles lint baseline ({exc})",
                                 fix="regenerate it with --update-baseline") from None


def split(findings: list[Finding], accepted: Counter[str],
          root: Path | None = None) -> tuple[list[Finding], list[Finding]]:
    """(new findings, findings covered by the baseline)."""
    remaining = Counter(accepted)
    new, known = [], []
    for f in findings:
        fp = f.fingerprint(root)
        if remaining[fp] > 0:
            remaining[fp] -= 1
            known.append(f)
        else:
            new.append(f)
    return new, known
