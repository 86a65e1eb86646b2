"""verify's stray search and the recovery search against LocalStack's KMS, which has no Resource
Groups Tagging API (issue 17): the listing path, with the tags read by keymgmt's own signed
requests (aws.bulkread), names every stray exactly among foreign keys and near misses, says so
once, and the recovery search is one bulk audit entry. The real CLI in a subprocess for verify;
the recovery search in process (its entry point, engine.reconcile.find_tagged)."""

from __future__ import annotations

import json
import re
import uuid

import pytest

from conftest import KMS_NAME, REGION

pytestmark = pytest.mark.localstack
FOREIGN = 40


def _plant(kms, tags: dict[str, str]) -> str:
    return kms.create_key(Description="planted", Tags=[{"TagKey": k, "TagValue": v} for k, v in tags.items()],
                          )["KeyMetadata"]["KeyId"]


def test_verify_names_every_stray_by_listing_with_the_lean_reads(cli, kms):
    cli.run("write", "keymgmt/key/k", "type=aes256-gcm96")
    cli.run("write", f"keymgmt/kms/{KMS_NAME}/key/k", "purpose=encrypt,decrypt")
    key_id = cli.read(f"keymgmt/kms/{KMS_NAME}/key/k")["versions"]["1"]
    tags = {t["TagKey"]: t["TagValue"] for t in kms.list_resource_tags(KeyId=key_id)["Tags"]}
    ours = {k: tags[k] for k in ("keymgmt:state_id", "keymgmt:mount", "keymgmt:kms")}
    near = [{**ours, "keymgmt:state_id": str(uuid.uuid4())}, {**ours, "keymgmt:kms": "another"}, {"team": "x"}]
    for i in range(FOREIGN):
        _plant(kms, near[i % len(near)])
    strays = sorted(_plant(kms, {**ours, "keymgmt:op": f"lost-{i}"}) for i in range(3))
    done = cli.run("verify", "-format=json", check=False)
    assert done.returncode == 2, done.stderr
    data = json.loads(done.stdout)["data"]
    assert sorted(d["key_id"] for d in data["drift"] if d["kind"] == "stray") == strays
    assert [n["path"] for n in data["tag_search"]] == [f"keymgmt/kms/{KMS_NAME}"]
    note = data["tag_search"][0]["note"]
    assert "ListKeys + ListResourceTags" in note and "tag:GetResources was refused" in note
    # LocalStack answers tag:GetResources InternalFailure (not implemented); every key is read by
    # keymgmt's own requests, as many in flight as keys up to aws.bulkread.WORKERS
    assert re.search(r"tags read with keymgmt's own signed requests \(http, \d+ in flight\)$", note), note


def test_the_recovery_search_finds_the_lost_key_in_one_bulk_entry(localstack_endpoint, kms, monkeypatch):
    from keymgmt_cli.audit.calls import CallLog, RecordingProvider
    from keymgmt_cli.engine.reconcile import find_tagged
    from keymgmt_cli.providers.awskms import connect
    from keymgmt_cli.providers.base import ProviderConfig

    for name in ("AWS_PROFILE", "AWS_CA_BUNDLE", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    state, op = str(uuid.uuid4()), uuid.uuid4().hex
    for i in range(FOREIGN):
        _plant(kms, {"keymgmt:state_id": state, "keymgmt:op": f"other-{i}"} if i % 2 else {})
    lost = _plant(kms, {"keymgmt:state_id": state, "keymgmt:op": op})
    provider = connect(ProviderConfig(region=REGION, endpoint=localstack_endpoint, access_key="test",
                                      secret_key="test"))
    log = CallLog()
    assert find_tagged(RecordingProvider(provider, log), {"keymgmt:state_id": state, "keymgmt:op": op}) == [lost]
    entries = log.snapshot()
    assert [e["operation"] for e in entries] == ["ListKeys", "ListResourceTags"]
    assert entries[1]["bulk"]["keys"] == entries[1]["bulk"]["requests"] >= FOREIGN + 1
    assert entries[1]["bulk"]["request_ids"]  # LocalStack answers request ids as AWS does
