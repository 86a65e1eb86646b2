"""verify says once per provider which path found the keys tagged as ours (issue 17, item 4).

The real CLI against the embedded local KMS (moto's server, which serves tag:GetResources), and
the same server behind a WSGI wrapper that answers every Resource Groups Tagging API request
``AccessDeniedException`` (IAM without tag:GetResources; LocalStack 2026.3 answers similarly for an
API it does not have). Each test checks the path really taken from the requests the server saw,
that the stray is still named, that the note is in ``-format=json`` as ``tag_search`` and on
stderr (once per provider) in the table, and that stdout's table is unchanged by it."""

from __future__ import annotations

import json
import threading

import boto3
import pytest

from keymgmt_cli.localkms import server
from support.cli import km as run

pytestmark = pytest.mark.emulator

REGION = "us-west-2"
TAGGING_TARGET = "ResourceGroupsTaggingAPI_20170126."
DENIED = json.dumps({"__type": "AccessDeniedException",
                     "message": "User is not authorized to perform: tag:GetResources"}).encode()


class TaggingGate:
    """WSGI wrapper: counts tagging API requests; refuses them while ``refuse`` is set."""

    def __init__(self, app):
        self.app = app
        self.refuse = False
        self.tagging_requests = 0
        self.list_keys = 0
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        with self.lock:
            self.tagging_requests += target.startswith(TAGGING_TARGET)
            self.list_keys += target == "TrentService.ListKeys"
        if target.startswith(TAGGING_TARGET) and self.refuse:
            start_response("400 Bad Request", [("Content-Type", "application/x-amz-json-1.1"),
                                               ("Content-Length", str(len(DENIED)))])
            return [DENIED]
        return self.app(environ, start_response)

    def reset(self, refuse: bool) -> None:
        with self.lock:
            self.refuse, self.tagging_requests, self.list_keys = refuse, 0, 0


@pytest.fixture(scope="module")
def kms():
    gates = []

    def wrap(app):
        gates.append(TaggingGate(app))
        return gates[0]

    with server.start(wrap=wrap) as local:
        local.gate = gates[0]
        yield local


def setup_state(environ, kms, providers=("e",)):
    """One key distributed to each provider (all in one region of the emulator) and, for each, one
    stray: a key with all its tags that the state does not know. Returns {provider: stray id}."""
    def km(*args):
        result = run(environ, *args)
        assert result.returncode == 0, result.stderr
        return result

    km("write", "keymgmt/key/v", "type=aes256-gcm96")
    client = boto3.client("kms", region_name=REGION, endpoint_url=kms.endpoint_url,
                          aws_access_key_id="AKIATAGPATHS", aws_secret_access_key="tag-paths-secret")
    strays = {}
    for name in providers:
        km("write", f"keymgmt/kms/{name}", "provider=awskms", f"key_collection={REGION}",
           "credentials=access_key=AKIATAGPATHS", "credentials=secret_key=tag-paths-secret",
           f"credentials=endpoint={kms.endpoint_url}")
        km("write", f"keymgmt/kms/{name}/key/v", "purpose=encrypt,decrypt")
        key_id = json.loads(km("read", "-format=json", f"keymgmt/kms/{name}/key/v").stdout)["data"]["versions"]["1"]
        tags = {t["TagKey"]: t["TagValue"] for t in client.list_resource_tags(KeyId=key_id)["Tags"]}
        ours = {k: tags[k] for k in ("keymgmt:state_id", "keymgmt:mount", "keymgmt:kms")}
        strays[name] = client.create_key(
            Description="stray", Tags=[{"TagKey": k, "TagValue": v} for k, v in
                                       {**ours, "keymgmt:op": f"lost-{name}"}.items()])["KeyMetadata"]["KeyId"]
    return strays


def notes_on(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("note: ")]


def test_allowed_tag_get_resources_is_said_once_in_json_and_on_stderr(cli_environ, kms):
    kms.gate.reset(refuse=False)
    strays = setup_state(cli_environ, kms)
    kms.gate.reset(refuse=False)
    as_json = run(cli_environ, "verify", "-format=json")
    assert as_json.returncode == 2, as_json.stderr
    data = json.loads(as_json.stdout)["data"]
    assert [d["key_id"] for d in data["drift"] if d["problem"].startswith("stray")] == [strays["e"]]
    assert data["tag_search"] == [{"path": "keymgmt/kms/e",
                                   "note": f"keys tagged as ours found with tag:GetResources in {REGION}"}]
    assert kms.gate.tagging_requests == 1 and kms.gate.list_keys == 0  # the path really taken

    table = run(cli_environ, "verify")
    assert table.returncode == 2
    assert notes_on(table.stderr) == [
        f"note: keymgmt/kms/e: keys tagged as ours found with tag:GetResources in {REGION}"]
    assert "note:" not in table.stdout and f"{strays['e']}: stray key" in table.stdout


def test_refused_tag_get_resources_falls_back_and_says_so_once_per_provider(cli_environ, kms):
    kms.gate.reset(refuse=False)
    strays = setup_state(cli_environ, kms, providers=("e", "f"))
    kms.gate.reset(refuse=True)
    as_json = run(cli_environ, "verify", "-format=json")
    assert as_json.returncode == 2, as_json.stderr
    data = json.loads(as_json.stdout)["data"]
    named = sorted(d["key_id"] for d in data["drift"] if d["problem"].startswith("stray"))
    assert named == sorted(strays.values())  # the fallback still names every stray
    assert [n["path"] for n in data["tag_search"]] == ["keymgmt/kms/e", "keymgmt/kms/f"]
    for note in data["tag_search"]:
        assert note["note"].startswith(f"keys tagged as ours found with ListKeys + ListResourceTags "
                                       f"on every key of {REGION}: tag:GetResources was refused "
                                       f"(AccessDeniedException)")
        # the local KMS on 127.0.0.1: every tag read by keymgmt's own signed requests (aws.bulkread)
        assert "; tags read with keymgmt's own signed requests (http, " in note["note"]
    # asked once per provider, then listed: one refused GetResources and one listing each
    assert kms.gate.tagging_requests == 2 and kms.gate.list_keys == 2

    table = run(cli_environ, "verify")
    notes = notes_on(table.stderr)
    assert [n.split(":", 2)[1].strip() for n in notes] == ["keymgmt/kms/e", "keymgmt/kms/f"]
    assert all("AccessDeniedException" in n for n in notes)
    assert "tag-paths-secret" not in table.stdout + table.stderr + as_json.stdout + as_json.stderr
    assert table.stdout.strip().endswith("2 problem(s)")
