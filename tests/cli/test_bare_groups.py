"""A command group run without a subcommand answers as Vault's (mitchellh/cli) does: the group's
whole help on stderr, nothing on stdout, exit 127 for bare ``keymgmt`` (cli.go: no command) and
1 for a group (its Run returns RunResultHelp, which cli.go turns into the help and 1).

Run as a real process (the console script's path: entry -> fast -> main), not through CliRunner,
so the stream and the exit code are what a shell sees."""

from __future__ import annotations

import pytest

from support.cli import km

ROWS = [
    # (args, first line of the help, a subcommand the help must list, exit code)
    ([], "Usage: keymgmt [OPTIONS] COMMAND [ARGS]...", "secrets", 127),
    (["secrets"], "Usage: keymgmt secrets [OPTIONS] COMMAND [ARGS]...", "enable", 1),
    (["operator"], "Usage: keymgmt operator [OPTIONS] COMMAND [ARGS]...", "migrate", 1),
    (["audit"], "Usage: keymgmt audit [OPTIONS] COMMAND [ARGS]...", "verify", 1),
    (["operator", "snapshot"], "Usage: keymgmt operator snapshot [OPTIONS] COMMAND [ARGS]...", "restore", 1),
]


@pytest.mark.parametrize("args,usage,sub,code", ROWS, ids=[" ".join(r[0]) or "keymgmt" for r in ROWS])
def test_bare_group_prints_its_help_on_stderr(cli_environ, args, usage, sub, code):
    result = km(cli_environ, *args)
    assert result.returncode == code
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[0] == usage
    assert "\\n" not in result.stderr  # real line breaks, not the escaped one-liner of an error
    assert len(lines) > 5 and any(line.split()[:1] == [sub] for line in lines)
    assert not result.stderr.startswith("Error")


def test_help_flag_still_exits_zero(cli_environ):
    result = km(cli_environ, "secrets", "-help")
    assert result.returncode == 0
    assert (result.stdout + result.stderr).startswith("Usage: keymgmt secrets")
