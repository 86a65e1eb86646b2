"""The `keymgmt` command's entry (bin/keymgmt and `python -m keymgmt_cli` call main): no core dumps,
a garbage collector tuned for one short process, then the click-free verbs, the full click CLI
otherwise."""

from __future__ import annotations

import gc
import sys

#: The cyclic collector's thresholds for one command (CPython's defaults: 700, 10, 10). A command
#: allocates most of its objects up front and keeps them to the end (the modules; botocore's
#: loaded models, ~1M objects, none of them garbage): at 700 a young collection runs every 700
#: allocations and the older generations are walked again and again for nothing. One young
#: collection per 100,000 still bounds the cyclic garbage of a long command (verify over 10,000
#: keys, a rotation in many regions) to a few MB. bench/README.md, issue 15 (b): -20 ms of a
#: distribution's CPU.
GC_THRESHOLDS = (100_000, 50, 100)


def no_core_dumps() -> None:
    """RLIMIT_CORE 0: a crash of a process that holds the master key or key material must not
    leave them in a core file (the hard limit too, so the process cannot raise it again)."""
    try:
        import resource

        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    except (ImportError, ValueError, OSError):  # not on this platform, or not permitted: nothing to lower
        pass


def skip_final_collection() -> None:
    """The command is over and everything it wrote is on disk (every state, audit and journal
    write is fsynced before it returns): ``gc.freeze()`` leaves the objects it made out of the full
    collections the interpreter runs while it shuts down, which cost a distribution ~50-60 ms of
    CPU (botocore's models) for memory the OS takes back anyway. atexit handlers (thread pools
    joined, temporary directories removed), the flushing of stdout and stderr and the exit code
    are as before; only finalizers of objects in reference cycles are not run, and keymgmt
    leaves no work to one."""
    gc.freeze()


def main() -> None:
    no_core_dumps()
    gc.set_threshold(*GC_THRESHOLDS)
    code = None
    try:
        from keymgmt_cli.cli import fast

        code = fast.run(sys.argv[1:])
        if code is None:
            from keymgmt_cli.cli.main import main as full

            full()  # click ends the process itself (SystemExit), through the finally below
    finally:
        skip_final_collection()
    sys.exit(code)
