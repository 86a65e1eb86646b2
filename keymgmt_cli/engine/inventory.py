"""The inventory an auditor asks for: one row per key version and place (KMS region, primary or
replica), from the state alone (and the audit trail for who rotated last). No AWS call.

A key that is not distributed anywhere gives one row per version with no provider or region.

``kms_key_arn`` is the state's key id when that is an ARN (with the replica's region for a
replica); when the state has only the KeyId (as CreateKey returns it) the ARN is built, with no AWS
call, from the region, the key id and the account of the credentials that created the key: the
trail records which credentials made each CreateKey/ReplicateKey and, once per credentials, their
caller identity (STS GetCallerIdentity). ``account`` says which account that is, or ``unknown``
(the key was created with the trail off, or its caller identity could not be learned): then
``kms_key_arn`` stays empty rather than naming an account that may not be the key's.
"""

from __future__ import annotations

from keymgmt_cli.engine import shapes

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

COLUMNS = ("key_name", "mount", "type", "version", "creation_time", "provider", "region", "kms_key_id",
           "kms_key_arn", "account", "alias", "enabled", "material_expiry", "replica_of", "last_rotation",
           "last_rotated_by")


def last_rotations(trail_records: Any) -> dict[str, tuple[str, str]]:
    """``{"<mount>key/<name>": (time, "user@host")}`` of the last successful rotation in the trail."""
    out: dict[str, tuple[str, str]] = {}
    for _where, record in trail_records or ():
        if not isinstance(record, dict) or record.get("type") != "response" or record.get("error"):
            continue
        path = str((record.get("request") or {}).get("path", "")).strip("/")
        if not path.endswith("/rotate"):
            continue
        meta = record.get("keymgmt") or {}
        out[path[: -len("/rotate")]] = (str(record.get("time", "")),
                                         f"{meta.get('local_user', '?')}@{meta.get('host', '?')}")
    return out


UNKNOWN = "unknown"
#: AWS partitions by region prefix (everything else is the commercial partition ``aws``).
PARTITIONS = (("cn-", "aws-cn"), ("us-gov-", "aws-us-gov"), ("us-isob-", "aws-iso-b"), ("us-iso-", "aws-iso"),
              ("eu-isoe-", "aws-iso-e"), ("us-isof-", "aws-iso-f"))


def partition(region: str) -> str:
    for prefix, name in PARTITIONS:
        if region.startswith(prefix):
            return name
    return "aws"


def key_accounts(trail_records: Any) -> dict[str, str]:
    """``{KeyId: account}`` for every key the trail saw created or replicated: the account of the
    caller identity of the credentials that made the call."""
    accounts_of: dict[str, str] = {}  # credentials digest -> account
    made: list[tuple[str, str]] = []  # (key id, credentials digest)
    for _where, record in trail_records or ():
        if not isinstance(record, dict) or record.get("type") != "response":
            continue
        meta = record.get("keymgmt") or {}
        for identity in meta.get("caller_identity") or ():
            account = str((identity or {}).get("account") or "")
            if account.isdigit():
                accounts_of[str(identity.get("credentials", ""))] = account
        for call in meta.get("aws_calls") or ():
            if (isinstance(call, dict) and call.get("operation") in ("CreateKey", "ReplicateKey")
                    and call.get("outcome") == "ok" and call.get("key_id")):
                made.append((_bare(str(call["key_id"])), str(call.get("credentials", ""))))
    out: dict[str, str] = {}
    for key_id, credentials in made:
        if credentials in accounts_of:
            out.setdefault(key_id, accounts_of[credentials])
    return out


def _bare(key_id: str) -> str:
    return key_id.rsplit("/", 1)[-1] if key_id.startswith("arn:") else key_id


def arn_of(key_id: str, region: str, accounts: dict[str, str]) -> tuple[str, str]:
    """(ARN, account) of KMS key ``key_id`` in ``region``: from an ARN key id, else built from the
    account the trail knows; ("", "unknown") when it knows none."""
    if not key_id:
        return "", ""
    if key_id.startswith("arn:"):
        parts = key_id.split(":", 5)
        if len(parts) == 6:
            return ":".join([parts[0], parts[1], parts[2], region, parts[4], parts[5]]), parts[4]
        return key_id, UNKNOWN
    account = accounts.get(key_id)
    if not account:
        return "", UNKNOWN
    return f"arn:{partition(region)}:kms:{region}:{account}:key/{key_id}", account


def inventory(engine: Any, path: str | None = None, trail_records: Any = None) -> list[dict[str, Any]]:
    """The rows, for every mount (or the mount, key or provider ``path`` names)."""
    from keymgmt_cli.engine.reconcile import alias_name

    trail_records = list(trail_records or ())
    rotations = last_rotations(trail_records)
    accounts = key_accounts(trail_records)
    only_key = only_kms = None
    mounts = engine.mounts()
    if path:
        mount, rel = engine.resolve(path)
        mounts = [mount]
        parts = rel.split("/") if rel else []
        if len(parts) >= 2 and parts[0] == "key":
            only_key = parts[1]
        elif len(parts) >= 2 and parts[0] == "kms":
            only_kms = parts[1]
            if len(parts) >= 4 and parts[2] == "key":
                only_key = parts[3]
    rows: list[dict[str, Any]] = []
    store = engine.store
    for mount in mounts:
        kms_names = store.list(mount.doc("kms"))
        for name in store.list(mount.doc("keys")):
            if only_key is not None and name != only_key:
                continue
            key = shapes.load(store, mount.doc("keys", name), shapes.key)
            if key is None:
                continue
            rotated, by = rotations.get(f"{mount.path}key/{name}", ("", ""))
            base = {"key_name": name, "mount": mount.path, "type": key["type"], "last_rotation": rotated,
                    "last_rotated_by": by}
            placed = False
            for kms in kms_names:
                if only_kms is not None and kms != only_kms:
                    continue
                dist = shapes.load(store, mount.doc("dist", kms, name), shapes.distribution)
                if dist is None:
                    continue
                provider = shapes.load(store, mount.doc("kms", kms), shapes.provider) or {}
                region = provider.get("key_collection", "")
                for number, rec in sorted(dist["versions"].items(), key=lambda item: int(item[0])):
                    version = key["versions"].get(number, {})
                    key_id = rec.get("key_id") or ""
                    common = {**base, "version": int(number), "creation_time": version.get("creation_time", ""),
                              "provider": kms, "kms_key_id": key_id,
                              "material_expiry": dist.get("valid_to") or ""}
                    arn, account = arn_of(key_id, region, accounts)
                    rows.append({**common, "region": region, "kms_key_arn": arn, "account": account,
                                 "alias": dist["alias"] if key_id and dist.get("alias_target") == key_id else "",
                                 "enabled": bool(rec.get("enabled", True)) and bool(rec.get("imported", False)),
                                 "replica_of": ""})
                    placed = True
                    for rregion, replica in sorted((rec.get("replicas") or {}).items()):
                        if not replica.get("created") or replica.get("deleted"):
                            continue
                        target = (dist.get("replica_alias_targets") or {}).get(rregion)
                        arn, account = arn_of(key_id, rregion, accounts)
                        rows.append({**common, "region": rregion, "kms_key_arn": arn, "account": account,
                                     "alias": alias_name(dist, rregion) if key_id and target == key_id else "",
                                     "enabled": bool(replica.get("enabled", True)) and bool(replica.get("imported")),
                                     "replica_of": f"{region} {key_id}"})
            if not placed and only_kms is None:
                for number, version in sorted(key["versions"].items(), key=lambda item: int(item[0])):
                    rows.append({**base, "version": int(number), "creation_time": version.get("creation_time", ""),
                                 "provider": "", "region": "", "kms_key_id": "", "kms_key_arn": "", "alias": "",
                                 "enabled": int(number) >= key["min_enabled_version"], "material_expiry": "",
                                 "replica_of": ""})
    return [{column: row.get(column, "") for column in COLUMNS} for row in rows]
