"""The terminal's tables (status, secrets list) keep every row on one line, whatever the width
(issue 16 item 12): rich would otherwise fold a long cell into a second line that reads as a row."""

from __future__ import annotations

from keymgmt_cli.cli import terminal


def test_rows_are_never_wrapped_or_cut_at_a_narrow_width(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "30")
    long = "a description that is much longer than thirty columns"
    terminal.print_rows(["Path", "Type", "Description"],
                        [["keymgmt/", "keymgmt", long], ["other-mount-with-a-long-name/", "keymgmt", "n/a"]])
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3, lines
    assert lines[1].split(None, 2) == ["keymgmt/", "keymgmt", long]
    assert lines[2].split() == ["other-mount-with-a-long-name/", "keymgmt", "n/a"]
    assert lines[1].index("keymgmt ") == lines[2].index("keymgmt ")  # still columns
