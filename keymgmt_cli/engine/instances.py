"""Two live copies of one state claiming the same KMS keys: the warnings ``verify`` gives.

A snapshot restored elsewhere (or a state migrated) is a copy with the same state id, so the
``keymgmt:state_id`` tag of a KMS key cannot say which copy owns it. Every copy has its own
instance id (``store/retired.py``: made on its first key, new at every restore and migration
target), and the keys keymgmt creates carry it as ``keymgmt:instance`` (``reconcile._tags``). A
copy's ``meta/origin`` names the instance it was copied from and the instances known retired.

``Copies`` collects, while ``verify`` reads tags anyway, what it saw and turns it into one line
per conflict, naming both instances and what to do:

* a KMS key the state knows, tagged by another instance that is not known retired (a key it
  inherited from a retired source is not a conflict: that source refuses every change);
* a key of this state id that this copy does not know (a stray), tagged by another instance: a
  live copy made it (or the source did, after the snapshot, before it was retired);
* an alias of ours pointing at a key of this state id tagged by another instance: another copy
  rotated it;
* a copy whose source was not retired and that holds inherited keys: one line for all of them
  (keys made before instance tags existed carry none, so the origin is what says they are shared).

Keys without an instance tag (made before it existed) are never a conflict by their tags alone.
Read-only: the tags are those ``verify`` lists already, plus one ListResourceTags per stray and per
alias that points elsewhere. Nothing here is drift: ``verify``'s exit code does not change.
"""

from __future__ import annotations

from typing import Any

from keymgmt_cli.store.retired import instance_id, read_origin, retired_instances

INSTANCE_TAG = "keymgmt:instance"  # reconcile.INSTANCE_TAG
STATE_TAG = "keymgmt:state_id"
TODO = ("keep one copy and retire the other: 'keymgmt operator snapshot restore FILE "
        "-retire-source=URL' into the copy you keep (re-running it finishes), or 'keymgmt operator "
        "migrate'; then run 'keymgmt verify' again")


class Copies:
    """What one ``verify`` run saw of other copies of this state (see the module doc)."""

    def __init__(self, store: Any, state_id: str):
        self.state_id = state_id
        self.instance = instance_id(store)
        self.origin = read_origin(store) or {}
        self.retired = set(retired_instances(self.origin))
        self.source = self.origin.get("source_instance") if isinstance(self.origin.get("source_instance"), str) else None
        self.live_source = bool(self.origin) and not self.origin.get("source_retired")
        self._known: dict[str, dict[str, str]] = {}
        self._inherited: set[str] = set()
        self._conflicts: list[dict[str, Any]] = []
        self._said: set[tuple[str, str, str]] = set()

    def _me(self) -> str:
        return self.instance or "(none yet: it has created no KMS key)"

    def _other(self, tags: dict[str, str]) -> str | None:
        """The other instance that made a key of this state id, or None (ours, or untagged)."""
        if tags.get(STATE_TAG) != self.state_id:
            return None
        other = tags.get(INSTANCE_TAG)
        return other if other and other != self.instance else None

    def _add(self, what: str, path: str, region: str, key_id: str, other: str, text: str) -> None:
        if (what, key_id, region) in self._said:
            return
        self._said.add((what, key_id, region))
        self._conflicts.append({"path": path, "region": region, "key_id": key_id, "instance": self.instance,
                                "other_instance": other, "problem": text, "fix": TODO})

    def known(self, path: str, region: str, key_id: str, tags: dict[str, str]) -> None:
        """A KMS key this state records (its tags as verify read them)."""
        self._known[key_id] = tags
        other = self._other(tags)
        if self.origin and tags.get(INSTANCE_TAG) != self.instance:
            self._inherited.add(key_id)
        if other is None or other in self.retired:
            return
        if self.live_source and (other == self.source or self.source is None):
            return  # one line for every key inherited from a live source (lines())
        self._add("key", path, region, key_id, other,
                  f"{path}: KMS key {key_id} ({region}) is claimed by another live copy of this state "
                  f"(state id {self.state_id}): it was made by instance {other}, this state is "
                  f"instance {self._me()}")

    def stray(self, path: str, region: str, key_id: str, tags: dict[str, str]) -> None:
        """A key tagged with this state id that the state does not know."""
        other = self._other(tags)
        if other is None:
            return
        when = (f"instance {other}, which was retired, made it after the snapshot this copy was "
                "restored from (before it was retired): that change is not in this state"
                if other in self.retired else f"another live copy of this state, instance {other}, made it")
        self._add("key", path, region, key_id, other,
                  f"{path}: KMS key {key_id} ({region}) carries this state's id ({self.state_id}) but "
                  f"this state (instance {self._me()}) does not know it: {when}")

    def alias(self, path: str, region: str, alias: str, target: str, tags: dict[str, str]) -> None:
        """An alias of ours that points at ``target`` instead of our latest version."""
        other = self._other(tags)
        if other is None or (other in self.retired and target in self._known):
            return
        self._add("alias", path, region, target, other,
                  f"{path}: alias {alias} ({region}) points to KMS key {target}, made by instance "
                  f"{other} of this state, not by this one ({self._me()}): another live copy "
                  "rotated it")

    def conflicts(self) -> list[dict[str, Any]]:
        out = list(self._conflicts)
        if self.live_source and self._inherited:
            where = str(self.origin.get("restored_from") or self.origin.get("migrated_from") or "?")[:300]
            out.insert(0, {"path": "", "region": "", "key_id": None, "instance": self.instance,
                           "other_instance": self.source,
                           "problem": f"this state (instance {self._me()}) is a copy of state "
                                      f"{self.state_id} restored from {where}, whose source (instance "
                                      f"{self.source or 'unknown'}) was not retired: both claim the "
                                      f"{len(self._inherited)} KMS key(s) this copy inherited",
                           "fix": f"retire the source: re-run 'keymgmt operator snapshot restore FILE "
                                  f"-retire-source={where}' here (it finishes), or discard this copy"})
        return out


def lines(conflicts: list[dict[str, Any]]) -> list[str]:
    """One warning line per conflict: what, and what to do."""
    return [f"{c['problem']}; {c['fix']}" for c in conflicts]
