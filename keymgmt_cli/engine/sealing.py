"""Key material in and out of the sealed state: where each version's material is bound (its AAD)
and the two calls that seal and unseal it through the engine's secret box.

The secret box (``store.SecretBox``) does the cryptography; this module only names the location
each secret is bound to, so that a sealed blob moved to another version, key or mount no longer
unseals.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from keymgmt_cli.engine.mounts import EngineView, Mount


def material_aad(mount: Mount, name: str, version: int | str) -> str:
    """The location a version's material is bound to, e.g. ``ns/<mount uuid>/keys/NAME#versions/2/material``."""
    return f"{mount.doc('keys', name)}#versions/{version}/material"


def seal_version(engine: EngineView, mount: Mount, name: str, number: int, version: dict[str, Any]) -> dict[str, Any]:
    """Replace the plaintext ``_material`` of a new version record by its sealed form."""
    material = version.pop("_material")
    version["material"] = engine.secrets.seal(material, material_aad(mount, name, number))
    return version


def unseal_material(engine: EngineView, mount: Mount, name: str, doc: dict[str, Any], number: int) -> bytes:
    return engine.secrets.unseal(doc["versions"][str(number)]["material"], material_aad(mount, name, number))


def unseal_all(engine: EngineView, mount: Mount, key: dict[str, Any]) -> dict[int, bytes]:
    """Every version's material, by version number."""
    return {int(v): unseal_material(engine, mount, key["name"], key, int(v)) for v in key["versions"]}
