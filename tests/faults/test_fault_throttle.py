"""Throttling at AWS's real quotas: several keymgmt processes at once, keys with several versions.

The local KMS enforces AWS KMS's default request quotas (``middleware.Throttle``: GetParametersForImport
1/s, CreateKey 5/s, ...); keymgmt paces itself at the same quotas (``KEYMGMT_AWS_PACING=on``: pacing is
off by default for a loopback endpoint) per process, and retries what the KMS throttles. Three processes
distribute a 3-version key each: 9 GetParametersForImport at 1/s, so about 9 s at best.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from fault_harness import KMS, argv, cli_environ, end_state, fresh_kms, provider_args
from keymgmt_cli.cli.main import Env, cli
from keymgmt_cli.localkms import moto_import

pytestmark = [pytest.mark.emulator, pytest.mark.slow]

PROCESSES = 3
VERSIONS = 3
IDEAL = PROCESSES * VERSIONS * 1.0  # seconds: GetParametersForImport's quota is 1 request a second


@pytest.fixture(scope="module")
def kms() -> Any:
    moto_import.prewarm(("RSA_4096",))  # the default wrapping key: keep key generation off the clock
    with fresh_kms(throttle=True) as server:
        yield server


def test_processes_at_the_quota_finish_without_error(kms: Any, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    environ = cli_environ(tmp_path / "state", KEYMGMT_AWS_PACING="on")
    runner = CliRunner()
    for args in ([*provider_args(kms.endpoint_url)],
                 *(a for i in range(PROCESSES) for a in
                   [["write", f"keymgmt/key/t{i}", "type=aes256-gcm96"],
                    *[["write", "-f", f"keymgmt/key/t{i}/rotate"]] * (VERSIONS - 1)])):
        result = runner.invoke(cli, args, obj=Env(environ))
        assert result.exit_code == 0, (args, result.output)
    kms.observer.reset()
    kms.throttle.reset()
    time.sleep(1.0)  # let the spare wrapping key pair be generated before the clock starts

    started = time.monotonic()
    procs = [subprocess.Popen(argv("write", f"keymgmt/kms/{KMS}/key/t{i}", "purpose=encrypt,decrypt"),
                              env=environ, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(PROCESSES)]
    outputs = [p.communicate(timeout=180) for p in procs]
    elapsed = time.monotonic() - started

    for proc, (out, err) in zip(procs, outputs):
        assert proc.returncode == 0, (proc.returncode, out, err)
        assert "Traceback" not in err and "Error" not in err, err
    log = kms.observer.log
    gpfi = [c for c in log if c.op == "GetParametersForImport"]
    served = [c for c in gpfi if c.status == 200]
    throttled = [c for c in log if c.action == "throttled"]
    assert len(served) == PROCESSES * VERSIONS
    # the quota's own pace: from the first import parameters served to the last, 1 a second at best
    span = served[-1].at - served[0].at
    with capsys.disabled():
        print(f"\n[throttle] {PROCESSES} processes x {VERSIONS} versions at AWS's quotas: {elapsed:.1f} s "
              f"(ideal {IDEAL:.0f} s, {elapsed / IDEAL:.2f}x); GetParametersForImport served over "
              f"{span:.1f} s (ideal {len(served) - 1} s); {len(log)} KMS requests, {len(throttled)} "
              f"throttled ({len(gpfi) - len(served)} of {len(gpfi)} GetParametersForImport)")
    # Generous: 9 runs on a shared 2-core machine took 14.2-28.0 s (1.6-3.1x). Each process paces
    # itself at the quota, but the three together offer 3/s; what KMS throttles then waits out
    # botocore's jittered exponential backoff, which leaves the quota idle for seconds at a time.
    assert elapsed < IDEAL * 5, f"{elapsed:.1f} s for {IDEAL:.0f} s of quota"
    for i in range(PROCESSES):
        shape = end_state(kms.endpoint_url, environ, f"t{i}")
        assert shape["versions"] == list(range(1, VERSIONS + 1))
        assert [k[2] for k in shape["keys"]] == ["Enabled"] * VERSIONS
