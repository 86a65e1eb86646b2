"""Rough edges of issue 16 item 12 on the output side: YAML renders a PEM as a literal block
(yaml.v2's layout, no blank line between its lines), tables print maps and lists as Go's %v
without wrapping (Vault's TableFormatter), one warning prefix (Vault's "WARNING! "), and a removal
against the local KMS says when AWS deletes the keys."""

from __future__ import annotations

import json

import pytest
import yaml

from keymgmt_cli.cli import output
from keymgmt_cli.localkms import server
from support.cli import km as run

PEM = "-----BEGIN PUBLIC KEY-----\nMHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE\nj9M6wBUmaRf5cN3b\n-----END PUBLIC KEY-----\n"


def test_yaml_renders_a_pem_as_a_literal_block():
    text = output.dump({"keys": {"1": {"public_key": PEM}}}, "yaml")
    assert text == ("keys:\n  '1':\n    public_key: |\n      -----BEGIN PUBLIC KEY-----\n"
                    "      MHYwEAYHKoZIzj0CAQYFK4EEACIDYgAE\n      j9M6wBUmaRf5cN3b\n      -----END PUBLIC KEY-----")
    assert "\n\n" not in text


@pytest.mark.parametrize("value", [PEM, "a\nb", "a\n\n", "trailing space \nx", "\x07bell\nx", " lead\nx", "plain"])
def test_yaml_strings_round_trip(value):
    assert yaml.safe_load(output.dump({"v": value}, "yaml") + "\n") == {"v": value}


def test_tables_print_maps_and_lists_as_go_does_without_wrapping():
    long = ["us-east-1", "eu-west-1", "ap-southeast-2", "sa-east-1", "ca-central-1", "me-south-1"]
    text = output.table({"replica_regions": long, "versions": {"2": "mrk-2", "10": "mrk-10"}, "none": None})
    lines = text.splitlines()
    assert lines[2] == "none               <nil>"
    assert lines[3] == "replica_regions    [" + " ".join(long) + "]"  # one line, over 80 columns
    assert lines[4] == "versions           map[10:mrk-10 2:mrk-2]"  # keys sorted as strings, as Go's fmt
    assert len(lines[3]) > 80


def test_the_warning_prefix_is_vaults():
    assert output.warning_line("x") == "WARNING! x"


@pytest.fixture(scope="module")
def kms():
    with server.start() as local:
        yield local


@pytest.mark.emulator
def test_cli_read_yaml_of_an_ecdsa_key_and_the_removal_date(cli_environ, kms):
    env = dict(cli_environ, AWS_EC2_METADATA_DISABLED="true")

    def km(*args):
        return run(env, *args)

    assert km("write", "keymgmt/kms/e", "provider=awskms", "key_collection=us-west-2",
              "credentials=access_key=AKIAROUGHEDGES000001", "credentials=secret_key=rough-secret",
              f"credentials=endpoint={kms.endpoint_url}").returncode == 0
    assert km("write", "keymgmt/key/ec", "type=ecdsa-p384").returncode == 0
    shown = km("read", "-format=yaml", "keymgmt/key/ec")
    assert "public_key: |\n        -----BEGIN PUBLIC KEY-----\n        " in shown.stdout
    assert "\n\n" not in shown.stdout
    missing = km("write", "keymgmt/kms/e/key/ec", "protection=hsm")
    assert missing.returncode == 2
    assert "missing required field 'purpose' (give purpose=sign,verify for an ecdsa-p384 key)" in missing.stderr
    assert km("write", "keymgmt/kms/e/key/ec", "purpose=sign,verify", "pending_window_days=7").returncode == 0
    removed = km("delete", "keymgmt/kms/e/key/ec")
    assert removed.returncode == 0
    assert removed.stdout == "Success! Data deleted (if it existed) at: keymgmt/kms/e/key/ec\n"
    assert "WARNING! The following warnings were returned from keymgmt:" in removed.stderr
    assert "AWS KMS deletes the 1 KMS key(s) on 20" in removed.stderr
    assert "(pending_window_days=7)" in removed.stderr
    assert json.loads(km("read", "-format=json", "keymgmt/kms/e").stdout)["data"]["credential_source"] == "explicit"


@pytest.mark.parametrize("seconds,text", [
    (0, "0s"), (45, "45s"), (60, "1m"), (90, "1m30s"), (3600, "1h"), (3605, "1h5s"), (5400, "1h30m"),
    (3661, "1h1m1s"), (7776000, "2160h"), (-3600, "-1h"),
])
def test_durations_as_vaults_humanDurationInt(seconds, text):
    assert output.human_duration(seconds) == text


def test_duration_like_fields_print_as_durations_in_tables():
    text = output.table({"auto_rotate_period": 7776000, "pending_window_days": 30, "lease_ttl": True,
                         "token_ttl": "1h"})
    assert "auto_rotate_period     2160h" in text
    assert "pending_window_days    30" in text  # not a duration name
    assert "lease_ttl              true" in text and "token_ttl              1h" in text  # not ints: as given
