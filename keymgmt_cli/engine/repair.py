"""``keymgmt verify -fix [PATH]``: converge every distribution PATH covers, then verify again.

Per distribution, under the key's lock (the lock every distribution, rotation, removal and
``min_enabled_version`` write takes): an unfinished distribution is finished first (``reconcile``,
as re-running its ``write`` would), then ``converge`` repairs what drifted in AWS. A removal in
progress is left to ``keymgmt delete`` (or ``delete -forget``), which verify names.

Strays (keys tagged as this state's that it has no record of) are reported, never deleted:
``-fix`` has no flag that deletes a key keymgmt has no record of (the aws CLI line to inspect one
is in its finding). A provider that cannot be reached is reported and the others are repaired.

Resumable: ``converge`` decides from fresh reads and saves after each write, so a crash at any
call position is finished by running ``verify -fix`` again.
"""

from __future__ import annotations

from keymgmt_cli.engine import converge, kmsproviders, reconcile, shapes, verify
from keymgmt_cli.engine.keys import MUTATION_LOCK_TIMEOUT, load_key
from keymgmt_cli.engine.routing import Response
from keymgmt_cli.engine.sealing import unseal_all
from keymgmt_cli.errors import ProviderError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from keymgmt_cli.engine.mounts import EngineView as Engine


def repair(engine: Engine, path: str | None = None) -> Response:
    """Data: ``fixed`` (one item per write made) and ``failed`` (distributions that could not be
    repaired, with the cause: an unreachable provider, a refused call)."""
    dists, _providers = verify._targets(engine, path)
    fixed: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for mount, kms, key_name in dists:
        where = f"{mount.path}kms/{kms}/key/{key_name}"
        try:
            with engine.store.lock(mount.lock("key", key_name), timeout=MUTATION_LOCK_TIMEOUT):
                dist = shapes.load(engine.store, mount.doc("dist", kms, key_name), shapes.distribution)
                if dist is None or dist.get("state") == "removing":
                    continue  # removed meanwhile, or a removal its own command finishes
                key = load_key(engine, mount, key_name)
                kms_doc = kmsproviders.load_provider(engine, mount, kms)
                materials = unseal_all(engine, mount, key)
                provider = reconcile.connect(engine, mount, kms_doc)
                if dist.get("state") != "ready":
                    reconcile.reconcile(engine, mount, key, dist, kms_doc, materials, provider)
                    fixed.append({"path": where, "version": None, "region": provider.region, "key_id": None,
                                  "kind": "unfinished", "action": "finished the unfinished distribution"})
                fixed += converge.converge(engine, mount, key, dist, kms_doc, materials, provider)
        except ProviderError as error:  # this one could not be repaired: say so and go on
            failed.append({"path": where, "cause": str(error)})
    return Response({"fixed": fixed, "failed": failed})
