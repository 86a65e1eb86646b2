"""The snapshot file: its bytes, its digest and its MAC (``snapshot.py`` saves and restores a state).

File layout (bytes, strictly): a JSON body, ``\\n``, then one trailer line
``{"sha256":"<hex>","mac":"<hex>"}`` and ``\\n``. ``sha256`` covers the body's exact bytes (a
byte changed anywhere is "modified"); ``mac`` is HMAC-SHA256 over the same bytes under a key
derived from the master key (``HMAC(master, "keymgmt-snapshot-mac-v1")``), so a snapshot made
under another key, or forged by someone who rewrote the digest too, is refused as well. The body
is a JSON object of format ``FORMAT`` holding at least ``state_id``, ``seal`` and ``documents``.

``read`` refuses a modified file before anything is parsed as a state; ``verify`` checks the MAC
once the master key is known (a restore finds it from the body's seal). Apart from ``snapshot.py``
because the format is a contract with every file ever saved, read by ``operator recover
-snapshot`` as well, while save and restore are about the state.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
from typing import Any

from ..errors import PreconditionFailed, StoreError

FORMAT = 2  # 2: the documents as stored, with their MAC tags (auth.py)
_MAC_CONTEXT = b"keymgmt-snapshot-mac-v1"


def mac_key(master: bytes) -> bytes:
    return hmac.new(master, _MAC_CONTEXT, hashlib.sha256).digest()


def encode(body: dict[str, Any], master: bytes) -> bytes:
    raw = (json.dumps(body, indent=1, sort_keys=True, ensure_ascii=False, allow_nan=False)
           .encode("utf-8"))
    trailer = {"sha256": hashlib.sha256(raw).hexdigest(),
               "mac": hmac.new(mac_key(master), raw, hashlib.sha256).hexdigest()}
    return raw + b"\n" + _trailer_bytes(trailer) + b"\n"


def _trailer_bytes(trailer: dict[str, str]) -> bytes:
    return json.dumps(trailer, separators=(",", ":"), sort_keys=True).encode("ascii")


def read(path: str) -> tuple[bytes, dict[str, Any], dict[str, str]]:
    """(body bytes, body, trailer) of an unmodified snapshot; the MAC is checked by ``verify``."""
    target = os.path.abspath(os.path.expanduser(path))
    try:
        with open(target, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise StoreError(f"cannot read snapshot {target}: {exc.strerror or type(exc).__name__}") from None
    refused = PreconditionFailed(f"{target} is not an unmodified keymgmt snapshot; nothing was restored",
                                 hint="restore from another copy of the snapshot")
    if not data.endswith(b"\n"):
        raise refused
    raw, sep, trailer_line = data[:-1].rpartition(b"\n")
    if not sep:
        raise refused
    try:
        trailer = json.loads(trailer_line.decode("ascii"))
        ok = (isinstance(trailer, dict) and set(trailer) == {"sha256", "mac"}
              and all(isinstance(v, str) and v.isascii() for v in trailer.values())  # compare_digest
              and _trailer_bytes(trailer) == trailer_line)
    except (UnicodeDecodeError, ValueError, TypeError):
        ok = False
    if not ok or not hmac.compare_digest(hashlib.sha256(raw).hexdigest(), str(trailer["sha256"])):
        raise refused
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):  # RecursionError: nested too deeply
        raise refused from None
    if not isinstance(body, dict) or body.get("keymgmt_snapshot") != FORMAT or \
            not isinstance(body.get("documents"), dict) or not isinstance(body.get("seal"), dict) \
            or not isinstance(body.get("state_id"), str):
        raise PreconditionFailed(f"{target} is not a keymgmt snapshot of format {FORMAT}")
    return raw, body, trailer


def verify(raw: bytes, trailer: dict[str, str], master: bytes, path: str) -> None:
    expected = hmac.new(mac_key(master), raw, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, str(trailer["mac"])):
        raise PreconditionFailed(f"{path} was not made under this master key, or was modified; "
                                 "nothing was restored")
