"""The embedded local KMS for benchmarks, minus one piece of emulator CPU that AWS does not make
a client wait for on its own cores: moto generates an RSA-2048 key pair on *every* CreateKey, also
for SYMMETRIC_DEFAULT keys that never use it (moto.kms.utils.generate_private_key, ``else``
branch). Here that pair is generated on first use instead, so a symmetric CreateKey costs the
emulator microseconds; asymmetric keys are unchanged.

And a second one: the local KMS keeps one spare wrapping key pair per spec and generates any
further one when GetParametersForImport asks, so the 4 concurrent GetParametersForImport of a
4-region rotation waited for 3 RSA-2048 generations on the client's own two cores (2.8 s of
emulator service time summed, vs 22 ms for 1 region, at load 16). Here the pool keeps
``SPARES`` (4) pairs ready, refilled while the emulator is idle (the benches wait for that before
every timed run), as AWS has its wrapping keys ready on its own machines. A run that takes more
than 4 at once (bench/rotate_parallel.py) still waits for the rest.

Everything else is ``python -m keymgmt_cli.localkms.server`` as is.

    python bench/_lean_localkms.py --port 0      (prints the endpoint, as the server does)
"""

from __future__ import annotations

import sys
from typing import Any

import moto.kms.models as _models

from keymgmt_cli.localkms import tokens as _tokens

_ASYMMETRIC = {"RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_SECG_P256K1", "ECC_NIST_P384",
               "ECC_NIST_P521", "SM2"}
_generate = _models.generate_private_key


class _OnFirstUse:
    def __init__(self, spec: str) -> None:
        self._spec = spec
        self._key: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._key is None:
            self._key = _generate(self._spec)
        return getattr(self._key, name)


def _lazy(spec: str) -> Any:
    return _generate(spec) if spec in _ASYMMETRIC else _OnFirstUse(spec)


_models.generate_private_key = _lazy  # type: ignore[assignment]

SPARES = 4  # one per region of bench/rotate_providers.py's 4-region rotation
_tokens.WrappingKeyPool.SPARES = SPARES

if __name__ == "__main__":
    from keymgmt_cli.localkms.server import main

    sys.exit(main())
