"""Strict AWS KMS "import key material" (BYOK) test double on top of moto.

moto 5.2.x implements KMS keys but not ``GetParametersForImport``,
``ImportKeyMaterial`` or ``DeleteImportedKeyMaterial``, and it treats
``Origin=EXTERNAL`` keys like ordinary keys (Enabled, with random material).
:func:`install` monkeypatches moto's KMS so that it behaves like AWS KMS for
the BYOK lifecycle, in-process (``moto.mock_aws``) and in moto's server mode.

The double is meant to be *stricter* than AWS's documented rules, never
looser.  Where AWS's behaviour is unknown we refuse.  The choices that go
beyond AWS's documented rules:

* An import token is spent by the first ``ImportKeyMaterial`` call that
  presents it for a key, whether the call succeeds or fails.  A call that fails
  earlier, on its own parameters or on the key's state, does not spend it
  (except the refusals of staging new material for rotation, which come after
  the material is unwrapped and compared).
  Each wrapping key pair comes from a fresh RSA key generation.  It is given
  out once and forgotten after use (see :class:`.tokens.WrappingKeyPool`).
* "Same key material" on reimport means byte-identical material.  For RSA/ECC
  keys that is the same PKCS#8 DER encoding, not just the same key.
* Symmetric keys accept ``RSAES_OAEP_SHA_*`` only.  RSA keys accept
  ``RSA_AES_KEY_WRAP_SHA_*`` only.  ECC keys accept both, except P-521 with an
  RSA_2048 wrapping key and OAEP.  This is the AWS developer guide table.  The
  API model text is looser.
* ``EXTERNAL`` keys are limited to SYMMETRIC_DEFAULT (ENCRYPT_DECRYPT),
  RSA_2048/3072/4096 (ENCRYPT_DECRYPT or SIGN_VERIFY) and
  ECC_NIST_P256/P384/P521 or ECC_SECG_P256K1 (SIGN_VERIFY).  HMAC, SM2 and
  KEY_AGREEMENT imports are refused with UnsupportedOperationException.
* Symmetric keys model AWS's key materials (ListKeyRotations): ``ImportType=
  NEW_KEY_MATERIAL`` on a key with material stages it as PENDING_ROTATION (one
  at a time; delete it to stage another), ``RotateKeyOnDemand`` makes it
  CURRENT at once (AWS: within seconds) and the old one NON_CURRENT (decrypts
  only), at most 25 times per key.  The key is usable only while every
  permanently associated material is imported.  On a multi-Region primary with
  replicas new material waits as PENDING_MULTI_REGION_IMPORT_AND_ROTATION (the
  replicas list it too) until it is imported into every replica with
  EXISTING_KEY_MATERIAL; RotateKeyOnDemand (primary only) then rotates the
  replicas with it.  New material imported into a replica is refused.
* Material with ``KEY_MATERIAL_EXPIRES`` really expires (it is deleted and the
  key goes PendingImport).  The check is lazy and runs when the key is next
  used, described or listed.

The clock used for token expiry and material expiry can be replaced with
:func:`set_clock` or shifted with ``KEYMGMT_LOCALKMS_CLOCK_OFFSET`` (seconds),
for example in tests (module :mod:`.clock`).

Pinned to ``moto>=5.2,<5.3``.  Every patch says which moto internals it relies on.

The double is split by what each part holds:

* :mod:`.rules`: AWS's allowed values and limits (key specs, curves, wrapping algorithms, quotas),
  the double's own copy, independent of ``keymgmt_cli/transfer.py`` and ``keymaterial.py`` on purpose
  (it is the oracle);
* :mod:`.errors`: the KMS error codes moto lacks;
* :mod:`.clock`: the replaceable clock;
* :mod:`.keystate`: per-key import state and key-state rules;
* :mod:`.tokens`: wrapping key pairs and import tokens;
* :mod:`.keypairs`: moto's per-key private keys, generated only for keys that need one;
* :mod:`.material`: unwrapping and checking key material;
* :mod:`.params`: request parameter parsing;
* :mod:`.actions`: the new actions (GetParametersForImport, ImportKeyMaterial, DeleteImportedKeyMaterial);
  RotateKeyOnDemand and ListKeyRotations for imported material are patches of moto's own;
* :mod:`.response_patches` and :mod:`.backend_patches`: fixes to moto's existing behaviour;
* this module: :func:`install`, which applies all of them.
"""

from __future__ import annotations

import logging

import moto
from moto.kms.responses import KmsResponse

from . import actions, backend_patches, keypairs, response_patches
from .clock import set_clock
from .keystate import LOCK
from .rules import TOKEN_VALIDITY_SECONDS
from .tokens import prewarm

__all__ = [
    "install",
    "installed",
    "prewarm",
    "set_clock",
    "TOKEN_VALIDITY_SECONDS",
]

_log = logging.getLogger(__name__)

_INSTALLED = False


def installed() -> bool:
    return _INSTALLED


def install() -> None:
    """Apply the patches to moto's KMS (idempotent, process-wide, not reversible)."""
    global _INSTALLED
    with LOCK:
        if _INSTALLED:
            return
        major_minor = tuple(int(p) for p in moto.__version__.split(".")[:2])
        if major_minor != (5, 2):
            raise RuntimeError(
                f"keymgmt's local KMS patches moto 5.2.x internals; installed moto is {moto.__version__}"
            )
        for name in ("get_parameters_for_import", "import_key_material", "delete_imported_key_material"):
            if name in KmsResponse.__dict__:
                raise RuntimeError(f"moto {moto.__version__} already implements KMS {name}; revisit moto_import")
        keypairs.install()
        backend_patches.patch_backend()
        KmsResponse.get_parameters_for_import = actions.get_parameters_for_import  # type: ignore[attr-defined]
        KmsResponse.import_key_material = actions.import_key_material  # type: ignore[attr-defined]
        KmsResponse.delete_imported_key_material = actions.delete_imported_key_material  # type: ignore[attr-defined]
        KmsResponse.encrypt = response_patches.wrap_encrypt(KmsResponse.encrypt)  # type: ignore[method-assign]
        KmsResponse.decrypt = response_patches.wrap_decrypt(KmsResponse.decrypt)  # type: ignore[method-assign]
        KmsResponse.replicate_key = response_patches.wrap_replicate_key(KmsResponse.replicate_key)  # type: ignore[method-assign]
        KmsResponse.list_key_rotations = response_patches.wrap_list_key_rotations(  # type: ignore[method-assign]
            KmsResponse.list_key_rotations
        )
        _INSTALLED = True
        _log.debug("moto KMS import extension installed (moto %s)", moto.__version__)
