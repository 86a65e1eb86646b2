"""The embedded local KMS for benchmarks that rotate in several regions at once: it keeps ``SPARES``
(4) wrapping key pairs of each spec ready from the first request on, instead of learning the
burst size from the first burst.

The local KMS keeps as many spare wrapping key pairs ready as the largest burst of
GetParametersForImport it has seen (``keymgmt_cli/localkms/tokens.py``), refilled while it is
idle (the benches wait for that before every timed run), as AWS has its wrapping keys ready on its
own machines. The first 4-region rotation after start-up still waits for 3 RSA generations on the
client's own two cores; here it does not, so every timed round of bench/rotate_providers.py is
alike. A run that takes more than 4 at once (bench/rotate_parallel.py) still waits for the rest.

(Until round 3 this module also made moto's per-key RSA-2048 pair lazy for symmetric keys; the
local KMS itself does that now, ``keymgmt_cli/localkms/keypairs.py``.)

Everything else is ``python -m keymgmt_cli.localkms.server`` as is.

    python bench/_lean_localkms.py --port 0      (prints the endpoint, as the server does)
"""

from __future__ import annotations

import sys

from keymgmt_cli.localkms import tokens as _tokens

SPARES = 4  # one per region of bench/rotate_providers.py's 4-region rotation
_tokens.WrappingKeyPool.MIN_SPARES = SPARES

if __name__ == "__main__":
    from keymgmt_cli.localkms.server import main

    sys.exit(main())
