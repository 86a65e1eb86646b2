"""What every handler shares with the engine, in a leaf module: the ``Mount`` record, the
timestamp shape, and (for type checkers only) the view of the engine that handlers use.

Handlers import this module, never ``core.py``: the engine dispatches to the handlers through the
route table (``core`` → ``paths`` → handlers), so a handler importing ``core`` would close a cycle.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing costs milliseconds on the read path
if TYPE_CHECKING:
    from typing import Any, Callable, Protocol

    class EngineView(Protocol):
        """The part of ``core.Engine`` that handlers may use."""

        store: Any
        secrets: Any
        provider_factory: Callable[..., Any] | None
        clock: Callable[[], float]
        progress: Callable[[str], None]

        def put(self, doc_id: str, doc: dict[str, Any]) -> None: ...
        def state_id(self) -> str: ...
        def mounts(self) -> list[Mount]: ...
        def resolve(self, path: str) -> tuple[Mount, str]: ...


class Mount:
    """A mount: its path ("keymgmt/") and the uuid that names its namespace in the store."""

    __slots__ = ("path", "uuid", "type", "description")

    def __init__(self, path: str, uuid: str, type: str = "keymgmt", description: str = ""):
        self.path, self.uuid, self.type, self.description = path, uuid, type, description

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Mount) and (self.path, self.uuid) == (other.path, other.uuid)

    def __repr__(self) -> str:
        return f"Mount({self.path!r}, {self.uuid!r})"

    def doc(self, *parts: str) -> str:
        return "/".join(("ns", self.uuid) + parts)

    def lock(self, kind: str, name: str) -> str:
        return f"{self.uuid}.{kind}.{name}"


def now_rfc3339(epoch: float | None = None) -> str:
    """Vault's creation_time shape: 2020-11-02T15:54:58.768473-08:00 (local offset, ``Z`` in UTC); ``epoch``
    is the engine's clock where the time matters later (a version's age decides its rotation)."""
    from datetime import datetime, timezone  # writes only: reads never format times

    when = datetime.now(timezone.utc) if epoch is None else datetime.fromtimestamp(epoch, timezone.utc)
    text = when.astimezone().isoformat()  # 2020-11-02T15:54:58[.768473]+HH:MM
    # Go's RFC 3339 (time.RFC3339Nano, what Vault's JSON gives): "Z" for UTC, no trailing zeros
    stamp, offset = text[:-6], text[-6:]
    if "." in stamp:
        stamp = stamp.rstrip("0").rstrip(".")
    return stamp + ("Z" if offset == "+00:00" else offset)
