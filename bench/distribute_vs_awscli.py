#!/usr/bin/env python3
"""Create and distribute one aes256-gcm96 key: keymgmt vs. AWS's import guide done by hand.

Issue 15's figure (goals: wall <= 0.25x, client CPU <= 0.15x): both sides do the same job against
the same emulator through the same bench/kms_proxy.py (40 ms per call, AWS's quotas), both with an
`RSA_2048` wrapping key:

(a) keymgmt, two commands, as an operator types them:
      keymgmt write keymgmt/key/kI type=aes256-gcm96
      keymgmt write keymgmt/kms/ls/key/kI purpose=encrypt,decrypt wrapping_key_spec=RSA_2048
(b) the guide's steps in one bash script (AWS CLI v1 from PyPI, in .bench/awscli; openssl 3):
      openssl rand -out PlaintextKeyMaterial.bin 32
      aws kms create-key --origin EXTERNAL ...                        (KeyId)
      aws kms get-parameters-for-import ... RSAES_OAEP_SHA_256 RSA_2048  (one call: PublicKey, ImportToken)
      openssl enc -d -base64 -A  (x2: public key, import token)
      openssl pkeyutl -encrypt ... oaep / sha256 / mgf1 sha256
      aws kms import-key-material ... fileb:// --expiration-model KEY_MATERIAL_DOES_NOT_EXPIRE
      aws kms create-alias
      aws kms tag-resource   (the same 6 tags keymgmt puts on its keys, in one call)
Both end in the same AWS state: one EXTERNAL symmetric key, Enabled, with imported material, an
alias and 6 tags. Runs alternate the order (a,b), (b,a), ... after one warm-up of each; before
each run the emulator is left to go idle and 1.2 s pass (so the previous side's
GetParametersForImport, 1/s per region, cannot throttle this one). Client CPU is each side's
process tree (os.wait4: keymgmt's two processes; bash with its aws and openssl children), never
the emulator's or the proxy's. The figures are medians; the ratio is the ratio of the two medians.
Every key made is checked afterwards (Enabled, Origin EXTERNAL, alias, tags) outside the timed part.

--installed runs keymgmt as a plain (non-editable) install runs: by the interpreter of a venv,
.bench/plain, whose only addition is a .pth line naming the dev venv's site-packages (keymgmt's
dependencies, as pip installed them). What it leaves out is the dev venv's editable-install hook,
a .pth import that loads pathlib, re, urllib.parse, importlib.util and more into every start-up
(~20 ms of CPU per process that a `pip install keymgmt` never pays; the aws CLI side runs from a
plain venv of its own). keymgmt_cli still comes from PYTHONPATH (this checkout or
BENCH_KEYMGMT_PATH), as in the default mode.

Usage: .venv/bin/python bench/distribute_vs_awscli.py [--runs 9] [--latency-ms 40] [--emulator moto|localstack]
                                                      [--installed]
       (BENCH_KEYMGMT_PATH=/tmp/copy: measure a patched copy of keymgmt_cli)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import sysconfig
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import _harness as h  # noqa: E402

GOAL_WALL = 0.25
GOAL_CPU = 0.15
REGION = "us-east-1"
TAGS = ("keymgmt:state_id", "keymgmt:mount", "keymgmt:key_name", "keymgmt:version", "keymgmt:kms", "keymgmt:op")

GUIDE = r"""#!/usr/bin/env bash
# AWS's "import key material" guide, step by step, for one symmetric key.
# usage: guide.sh NAME WORKDIR   (env: AWS, EP, REGION, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)
set -euo pipefail
NAME="$1"; mkdir -p "$2"; cd "$2"
t() { printf '%s %s\n' "$1" "$EPOCHREALTIME" >> steps.txt; }
kms() { "$AWS" --endpoint-url "$EP" --region "$REGION" kms "$@"; }
t start
openssl rand -out PlaintextKeyMaterial.bin 32
t "openssl rand"
KEY_ID="$(kms create-key --origin EXTERNAL --key-spec SYMMETRIC_DEFAULT --key-usage ENCRYPT_DECRYPT \
    --description "guide $NAME" --query KeyMetadata.KeyId --output text)"
t "aws kms create-key"
read -r PUBLIC_KEY IMPORT_TOKEN < <(kms get-parameters-for-import --key-id "$KEY_ID" \
    --wrapping-algorithm RSAES_OAEP_SHA_256 --wrapping-key-spec RSA_2048 \
    --query '[PublicKey,ImportToken]' --output text)
t "aws kms get-parameters-for-import"
printf '%s' "$PUBLIC_KEY" > PublicKey.b64
printf '%s' "$IMPORT_TOKEN" > ImportToken.b64
openssl enc -d -base64 -A -in PublicKey.b64 -out WrappingPublicKey.bin
openssl enc -d -base64 -A -in ImportToken.b64 -out ImportToken.bin
t "openssl enc -d -base64 (x2)"
openssl pkeyutl -encrypt -in PlaintextKeyMaterial.bin -out EncryptedKeyMaterial.bin \
    -inkey WrappingPublicKey.bin -keyform DER -pubin \
    -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256 -pkeyopt rsa_mgf1_md:sha256
t "openssl pkeyutl -encrypt"
kms import-key-material --key-id "$KEY_ID" --encrypted-key-material fileb://EncryptedKeyMaterial.bin \
    --import-token fileb://ImportToken.bin --expiration-model KEY_MATERIAL_DOES_NOT_EXPIRE
t "aws kms import-key-material"
kms create-alias --alias-name "alias/guide/$NAME" --target-key-id "$KEY_ID"
t "aws kms create-alias"
kms tag-resource --key-id "$KEY_ID" --tags \
    TagKey=keymgmt:state_id,TagValue=guide TagKey=keymgmt:mount,TagValue=keymgmt/ \
    TagKey=keymgmt:key_name,TagValue="$NAME" TagKey=keymgmt:version,TagValue=1 \
    TagKey=keymgmt:kms,TagValue=ls TagKey=keymgmt:op,TagValue=guide
t "aws kms tag-resource"
echo "$KEY_ID"
"""


def plain_python() -> str:
    """The python of .bench/plain: a venv without pip whose site-packages holds one .pth line, the
    dev venv's site-packages (plain paths only: no .pth file of that directory is run)."""
    venv = os.path.join(h.BENCH_DIR, "plain")
    py = os.path.join(venv, "bin", "python")
    if not os.path.exists(py):
        subprocess.run([getattr(sys, "_base_executable", sys.executable), "-m", "venv", "--without-pip", venv],
                       check=True)
    site = subprocess.run([py, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                          capture_output=True, text=True, check=True).stdout.strip()
    with open(os.path.join(site, "keymgmt-dev-dependencies.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    return py


def read_steps(path: str) -> dict[str, float]:
    with open(path) as f:
        marks = [(line.rsplit(" ", 1)[0], float(line.rsplit(" ", 1)[1])) for line in f if line.strip()]
    return {label: t - prev for (_, prev), (label, t) in zip(marks, marks[1:])}


def check_keys(endpoint: str, keymgmt_ids: list[str], guide_ids: list[str]) -> list[str]:
    import boto3

    kms = boto3.client("kms", endpoint_url=endpoint, region_name=REGION, aws_access_key_id="test",
                       aws_secret_access_key="test")
    problems = []
    aliases = {a.get("TargetKeyId") for page in kms.get_paginator("list_aliases").paginate()
               for a in page["Aliases"]}
    for side, ids in (("keymgmt", keymgmt_ids), ("guide", guide_ids)):
        for key_id in ids:
            md = kms.describe_key(KeyId=key_id)["KeyMetadata"]
            tags = {t["TagKey"] for t in kms.list_resource_tags(KeyId=key_id)["Tags"]}
            if md["KeyState"] != "Enabled" or md["Origin"] != "EXTERNAL" or key_id not in aliases \
                    or not set(TAGS) <= tags:
                problems.append(f"{side} {key_id}: state={md['KeyState']} origin={md['Origin']} "
                                f"alias={'yes' if key_id in aliases else 'no'} tags={sorted(tags)}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--latency-ms", type=float, default=40.0)
    parser.add_argument("--emulator", choices=("moto", "localstack"), default="moto")
    parser.add_argument("--installed", action="store_true",
                        help="keymgmt without the dev venv's editable-install start-up hook (see above)")
    args = parser.parse_args()
    try:
        aws = h.ensure_awscli()
        emulator = h.localstack() if args.emulator == "localstack" else h.moto_kms()
        with tempfile.TemporaryDirectory() as tmp, emulator as (upstream, pid), \
                h.kms_proxy(upstream, args.latency_ms) as endpoint:
            return run(args, aws, endpoint, pid, tmp)
    except h.Skip as skip:
        print(f"SKIPPED: {skip}")
        return 0


def run(args: argparse.Namespace, aws: str, endpoint: str, pid: int, tmp: str) -> int:
    env = h.keymgmt_env(os.path.join(tmp, "state"))
    keymgmt = [plain_python(), "-m", "keymgmt_cli"] if args.installed else h.KEYMGMT
    h.keymgmt(env, "write", "keymgmt/kms/ls", "provider=awskms", f"key_collection={REGION}",
              "credentials=access_key=test", "credentials=secret_key=test", f"credentials=endpoint={endpoint}")
    guide = os.path.join(tmp, "guide.sh")
    with open(guide, "w") as f:
        f.write(GUIDE)
    os.chmod(guide, 0o755)
    aws_env = {k: v for k, v in h.child_environ().items() if not k.startswith("AWS_")}
    aws_env.update(AWS=aws, EP=endpoint, REGION=REGION, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
                   AWS_CONFIG_FILE=os.path.join(tmp, "no-aws-config"),
                   AWS_SHARED_CREDENTIALS_FILE=os.path.join(tmp, "no-aws-credentials"), **h.LOOPBACK)
    aws_version = subprocess.run([aws, "--version"], capture_output=True, text=True).stdout.strip() \
        or subprocess.run([aws, "--version"], capture_output=True, text=True).stderr.strip()

    a_total: list[float] = []
    a_create: list[float] = []
    a_dist: list[float] = []
    b_total: list[float] = []
    b_steps: dict[str, list[float]] = {}
    cpu_a: list[float] = []
    cpu_b: list[float] = []
    emu_a: list[float] = []
    emu_b: list[float] = []
    thr: list[int] = []
    svc_a: list[float] = []
    svc_b: list[float] = []
    keymgmt_names: list[str] = []
    guide_ids: list[str] = []

    def run_a(i: int, keep: bool) -> None:
        name = f"k{i}"
        h.settle(pid)
        h.quota_gap()
        h.proxy_stats(endpoint, reset=True)
        e0 = h.process_tree_cpu(pid)
        t1, c1, _ = h.timed(keymgmt + ["write", f"keymgmt/key/{name}", "type=aes256-gcm96"], env)
        t2, c2, _ = h.timed(keymgmt + ["write", f"keymgmt/kms/ls/key/{name}", "purpose=encrypt,decrypt",
                                         "wrapping_key_spec=RSA_2048"], env)
        e1 = h.process_tree_cpu(pid)
        stats = h.proxy_stats(endpoint)
        keymgmt_names.append(name)
        thr.append(h.throttled(stats))
        if keep:
            svc_a.append(sum(h.upstream_ms(stats).values()) / 1000)
            emu_a.append(e1 - e0)
            a_create.append(t1)
            a_dist.append(t2)
            a_total.append(t1 + t2)
            cpu_a.append(c1 + c2)

    def run_b(i: int, keep: bool) -> None:
        work = os.path.join(tmp, f"guide-{i}")
        h.settle(pid)
        h.quota_gap()
        h.proxy_stats(endpoint, reset=True)
        e0 = h.process_tree_cpu(pid)
        t, c, out = h.timed([guide, f"g{i}", work], aws_env)
        e1 = h.process_tree_cpu(pid)
        stats = h.proxy_stats(endpoint)
        guide_ids.append(out.strip().splitlines()[-1])
        thr.append(h.throttled(stats))
        if keep:
            svc_b.append(sum(h.upstream_ms(stats).values()) / 1000)
            emu_b.append(e1 - e0)
            b_total.append(t)
            cpu_b.append(c)
            for label, d in read_steps(os.path.join(work, "steps.txt")).items():
                b_steps.setdefault(label, []).append(d)

    run_a(0, False)  # warm-up: page cache, LocalStack's first import
    run_b(0, False)
    for i in range(1, args.runs + 1):
        if i % 2:
            run_a(i, True)
            run_b(i, True)
        else:
            run_b(i, True)
            run_a(i, True)

    keymgmt_ids = []
    for name in keymgmt_names:
        out = h.keymgmt(env, "read", "-format=json", f"keymgmt/kms/ls/key/{name}").stdout
        keymgmt_ids.append(json.loads(out)["data"]["versions"]["1"])
    problems = check_keys(endpoint, keymgmt_ids, guide_ids)

    ma, mb = h.median(a_total), h.median(b_total)
    ca, cb = h.median(cpu_a), h.median(cpu_b)
    ratio, cpu_ratio = ma / mb, ca / cb
    per_round = sorted(a / b for a, b in zip(a_total, b_total))
    print(f"Create + distribute one aes256-gcm96 key (RSA_2048 wrapping), {args.emulator} behind the proxy "
          f"({args.latency_ms:g} ms per call, AWS quotas),\n{args.runs} interleaved runs each (after 1 warm-up), medians"
          + (f"; keymgmt from {h.SCRATCH}" if h.SCRATCH else "")
          + ("; keymgmt run as installed (no editable-install hook)" if args.installed else ""))
    print(f"machine: {h.machine_note()}")
    print(f"aws: {aws_version}")
    print()
    print(f"{'':52s} {'wall':>10s}   {'client CPU':>10s}   {'emulator CPU':>12s}   {'emulator service':>16s}")
    print(f"(a) keymgmt, 2 commands                              {h.ms(ma)}   {h.ms(ca)}   "
          f"{h.ms(h.median(emu_a)):>12s}   {h.ms(h.median(svc_a)):>16s}")
    print(f"      write keymgmt/key/kI type=aes256-gcm96         {h.ms(h.median(a_create))}")
    print(f"      write keymgmt/kms/ls/key/kI purpose=...        {h.ms(h.median(a_dist))}")
    print(f"(b) AWS import guide, bash + aws CLI x5 + openssl x4 {h.ms(mb)}   {h.ms(cb)}   "
          f"{h.ms(h.median(emu_b)):>12s}   {h.ms(h.median(svc_b)):>16s}")
    for label, values in b_steps.items():
        print(f"      {label:46s} {h.ms(h.median(values))}")
    print()
    print(f"spread of wall: (a) {h.noise(a_total)}; (b) {h.noise(b_total)}")
    print(f"ratio (a)/(b) of medians: wall {ratio:.2f}x (per-round: min {per_round[0]:.2f}, "
          f"median {h.median(per_round):.2f}, max {per_round[-1]:.2f}), client CPU {cpu_ratio:.2f}x")
    print(f"goals: wall <= {GOAL_WALL:.2f}x -> {'MEETS' if ratio <= GOAL_WALL else 'MISSES'}; "
          f"client CPU <= {GOAL_CPU:.2f}x -> {'MEETS' if cpu_ratio <= GOAL_CPU else 'MISSES'}")
    print(f"throttled calls (all runs, warm-ups included): {sum(thr)}")
    if problems:
        print("\nCHECK FAILED: keys not in the expected state:")
        for p in problems:
            print(f"  {p}")
        return 1
    print(f"\ncheck: all {len(keymgmt_ids)} keymgmt keys and {len(guide_ids)} guide keys are Enabled, EXTERNAL, "
          f"aliased and carry the 6 tags")
    return 0


if __name__ == "__main__":
    sys.exit(main())
