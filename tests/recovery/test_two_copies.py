"""One state, never two (issue 10, item 5): two live copies of one state (a source and a snapshot
restored from it) on one local KMS, both rotating; verify in each names the other instance.

Each copy has its own instance id (meta/instance: made on its first KMS key, new at a restore or a
migration); every KMS key keymgmt creates carries it as the tag keymgmt:instance."""

from __future__ import annotations

import base64
import json
import os

import pytest

from keymgmt_cli.localkms import server
from recovery_support import file_env, km

pytestmark = pytest.mark.emulator


@pytest.fixture(scope="module")
def kms():
    with server.start() as local:
        yield local


@pytest.fixture
def pair(tmp_path, kms):
    """(source env, copy env, snapshot file): a distributed key, snapshotted and restored."""
    key = base64.b64encode(os.urandom(32)).decode()
    src = file_env(tmp_path / "source", KEYMGMT_MASTER_KEY=key)
    for args in (["write", "keymgmt/kms/e", "provider=awskms", "key_collection=us-west-2",
                  "credentials=access_key=AKIATWOCOPIES0000001", "credentials=secret_key=two/copies/secret",
                  f"credentials=endpoint={kms.endpoint_url}"],
                 ["write", "keymgmt/key/v", "type=aes256-gcm96"],
                 ["write", "keymgmt/kms/e/key/v", "purpose=encrypt,decrypt"]):
        code, _, err = km(src, *args)
        assert code == 0, (args, err)
    file = tmp_path / "s.snap"
    assert km(src, "operator", "snapshot", "save", str(file))[0] == 0
    copy = file_env(tmp_path / "copy", KEYMGMT_MASTER_KEY=key)
    return src, copy, file


def _instance(env):
    path = os.path.join(env["KEYMGMT_HOME"], "meta", "instance.json")
    return json.load(open(path))["instance_id"]


def _warnings(err):
    return [line for line in err.splitlines() if line.startswith("WARNING! ")]


def _tags(kms, key_id):
    import boto3

    client = boto3.client("kms", region_name="us-west-2", endpoint_url=kms.endpoint_url,
                          aws_access_key_id="AKIATWOCOPIES0000001", aws_secret_access_key="x")
    return {t["TagKey"]: t["TagValue"] for t in client.list_resource_tags(KeyId=key_id)["Tags"]}


def _key_id(env, version):
    code, out, _ = km(env, "read", "-format=json", "keymgmt/kms/e/key/v")
    assert code == 0
    return json.loads(out)["data"]["versions"][str(version)]


def test_every_key_carries_the_instance_of_the_copy_that_made_it(pair, kms):
    src, copy, file = pair
    assert km(copy, "operator", "snapshot", "restore", str(file))[0] == 0
    assert km(copy, "write", "-f", "keymgmt/key/v/rotate")[0] == 0
    one, two = _key_id(copy, 1), _key_id(copy, 2)
    assert _tags(kms, one)["keymgmt:instance"] == _instance(src)
    assert _tags(kms, two)["keymgmt:instance"] == _instance(copy) != _instance(src)
    assert _tags(kms, one)["keymgmt:state_id"] == _tags(kms, two)["keymgmt:state_id"]


def test_two_live_copies_both_rotating_warn_in_each_naming_both_instances(pair, kms):
    src, copy, file = pair
    assert km(copy, "operator", "snapshot", "restore", str(file))[0] == 0
    mine, theirs = _instance(copy), _instance(src)

    # before anyone rotates: the copy knows its source was not retired; the source cannot know yet
    code, out, err = km(copy, "verify")
    assert code == 0 and out.endswith("in sync\n"), err
    [line] = _warnings(err)
    assert mine in line and theirs in line and "was not retired" in line and "-retire-source=" in line
    code, _, err = km(src, "verify")
    assert code == 0 and _warnings(err) == [], err

    # the copy rotates: the source sees a key of its state id made by the copy and its alias moved
    assert km(copy, "write", "-f", "keymgmt/key/v/rotate")[0] == 0
    code, out, err = km(src, "verify")
    assert code == 2 and "stray key" in out and "alias" in out, out
    lines = _warnings(err)
    assert len(lines) == 2, err
    assert all(mine in line and theirs in line and "retire" in line for line in lines)
    stray = _key_id(copy, 2)
    assert any(stray in line and "does not know it" in line for line in lines)
    assert any("alias alias/hashicorp/" in line and "rotated it" in line for line in lines)

    # the source rotates too: now the copy sees the source's new key and its alias moved back
    assert km(src, "write", "-f", "keymgmt/key/v/rotate")[0] == 0
    code, out, err = km(copy, "verify")
    assert code == 2, out
    lines = _warnings(err)
    theirs_key = _key_id(src, 2)
    assert any(theirs_key in line and theirs in line and mine in line for line in lines), err
    assert any("rotated it" in line for line in lines), err

    # -format=json: the same conflicts as data, and as Vault's envelope warnings
    code, out, err = km(copy, "verify", "-format=json")
    doc = json.loads(out)
    assert doc["warnings"] and all("WARNING" not in w for w in doc["warnings"])
    assert {c["other_instance"] for c in doc["data"]["conflicts"]} == {theirs}
    assert all(c["instance"] == mine for c in doc["data"]["conflicts"])


def test_a_copy_whose_source_was_retired_does_not_warn_about_what_it_inherited(pair, kms):
    src, copy, file = pair
    code, out, err = km(copy, "operator", "snapshot", "restore", f"-retire-source=file://{src['KEYMGMT_HOME']}",
                        str(file))
    assert code == 0 and "Retired" in out, err
    code, out, err = km(copy, "verify")
    assert (code, _warnings(err)) == (0, []), err
    assert km(copy, "write", "-f", "keymgmt/key/v/rotate")[0] == 0
    code, out, err = km(copy, "verify")
    assert (code, _warnings(err)) == (0, []), (out, err)
    assert km(src, "write", "-f", "keymgmt/key/v/rotate")[0] == 2  # retired


def test_a_key_the_source_made_after_the_snapshot_is_named_even_once_it_is_retired(pair, kms):
    src, copy, file = pair
    assert km(copy, "operator", "snapshot", "restore", str(file))[0] == 0
    assert km(src, "write", "-f", "keymgmt/key/v/rotate")[0] == 0  # the source lives on a while
    late = _key_id(src, 2)
    # retiring it later: the same restore again finishes the -retire-source (nothing rewritten)
    code, out, err = km(copy, "operator", "snapshot", "restore", f"-retire-source=file://{src['KEYMGMT_HOME']}",
                        str(file))
    assert code == 0 and "nothing was written" in out and "Retired" in out, err
    code, out, err = km(copy, "verify")
    lines = _warnings(err)
    assert code == 2 and len(lines) == 2, (out, err)  # the late key, and the alias it took
    assert any(late in line and "which was retired, made it after the snapshot" in line for line in lines)
    assert not any("was not retired" in line for line in lines)


def test_a_migrated_state_inherits_without_warnings_and_its_keys_carry_its_instance(pair, kms, tmp_path):
    src, _, _ = pair
    target = tmp_path / "moved"
    code, _, err = km(src, "operator", "migrate", f"-from=file://{src['KEYMGMT_HOME']}", f"-to=file://{target}")
    assert code == 0, err
    moved = file_env(target, KEYMGMT_MASTER_KEY=src["KEYMGMT_MASTER_KEY"])
    code, _, err = km(moved, "verify")
    assert (code, _warnings(err)) == (0, []), err
    assert km(moved, "write", "-f", "keymgmt/key/v/rotate")[0] == 0
    assert _tags(kms, _key_id(moved, 2))["keymgmt:instance"] == _instance(moved) != _instance(src)
    code, _, err = km(moved, "verify")
    assert (code, _warnings(err)) == (0, []), err
