"""The bench proxy's AWS quotas and keymgmt's pacing table say the same thing.

bench/kms_proxy.py keeps its own copy of AWS's KMS request quotas on purpose (the harness models
AWS, so it must not share a wrong figure with the code it measures); this keeps the two copies from
drifting apart unnoticed: a change to one is a change to make, and to check against AWS, in both.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from keymgmt_cli.aws.codes import REQUEST_QUOTAS

PROXY = Path(__file__).resolve().parents[2] / "bench" / "kms_proxy.py"


def test_the_bench_proxy_throttles_at_the_quotas_keymgmt_paces_at():
    spec = importlib.util.spec_from_file_location("bench_kms_proxy", PROXY)
    proxy = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(proxy)
    assert proxy.QUOTAS == REQUEST_QUOTAS
    assert proxy.QUOTAS["GetParametersForImport"] == 1  # the quota the parallel bench's floor rests on
