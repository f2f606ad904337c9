"""Memory tracing for the soak server (``python -m bench.soak --trace-memory DIR``).

``bench.soak`` puts this folder on the server's PYTHONPATH only, so Python imports this module at
the server's start-up; it does nothing unless ``SOAK_TRACEMALLOC`` is set. Every
``SOAK_TRACE_EVERY`` seconds (60) a daemon thread writes ``info-<t>.json`` to ``SOAK_TRACE_DIR``:
RSS, glibc's malloc statistics (mallinfo2: native heap in use and free), the blocks pymalloc has
allocated, the gc-tracked objects by type and the prepared-statement caches of the asyncpg
connections. Objects frozen at start-up (``gc.freeze``, see ``isles.system``) are not listed: the
engines, their compiled caches and the modules are among them. With ``SOAK_TRACE_FRAMES`` > 0, tracemalloc
(that many frames) starts ``SOAK_TRACE_START`` seconds in and each sample also dumps a snapshot
(``snap-<t>.pickle``, for ``Snapshot.load(...).compare_to(older, "traceback")``). tracemalloc
costs the server several times its CPU: start it late and read latencies of such a run with care.
"""
import os

if os.environ.get("SOAK_TRACEMALLOC"):
    import collections
    import ctypes
    import gc
    import json
    import sys
    import threading
    import time
    import traceback
    import tracemalloc

    _out = os.environ["SOAK_TRACE_DIR"]
    _every = float(os.environ.get("SOAK_TRACE_EVERY", "60"))
    _frames = int(os.environ.get("SOAK_TRACE_FRAMES", "0"))
    _start = float(os.environ.get("SOAK_TRACE_START", "0"))
    os.makedirs(_out, exist_ok=True)
    _t0 = time.monotonic()

    class _MallInfo2(ctypes.Structure):
        _fields_ = [(n, ctypes.c_size_t) for n in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                    "fsmblks", "uordblks", "fordblks", "keepcost")]

    _libc = ctypes.CDLL("libc.so.6")
    _libc.mallinfo2.restype = _MallInfo2

    def _rss() -> float:
        for line in open("/proc/self/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def _caches(objs: list) -> dict:
        stmts = []  # per connection: SQLAlchemy's prepared statements, asyncpg's own statement cache
        for o in objs:
            if type(o).__name__ == "AsyncAdapt_asyncpg_connection":
                c = getattr(o, "_prepared_statement_cache", None)
                inner = getattr(getattr(o, "_connection", None), "_stmt_cache", None)
                stmts.append([None if c is None else len(c), None if inner is None else len(inner)])
        return {"asyncpg": stmts}

    def _sample(n: int) -> None:
        t = time.monotonic() - _t0
        gc.collect()
        objs = gc.get_objects()
        info: dict = {"t": t, "rss": _rss(), "gc_objects": len(objs), "blocks": sys.getallocatedblocks()}
        try:
            info.update(_caches(objs))
        except Exception:
            info["caches_error"] = traceback.format_exc()
        info["types"] = collections.Counter(type(o).__qualname__ for o in objs).most_common(400)
        del objs
        mi = _libc.mallinfo2()
        info["mallinfo"] = {f: getattr(mi, f) for f, _ in _MallInfo2._fields_}
        if tracemalloc.is_tracing():
            info["traced"] = tracemalloc.get_traced_memory()[0]
            snap = tracemalloc.take_snapshot().filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            snap.dump(f"{_out}/snap-{int(t):05d}.pickle")
        with open(f"{_out}/info-{int(t):05d}.json", "w") as f:
            json.dump(info, f)

    def _loop() -> None:
        n = 0
        while True:
            time.sleep(_every)
            if _frames and not tracemalloc.is_tracing() and time.monotonic() - _t0 >= _start:
                tracemalloc.start(_frames)
            _sample(n)
            n += 1

    if _frames and _start <= 0:
        tracemalloc.start(_frames)
    threading.Thread(target=_loop, daemon=True, name="soak-memtrace").start()
