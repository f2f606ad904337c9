"""Which process pays for an event: CPU time of this machine's processes over a window, grouped.

A pipeline of several processes on two shared cores is bounded by their CPU time per event put
together, not by any one of them; this says how that sum splits. Read from ``/proc`` (Linux): each
process's user + system time, and the machine's busy time (less steal) for the rest (the kernel's
workers, other programs). A process that ends inside the window is counted under "other".
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

#: group name -> the process names (``comm``) it holds; "python" is this process, "other" the rest
GROUPS = {"postgres": ("postgres",), "broker": ("tansu", "redis-server")}


def _ticks_by_group() -> dict[str, int]:
    me = os.getpid()
    found = dict.fromkeys(("python", *GROUPS), 0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            raw = (entry / "stat").read_text()
        except OSError:
            continue  # it ended meanwhile
        comm, fields = raw[raw.index("(") + 1:raw.rindex(")")], raw[raw.rindex(")") + 2:].split()
        ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
        if int(entry.name) == me:
            found["python"] += ticks
        else:
            group = next((g for g, names in GROUPS.items() if comm in names), None)
            if group is not None:
                found[group] += ticks
    with open("/proc/stat") as f:
        user, nice, system, _idle, _iowait, irq, softirq, _steal = (int(v) for v in f.readline().split()[1:9])
    found["total"] = user + nice + system + irq + softirq
    return found


@dataclass
class MachineCPU:
    """``cpu = MachineCPU.start()`` ... ``cpu.per_event(n)``: microseconds of CPU per event by group."""

    before: dict[str, int]

    @classmethod
    def start(cls) -> "MachineCPU":
        return cls(_ticks_by_group())

    def per_event(self, events: int) -> dict[str, float]:
        after = _ticks_by_group()
        us = 1e6 / os.sysconf("SC_CLK_TCK") / max(events, 1)
        spent = {group: (after[group] - self.before[group]) * us for group in after}
        total = spent.pop("total")
        spent["other"] = max(0.0, total - sum(spent.values()))
        return {group: round(value) for group, value in spent.items()}


def describe(split: dict[str, float]) -> str:
    """``python:120/postgres:95/broker:20/other:40`` (microseconds an event), for a RESULT line."""
    return "/".join(f"{group}:{value:g}" for group, value in split.items())
