"""Shared helpers of the fault suite (issue 4, "Never half-done"): run the CLI as processes, kill
them, and look at what is in the local KMS with boto3 directly (never through keymgmt's adapter).

Not a test module (no ``test_`` prefix); the suite's modules import it by name, as pytest puts
``tests/faults`` on ``sys.path`` for them.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from support import middleware

REGION = "us-west-1"
REPLICA_REGION = "us-east-1"
KMS = "kms1"
ACCESS_KEY = "AKIAFAULTSUITE000001"
SECRET = "fault-suite-secret-not-real"
EXPECTED_TAGS = ("keymgmt:state_id", "keymgmt:mount", "keymgmt:key_name", "keymgmt:version", "keymgmt:kms")
ALIAS_PREFIX = "alias/hashicorp/"

# The failure runs compress the client's backoff: botocore's retries (9 attempts, exponential
# backoff up to 20 s) and keymgmt's own throttling rounds still happen, request by request, but
# they do not wait, so an outage that outlasts every retry costs milliseconds instead of minutes.
FAST_BACKOFF = (
    "import runpy, sys, time\n"
    "_sleep = time.sleep\n"
    "time.sleep = lambda seconds: _sleep(min(seconds, 0.002))\n"
    "runpy.run_module('keymgmt_cli', run_name='__main__', alter_sys=True)\n"
)


def cli_environ(home: Path, **extra: str) -> dict[str, str]:
    """A CLI environment: its own state and master key, no AWS settings from the host (no
    profile, no config file, no instance metadata), so nothing can reach past 127.0.0.1."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYMGMT_", "AWS_"))}
    env.update(KEYMGMT_HOME=str(home), KEYMGMT_MASTER_KEY=base64.b64encode(os.urandom(32)).decode(),
               KEYMGMT_CONFIG=str(home.parent / f"{home.name}-no-config.json"),
               AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               AWS_EC2_METADATA_DISABLED="true", KEYMGMT_FORMAT="table")
    env.update(extra)
    return env


def argv(*args: str, fast_backoff: bool = False) -> list[str]:
    if fast_backoff:
        return [sys.executable, "-c", FAST_BACKOFF, *args]
    return [sys.executable, "-m", "keymgmt_cli", *args]


def km(environ: dict[str, str], *args: str, input: str | bytes | None = None, timeout: float = 180,
       fast_backoff: bool = False) -> subprocess.CompletedProcess:
    from support.cli import km as run

    return run(environ, *args, input=input, timeout=timeout,
               prefix=[sys.executable, "-c", FAST_BACKOFF] if fast_backoff else None)


def ok(result: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert result.returncode == 0, (result.args[3:], result.returncode, result.stdout, result.stderr)
    return result


def provider_args(endpoint: str, name: str = KMS, region: str = REGION, *, access_key: str = ACCESS_KEY,
                  secret: str = SECRET, session_token: str | None = None) -> list[str]:
    args = ["write", f"keymgmt/kms/{name}", "provider=awskms", f"key_collection={region}",
            f"credentials=access_key={access_key}", f"credentials=secret_key={secret}",
            f"credentials=endpoint={endpoint}"]
    if session_token:
        args.append(f"credentials=session_token={session_token}")
    return args


def wait_dead(pid: int, timeout: float = 10.0) -> None:
    """Until ``pid`` is a zombie or gone (it is not reaped here: its Popen does that)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with open(f"/proc/{pid}/stat", "rb") as handle:
                state = handle.read().rsplit(b")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            return
        if state in (b"Z", b"X"):
            return
        time.sleep(0.001)
    raise TimeoutError(f"process {pid} did not die")


def kill9(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    wait_dead(pid)


def tree_bytes(root: Path, *, skip: tuple[str, ...] = (".locks",)) -> dict[str, bytes]:
    """Every file under root (relative path -> bytes), except the lock files (coordination, not state)."""
    out = {}
    if not root.exists():
        return out
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if rel.parts and rel.parts[0] in skip:
            continue
        if path.is_file():
            out[str(rel)] = path.read_bytes()
    return out


# --------------------------------------------------------------------------- the local KMS's state


def kms_client(endpoint: str, region: str) -> Any:
    return boto3.client("kms", endpoint_url=endpoint, region_name=region, aws_access_key_id="inspector",
                        aws_secret_access_key="inspector",
                        config=Config(retries={"mode": "standard", "max_attempts": 2}))


def aws_keys(endpoint: str, regions: tuple[str, ...] = (REGION, REPLICA_REGION)) -> list[dict[str, Any]]:
    """Every KMS key in the regions: id, region, state, enabled, origin, multi-Region, tags."""
    keys = []
    for region in regions:
        client = kms_client(endpoint, region)
        for page in client.get_paginator("list_keys").paginate():
            for entry in page["Keys"]:
                md = client.describe_key(KeyId=entry["KeyId"])["KeyMetadata"]
                tags = {t["TagKey"]: t["TagValue"] for t in
                        client.list_resource_tags(KeyId=entry["KeyId"]).get("Tags", [])}
                keys.append({"region": region, "id": md["KeyId"], "state": md["KeyState"],
                             "enabled": md["Enabled"], "origin": md.get("Origin"),
                             "multi_region": md.get("MultiRegion", False), "tags": tags})
    return keys


def aws_aliases(endpoint: str, regions: tuple[str, ...] = (REGION, REPLICA_REGION)) -> dict[str, dict[str, str]]:
    """region -> {alias name -> target key id}, our aliases only."""
    out: dict[str, dict[str, str]] = {}
    for region in regions:
        client = kms_client(endpoint, region)
        out[region] = {}
        for page in client.get_paginator("list_aliases").paginate():
            for alias in page["Aliases"]:
                if alias["AliasName"].startswith(ALIAS_PREFIX):
                    out[region][alias["AliasName"]] = alias.get("TargetKeyId")
    return out


def state_id(environ: dict[str, str]) -> str:
    doc = json.loads((Path(environ["KEYMGMT_HOME"]) / "state.json").read_text())
    return doc["state_id"]


def read_json(environ: dict[str, str], path: str) -> dict[str, Any] | None:
    result = km(environ, "read", "-format=json", path)
    if result.returncode == 2:
        return None
    ok(result)
    return json.loads(result.stdout)["data"]


def unfinished(environ: dict[str, str]) -> list[str]:
    """What ``keymgmt status`` lists as unfinished (the same engine call, in-process: it is cheaper)."""
    from keymgmt_cli.engine.core import Engine
    from keymgmt_cli.store import open_store

    return Engine(open_store(environ)).status()["unfinished"]


def end_state(endpoint: str, environ: dict[str, str], key: str, kms: str = KMS, *,
              replica_tags: bool = True) -> dict[str, Any]:
    """What a run left, checked and normalised so that two runs compare equal when they made the
    same KMS keys (ids aside): the invariants are asserted here, the shape is returned.

    Orphan: a key of ``key`` tagged with this state's id that is not PendingDeletion and not in the
    state's versions (``read -format=json keymgmt/kms/K/key/N`` .data.versions), or any key in
    PendingImport. ``replica_tags=False``: the local KMS drops ReplicateKey's tags (see
    ``replica_tags_supported``), so replicas are not held to the tag checks."""
    sid = state_id(environ)
    dist = read_json(environ, f"keymgmt/kms/{kms}/key/{key}")
    versions = {int(v): kid for v, kid in (dist or {}).get("versions", {}).items()}
    by_id = {kid: v for v, kid in versions.items()}
    # this key's KMS keys (other keys of the same state are other tests' business), and any key
    # left PendingImport whoever made it
    keys = [k for k in aws_keys(endpoint) if k["tags"].get("keymgmt:key_name") == key
            or k["state"] == "PendingImport" or k["id"] in by_id]
    suspended = bool((dist or {}).get("suspended"))  # the kill switch: our keys PendingImport on purpose
    orphans = [k for k in keys if (k["state"] == "PendingImport" and not (suspended and k["id"] in by_id))
               or (k["tags"].get("keymgmt:state_id") == sid and k["id"] not in by_id
                   and k["state"] not in ("PendingDeletion", "PendingReplicaDeletion"))]
    assert not orphans, f"orphan KMS keys: {orphans}"
    for k in keys:
        if not replica_tags and k["region"] != REGION and k["multi_region"] and not k["tags"]:
            continue
        missing = [t for t in EXPECTED_TAGS if t not in k["tags"]]
        assert not missing, f"KMS key {k['id']} in {k['region']} lacks tags {missing}: {k['tags']}"
        assert k["tags"]["keymgmt:state_id"] == sid and k["tags"]["keymgmt:key_name"] == key
        assert k["tags"]["keymgmt:kms"] == kms and k["tags"]["keymgmt:mount"] == "keymgmt/"
        if k["id"] in by_id:
            assert k["tags"]["keymgmt:version"] == str(by_id[k["id"]]), k
    aliases = aws_aliases(endpoint)
    alias_shape = {}
    if dist is not None:
        alias = ALIAS_PREFIX + dist["name"]
        latest = versions[max(versions)]
        for region, table in aliases.items():
            if alias in table:
                assert table[alias] == latest, f"{alias} in {region} targets {table[alias]}, not version {max(versions)}"
                alias_shape[region] = max(versions)
            extra = sorted(a for a in table if a != alias and a.startswith(f"{ALIAS_PREFIX}{key}-"))
            assert not extra, f"stray aliases in {region}: {extra}"
    else:
        for region, table in aliases.items():
            mine = sorted(a for a in table if a.startswith(f"{ALIAS_PREFIX}{key}-"))
            assert not mine, f"aliases left in {region} after removal: {mine}"
    assert unfinished(environ) == [], unfinished(environ)
    # A duplicate made by a re-sent CreateKey and already scheduled for deletion is cleaned up, not
    # an orphan: it is left out of the comparison while the key is distributed (after a removal
    # every key is pending deletion and all of them count).
    counted = [k for k in keys if dist is None or k["id"] in by_id
               or k["state"] not in ("PendingDeletion", "PendingReplicaDeletion")]
    shape = sorted((k["region"], k["tags"].get("keymgmt:version"), k["state"], k["enabled"], k["origin"],
                    k["multi_region"], k["id"] in by_id) for k in counted)
    return {"keys": shape, "aliases": alias_shape, "versions": sorted(versions),
            "distributed": dist is not None}


def fresh_kms(**kwargs: Any) -> middleware.InstrumentedKms:
    """The local KMS behind the middleware, emptied: moto's state is process-wide, so keys made by
    an earlier module (or an earlier server) would otherwise still be there."""
    kms = middleware.start(**kwargs)
    kms.replica_tags = replica_tags_supported(kms.endpoint_url)  # type: ignore[attr-defined]
    kms.reset()
    return kms


def replica_tags_supported(endpoint: str) -> bool:
    """Whether this local KMS applies ReplicateKey's Tags to the replica, as AWS does. moto 5.2's
    ReplicateKey ignores Tags and Description, and the BYOK double (moto_import) does not add them."""
    primary = kms_client(endpoint, REGION)
    key_id = primary.create_key(MultiRegion=True)["KeyMetadata"]["KeyId"]
    primary.replicate_key(KeyId=key_id, ReplicaRegion=REPLICA_REGION, Tags=[{"TagKey": "probe", "TagValue": "1"}])
    tags = kms_client(endpoint, REPLICA_REGION).list_resource_tags(KeyId=key_id).get("Tags", [])
    return {"TagKey": "probe", "TagValue": "1"} in tags
