"""``keymgmt operator upgrade``: authenticate, once, a state written before documents carried MACs.

A format-1 state (no ``_auth`` tags) is refused document by document until its owner runs
the upgrade; nothing upgrades on its own, because anyone who can edit the state can also strip
the tags of an upgraded one and make it look old. The upgrade therefore refuses:

* a master key that is not proven: the key check value must be on record (``seal.json`` or
  the seal record; see ``masterkey.py``) and every sealed value in the state must unseal, under
  that key, at its own document and field;
* a state that is already partly authenticated (some documents tagged, others not), or that has
  revision records (``meta/revisions/*``): that is what stripping the tags of an upgraded state
  looks like, never what an old keymgmt wrote.

The ``meta/`` markers (``auth.MARKERS``: escrow, retired, origin, instance) were written without
a tag by keymgmt before they were authenticated; an upgrade authenticates them too, also in a
state whose documents are authenticated already, and names each one with what it says, so the
owner sees what is being vouched for (a forged ``meta/retired`` would otherwise be blessed
unseen). A marker that carries a tag is verified like any document, never re-signed.

What it cannot tell: a format-1 state edited by someone else *before* the upgrade (there was
nothing to check it against), or an upgraded state whose every tag and revision record were
removed. Run it once, on a state you know was last written by an older keymgmt.
"""

from __future__ import annotations

import re
from typing import Any

from ..errors import PreconditionFailed, StoreError
from .auth import AUTH_FIELD, MARKERS, META_PREFIX, REVISIONS, STATE_DOC, AuthStore, document_ids

_TOKEN_RE = re.compile(r"v1\.[A-Za-z0-9_-]{38,}")


def _tokens(value: Any, path: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    """(field path, token) of every value shaped like a sealed token."""
    if isinstance(value, dict):
        return [t for k, v in value.items() for t in _tokens(v, path + (str(k),))]
    if isinstance(value, list):
        return [t for i, v in enumerate(value) for t in _tokens(v, path + (str(i),))]
    if isinstance(value, str) and _TOKEN_RE.fullmatch(value):
        return [("/".join(path), value)]
    return []


def upgrade_state(store: Any, box: Any) -> str:
    """Authenticate every document of the raw ``store`` under ``box``'s master key; one line.

    Safe to re-run: a fully authenticated state is checked and left as it is.
    """
    ids = list(document_ids(store))
    if any(i.startswith(REVISIONS + "/") for i in ids):
        legacy_ids = [i for i in ids if not i.startswith(META_PREFIX)
                      and AUTH_FIELD not in (store.get(i) or {AUTH_FIELD: 1})]
        if legacy_ids:
            raise PreconditionFailed(
                f"the state at {store.location} was upgraded already, but {legacy_ids[0]} is not "
                "authenticated: someone removed its tag", hint="restore it from a backup")
    box.auth_key()  # proves the key against its check value (or refuses) before anything else
    wrapper = AuthStore(store, box.auth_key, legacy=True)
    docs: dict[str, dict[str, Any]] = {}
    with store.lock("state", timeout=120):
        order = sorted((i for i in ids if not i.startswith(META_PREFIX)),
                       key=lambda i: (i != STATE_DOC, i))
        markers = _legacy_markers(store, ids)
        for doc_id in order:
            doc = wrapper.get(doc_id)
            if doc is not None:
                docs[doc_id] = doc
        legacy = [i for i in order if i in wrapper.legacy_seen]
        tagged = [i for i in docs if i not in wrapper.legacy_seen]
        if not legacy and markers:
            return _authenticate_markers(store, wrapper, markers, len(tagged))
        if not legacy:
            for marker in sorted(MARKERS & set(ids)):
                wrapper.get(marker)  # a marker with a wrong tag is tampered with: refused here
            return f"Success! The state at {store.location} is authenticated already ({len(tagged)} documents checked)."
        if tagged:
            raise PreconditionFailed(
                f"the state at {store.location} mixes authenticated and unauthenticated documents "
                f"(e.g. {legacy[0]} has no tag, {tagged[0]} has one): someone removed tags",
                hint="restore the state from a backup; upgrade only a state last written by an older keymgmt")
        if STATE_DOC in docs:
            wrapper_state = docs[STATE_DOC].get("state_id")
            if not isinstance(wrapper_state, str) or not wrapper_state:
                raise StoreError(f"state document {STATE_DOC} in {store.location} has no state id")
        secrets = 0
        for doc_id in legacy:
            for field, token in _tokens(docs[doc_id]):
                box.unseal(token, f"{doc_id}#{field}")  # StoreError: not this key, or moved
                secrets += 1
        for doc_id in legacy:
            wrapper.put(doc_id, docs[doc_id])
        for doc_id in markers:
            wrapper.put(doc_id, store.get(doc_id))
    return (f"Success! Authenticated {len(legacy)} documents of {store.location} "
            f"({secrets} sealed values proven under the master key).")


def _legacy_markers(store: Any, ids: list[str]) -> list[str]:
    """The markers stored without a tag (by a keymgmt from before they were authenticated)."""
    return [i for i in sorted(MARKERS & set(ids)) if AUTH_FIELD not in (store.get(i) or {AUTH_FIELD: 1})]


def _what(doc_id: str, doc: dict[str, Any]) -> str:
    """What a marker says, in a few words (no secret is in any marker)."""
    if doc_id == "meta/retired":
        from .locations import without_userinfo

        return f"this state is retired: moved to {without_userinfo(str(doc.get('moved_to')))[:200]}"
    if doc_id == "meta/escrow":
        return f"escrow of {doc.get('shares')} shares, threshold {doc.get('threshold')}, made {doc.get('created')}"
    if doc_id == "meta/origin":
        return f"a copy of state {doc.get('copy_of')} restored from {str(doc.get('restored_from'))[:200]}"
    return f"instance {doc.get('instance_id')}"


def _authenticate_markers(store: Any, wrapper: AuthStore, markers: list[str], checked: int) -> str:
    lines = []
    for doc_id in markers:
        doc = store.get(doc_id)
        if not isinstance(doc, dict):
            continue
        lines.append(f"  {doc_id}: {_what(doc_id, doc)}")
        wrapper.put(doc_id, doc)
    return (f"Success! Authenticated {len(lines)} marker(s) of {store.location} ({checked} documents "
            "checked); each is trusted from now on: one you did not make means the state was edited "
            "outside keymgmt (restore it from a backup)\n" + "\n".join(lines))
