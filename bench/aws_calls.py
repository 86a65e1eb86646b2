#!/usr/bin/env python3
"""AWS requests on the wire per keymgmt operation, counted at the server.

Issue 3's claim: a distribution makes exactly 3 AWS calls per version (CreateKey with its tags,
GetParametersForImport, ImportKeyMaterial) plus one alias call, and DisableKey only for versions
below min_enabled_version; a rotation adds 3 calls and one UpdateAlias per distribution. No
polling or extra reads on the happy path. A re-run of a finished distribution and a write of
min_enabled_version converge with AWS (issue 16): they read DescribeKey and ListResourceTags per
KMS key and ListAliases once per region before any write (engine/converge.py).

How: the embedded local KMS (moto + keymgmt's BYOK import double, the same pieces as
keymgmt_cli.localkms.server.start(wrap=...)) is served on 127.0.0.1 in this process behind a tiny WSGI
wrapper that records every request's X-Amz-Target and SigV4 region. The real CLI runs as
separate processes (`python -m keymgmt_cli ...`, throwaway KEYMGMT_HOME and master key), so
what is counted is what botocore actually sent, retries included; the client's own bookkeeping
is not consulted.

Usage: .venv/bin/python bench/aws_calls.py
Exit status: 0 when every scenario matches, 1 otherwise.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import os
import re
import subprocess
import sys
import tempfile
import threading
from collections import Counter
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from keymgmt_cli.localkms import server as localkms_server  # noqa: E402

REGIONS = ("us-east-1", "us-west-2", "eu-west-1", "ap-southeast-2")
_REGION_RE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/")


class CountingApp:
    """WSGI middleware: one (region, operation, status) record per request."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.lock = threading.Lock()
        self.log: list[tuple[str, str, int]] = []
        self.create_key_tags: list[int] = []  # number of Tags in each CreateKey request body

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        op = target.split(".", 1)[1] if "." in target else (target or f"{environ.get('REQUEST_METHOD')} "
                                                                    f"{environ.get('PATH_INFO')}")
        m = _REGION_RE.search(environ.get("HTTP_AUTHORIZATION", ""))
        region = m.group(1) if m else "?"
        if op == "CreateKey":
            body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
            environ["wsgi.input"] = io.BytesIO(body)
            try:
                tags = len(json.loads(body or b"{}").get("Tags") or [])
            except ValueError:
                tags = -1
            with self.lock:
                self.create_key_tags.append(tags)
        status_box: list[int] = []

        def recording_start_response(status: str, headers: Any, exc_info: Any = None) -> Any:
            status_box.append(int(status.split()[0]))
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        result = self.app(environ, recording_start_response)
        with self.lock:
            self.log.append((region, op, status_box[0] if status_box else 0))
        return result

    def mark(self) -> int:
        with self.lock:
            return len(self.log)

    def since(self, mark: int) -> list[tuple[str, str, int]]:
        with self.lock:
            return list(self.log[mark:])


def start_counting_kms() -> tuple[Any, CountingApp, str]:
    kms = localkms_server.start(wrap=CountingApp, name="counting-kms")
    return kms, kms.app, kms.endpoint_url


class Cli:
    def __init__(self, home: str, counter: CountingApp) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("KEYMGMT_", "AWS_"))}
        self.env.update(KEYMGMT_HOME=home, KEYMGMT_MASTER_KEY=base64.b64encode(os.urandom(32)).decode(),
                        KEYMGMT_FORMAT="json", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
        self.counter = counter

    def run(self, *args: str, expect: int = 0) -> tuple[list[tuple[str, str, int]], str]:
        mark = self.counter.mark()
        proc = subprocess.run([sys.executable, "-m", "keymgmt_cli", *args], env=self.env,
                              capture_output=True, text=True, timeout=600)
        if proc.returncode != expect:
            raise SystemExit(f"keymgmt {' '.join(args)} exited {proc.returncode} (expected {expect}):\n"
                             f"{proc.stdout}{proc.stderr}")
        return self.counter.since(mark), (proc.stdout + proc.stderr).strip()


SHORT = {"CreateKey": "CK", "GetParametersForImport": "GPFI", "ImportKeyMaterial": "IKM", "CreateAlias": "CA",
         "UpdateAlias": "UA", "DisableKey": "DK", "EnableKey": "EK"}


def fmt(counts: Counter) -> str:
    keys = [k for k in SHORT if counts.get(k)] + sorted(k for k in counts if k not in SHORT)
    return " ".join(f"{SHORT.get(k, k)}={counts[k]}" for k in keys) or "(none)"


def main() -> int:
    logging.disable(logging.CRITICAL)
    server, counter, endpoint = start_counting_kms()
    rows: list[tuple[str, Counter, Counter, str]] = []
    notes: list[str] = []

    def record(label: str, expected: Counter, wire: list[tuple[str, str, int]], regions: int | None = None) -> None:
        observed = Counter(op for _, op, _ in wire)
        errors = [(r, op, st) for r, op, st in wire if st >= 400]
        ok = observed == expected and not errors
        extra = ""
        if errors:
            extra = f" errors={errors}"
        if regions is not None:
            seen = {r for r, _, _ in wire}
            per_region = Counter(r for r, _, _ in wire)
            if len(seen) != regions or len(set(per_region.values())) != 1:
                ok = False
                extra += f" regions={dict(per_region)}"
        rows.append((label, expected, observed, ("OK" if ok else "MISMATCH") + extra))

    try:
        with tempfile.TemporaryDirectory() as tmp:
            cli = Cli(os.path.join(tmp, "state"), counter)
            setup_calls: list[tuple[str, str, int]] = []
            for region in REGIONS:
                wire, _ = cli.run("write", f"keymgmt/kms/p-{region}", "provider=awskms", f"key_collection={region}",
                                  "credentials=access_key=test", "credentials=secret_key=test",
                                  f"credentials=endpoint={endpoint}")
                setup_calls += wire

            # -- distribution: 1, 3, 5 versions x min_enabled_version 0, 2 -------------------------
            for versions in (1, 3, 5):
                for minimum in (0, 2):
                    name = f"d{versions}m{minimum}"
                    label = f"distribute: {versions} version{'s' if versions > 1 else ''}, min_enabled_version={minimum}"
                    if minimum > versions:
                        _, msg = cli.run("write", f"keymgmt/key/{name}", "type=aes256-gcm96",
                                         f"min_enabled_version={minimum}", expect=2)
                        rows.append((label, Counter(), Counter(), f"n/a (refused as in Vault: {msg.splitlines()[0]})"))
                        continue
                    wire, _ = cli.run("write", f"keymgmt/key/{name}", "type=aes256-gcm96")
                    setup_calls += wire
                    for _ in range(versions - 1):
                        wire, _ = cli.run("write", "-f", f"keymgmt/key/{name}/rotate")  # not distributed yet
                        setup_calls += wire
                    if minimum:
                        wire, _ = cli.run("write", f"keymgmt/key/{name}", f"min_enabled_version={minimum}")
                        setup_calls += wire
                    wire, _ = cli.run("write", f"keymgmt/kms/p-us-east-1/key/{name}", "purpose=encrypt,decrypt")
                    expected = Counter(CreateKey=versions, GetParametersForImport=versions,
                                       ImportKeyMaterial=versions, CreateAlias=1)
                    if minimum > 1:
                        expected["DisableKey"] = minimum - 1
                    record(label, expected, wire)

            # -- rotation with 1 and 4 distributions -----------------------------------------------
            for n in (1, 4):
                name = f"r{n}"
                cli.run("write", f"keymgmt/key/{name}", "type=aes256-gcm96")
                for region in REGIONS[:n]:
                    cli.run("write", f"keymgmt/kms/p-{region}/key/{name}", "purpose=encrypt,decrypt")
                wire, _ = cli.run("write", "-f", f"keymgmt/key/{name}/rotate")
                record(f"rotate: {n} distribution{'s' if n > 1 else ''} ({n} region{'s' if n > 1 else ''})",
                       Counter(CreateKey=n, GetParametersForImport=n, ImportKeyMaterial=n, UpdateAlias=n),
                       wire, regions=n)

            # -- extra happy-path checks (not in the claim's text, same spirit) ----------------------
            # A rotation with min_enabled_version already applied must not re-disable anything.
            wire, _ = cli.run("write", "-f", "keymgmt/key/d3m2/rotate")
            record("rotate: 3->4 versions, min_enabled_version=2 already applied",
                   Counter(CreateKey=1, GetParametersForImport=1, ImportKeyMaterial=1, UpdateAlias=1), wire)
            # Raising min_enabled_version on a distributed key: DisableKey per newly-disabled version only.
            wire, _ = cli.run("write", "keymgmt/key/d5m0", "min_enabled_version=3")
            record("update: min_enabled_version 0->3 on a distributed 5-version key",
                   Counter(DisableKey=2, DescribeKey=5, ListResourceTags=5, ListAliases=1), wire)
            # An update that changes nothing still reconciles, but must make no AWS request.
            wire, _ = cli.run("write", "keymgmt/key/r4", "deletion_allowed=false")
            record("update: no-op write to a key in 4 providers", Counter(), wire)
            # Re-running a finished distribution: the converging reads, nothing to write.
            wire, _ = cli.run("write", "keymgmt/kms/p-us-east-1/key/d5m0", "purpose=encrypt,decrypt")
            record("distribute again (already done), 5 versions",
                   Counter(DescribeKey=5, ListResourceTags=5, ListAliases=1), wire)
            # Reads never touch AWS.
            wire, _ = cli.run("read", "keymgmt/kms/p-us-east-1/key/d5m0")
            record("read kms/p-us-east-1/key/d5m0", Counter(), wire)
            if setup_calls:
                notes.append(f"setup steps (provider/key writes before distribution) made AWS requests: "
                             f"{fmt(Counter(op for _, op, _ in setup_calls))}")
            else:
                notes.append("setup steps (4 provider writes, key creates, rotations and min_enabled_version "
                             "updates before any distribution): 0 AWS requests, as expected")
    finally:
        server.stop()

    w1 = max(len(r[0]) for r in rows)
    w2 = max(len(fmt(r[1])) for r in rows)
    w3 = max(len(fmt(r[2])) for r in rows)
    print("AWS KMS requests on the wire per keymgmt command (embedded moto KMS on 127.0.0.1, counted per "
          "X-Amz-Target by a WSGI wrapper; CLI run as separate processes)")
    print("CK=CreateKey GPFI=GetParametersForImport IKM=ImportKeyMaterial CA=CreateAlias UA=UpdateAlias "
          "DK=DisableKey EK=EnableKey; any other operation is printed by its full name\n")
    print(f"{'scenario':{w1}s}  {'expected':{w2}s}  {'observed':{w3}s}  result")
    print(f"{'-' * w1}  {'-' * w2}  {'-' * w3}  ------")
    bad = 0
    for label, expected, observed, verdict in rows:
        if verdict.startswith("n/a"):
            print(f"{label:{w1}s}  {'-':{w2}s}  {'-':{w3}s}  {verdict}")
            continue
        bad += not verdict.startswith("OK")
        print(f"{label:{w1}s}  {fmt(expected):{w2}s}  {fmt(observed):{w3}s}  {verdict}")
    print()
    tag_counts = Counter(counter.create_key_tags)
    notes.append(f"tags carried in the CreateKey request body itself: {dict(sorted(tag_counts.items()))} "
                 f"(tags per CreateKey: number of CreateKeys); no TagResource request was sent"
                 if "TagResource" not in {op for _, op, _ in counter.log} else "TagResource requests were sent")
    for note in notes:
        print(f"note: {note}")
    print(f"\n{len([r for r in rows if not r[3].startswith('n/a')]) - bad} OK, {bad} MISMATCH")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
