"""A real interactive shell in a private tmux server, driven by keystrokes and read off the screen.

Completion and terminal output are judged as a user sees them: ``send-keys`` types, ``capture-pane``
reads the screen. Each Pane has its own tmux socket (``-S``) and no tmux config (``-f /dev/null``), so
tests neither see nor disturb anyone else's tmux; the shell starts from ``env -i`` with only the
environment given.
"""

from __future__ import annotations

import shlex
import shutil
import subprocess
import time
from pathlib import Path

TMUX = shutil.which("tmux")


class Pane:
    def __init__(self, workdir: Path, command: list[str], environ: dict[str, str], width: int = 200,
                 height: int = 50):
        self.socket = str(workdir / "tmux.sock")
        self.width = width
        launch = ["env", "-i", *(f"{k}={v}" for k, v in environ.items()), *command]
        self._tmux("new-session", "-d", "-s", "t", "-x", str(width), "-y", str(height), shlex.join(launch))

    def _tmux(self, *args: str) -> str:
        assert TMUX is not None
        done = subprocess.run([TMUX, "-S", self.socket, "-f", "/dev/null", *args], capture_output=True,
                              text=True, timeout=30)
        assert done.returncode == 0, f"tmux {args[0]}: {done.stderr.strip()}"
        return done.stdout

    def type(self, text: str) -> None:
        self._tmux("send-keys", "-t", "t", "-l", text)

    def keys(self, *names: str) -> None:
        self._tmux("send-keys", "-t", "t", *names)

    def screen(self, escapes: bool = False) -> str:
        """The visible screen as text; with ``escapes``, with its colours as SGR sequences (-e)."""
        return self._tmux("capture-pane", "-p", *(["-e"] if escapes else []), "-t", "t")

    def wait(self, predicate, what: str, timeout: float = 45.0) -> str:
        """The screen once ``predicate(screen)`` holds; fails naming ``what`` and showing the screen."""
        deadline = time.monotonic() + timeout
        while True:
            screen = self.screen()
            if predicate(screen):
                return screen
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; the screen:\n{screen}")
            time.sleep(0.1)

    def close(self) -> None:
        subprocess.run([TMUX or "tmux", "-S", self.socket, "kill-server"], capture_output=True, timeout=30)


def prompt_line(screen: str, prompt: str = "$ ") -> str:
    """The last line that starts with the prompt: the command line being edited."""
    bare = prompt.rstrip()  # capture-pane drops trailing spaces: an empty command line is "$"
    lines = [line for line in screen.splitlines() if line.startswith(prompt) or line == bare]
    return lines[-1][len(prompt):] if lines else ""
