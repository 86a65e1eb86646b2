"""`tpye=aes256-gcm96` through the real CLI (issue 16 item 10): exit 2, one line naming the field
meant, nothing created; a far unknown field still only warns, as Vault."""

from __future__ import annotations

from support.cli import km


def test_a_near_miss_is_refused_with_exit_2_and_nothing_changes(cli_environ):
    refused = km(cli_environ, "write", "keymgmt/key/k", "tpye=aes256-gcm96")
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.strip().splitlines() == [
        "Error writing data to keymgmt/key/k: unknown field 'tpye': did you mean \"type\"?"]
    assert km(cli_environ, "read", "keymgmt/key/k").returncode == 2  # not created
    warned = km(cli_environ, "write", "keymgmt/key/k", "type=aes256-gcm96", "colour=red")
    assert warned.returncode == 0
    assert "Endpoint ignored these unrecognized parameters: [colour]" in warned.stdout + warned.stderr
