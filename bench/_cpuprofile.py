"""Run ``python -m keymgmt_cli ARGS`` under cProfile counting CPU, not wall, in every thread.

    python bench/_cpuprofile.py OUT.pstats ARGS...

Each thread gets its own profiler with ``time.thread_time`` as the clock (the CPU of that thread
alone, so waiting on the network costs nothing and threads running side by side are not counted
twice); the profiles are merged into OUT.pstats when the command exits. Its exit code is kept.
Used by bench/profile_client.py.
"""

from __future__ import annotations

import cProfile
import pstats
import runpy
import sys
import threading
import time

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()


def _thread_hook(frame, event, arg):  # type: ignore[no-untyped-def]
    # First profile event in a new thread: give it its own profiler (which replaces this hook).
    prof = cProfile.Profile(time.thread_time)
    with _lock:
        _profiles.append(prof)
    prof.enable()


def main() -> int:
    out, args = sys.argv[1], sys.argv[2:]
    threading.setprofile(_thread_hook)
    main_prof = cProfile.Profile(time.thread_time)
    _profiles.append(main_prof)
    sys.argv = ["keymgmt", *args]
    code = 0
    main_prof.enable()
    try:
        runpy.run_module("keymgmt_cli", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        main_prof.disable()
        threading.setprofile(None)  # type: ignore[arg-type]
    with _lock:
        profiles = list(_profiles)
    for p in profiles[1:]:
        p.create_stats()
    stats = pstats.Stats(main_prof)
    for p in profiles[1:]:
        if getattr(p, "stats", None):
            stats.add(p)
    stats.dump_stats(out)
    return code


if __name__ == "__main__":
    sys.exit(main())
