"""The progress display's contract without a terminal emulator (the tmux test shows it on screen):
one line per provider, and the first write to stdout or stderr ends the display first."""

from __future__ import annotations

import io
import sys
import threading

from keymgmt_cli.cli.terminal import Progress


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_messages_fall_into_one_lane_per_provider():
    assert Progress.lane("paced: importing version 4") == ("paced", "importing version 4")
    assert Progress.lane("generating rsa-4096 key material") == ("", "generating rsa-4096 key material")
    assert Progress.lane("copied 3 of 9 documents: done") == ("", "copied 3 of 9 documents: done")


def test_one_task_per_provider_from_parallel_threads(monkeypatch):
    progress = Progress(Tty(), {"TERM": "xterm"})
    out, err = sys.stdout, sys.stderr
    try:
        threads = [threading.Thread(target=lambda p=p: [progress(f"{p}: step {i}") for i in range(50)])
                   for p in ("p1", "p2", "p3")]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        tasks = progress._live.tasks
        assert sorted(t.description for t in tasks) == ["p1: step 49", "p2: step 49", "p3: step 49"]
    finally:
        progress.close()
    assert (sys.stdout, sys.stderr) == (out, err)


def test_first_write_ends_the_display_before_it_lands(monkeypatch, capsys):
    screen = Tty()
    progress = Progress(screen, {"TERM": "xterm"})
    progress("p1: importing version 4")
    assert progress._live is not None
    real = sys.__stdout__
    sys.stdout.write("Success! Data written to: keymgmt/key/k/rotate\n")
    assert progress._live is None  # stopped (its lines erased) before the text was written
    assert not hasattr(sys.stdout, "_close")  # the real stream is back
    assert "Success!" in capsys.readouterr().out
    assert real is sys.__stdout__
    progress("p1: again")  # a later message starts a new display, a later write ends it again
    sys.stderr.write("WARNING! x\n")
    assert progress._live is None
    progress.close()


def test_off_a_terminal_nothing_is_started():
    progress = Progress(io.StringIO(), {"TERM": "xterm"})
    out = sys.stdout
    progress("p1: importing version 1")
    assert progress._live is None and sys.stdout is out
