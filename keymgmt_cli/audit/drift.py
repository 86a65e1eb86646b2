"""Drift against the trail: was a drifted KMS key changed by keymgmt, or behind its back?

For each drift item of ``engine.verify`` that names a KMS key, the last response record whose AWS
calls touched that key decides:

- it succeeded: keymgmt's last action on the key finished, yet AWS now differs, so the change was
  made outside keymgmt (``behind_our_back: true``);
- it failed, crashed or was interrupted, or a later command on the same key path did: an
  unfinished keymgmt command explains the drift (``false``; re-running it finishes the job);
- no record touched the key (a state older than its trail, or a trail switched off): it cannot be
  told (``null``).
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any


def _key_path(path: str) -> str:
    """``keymgmt/kms/k/key/n`` and ``keymgmt/key/n/rotate`` both name key ``n``: ``keymgmt/|n``."""
    parts = path.strip("/").split("/")
    if "key" in parts:
        i = len(parts) - 1 - parts[::-1].index("key")
        if i + 1 < len(parts):
            return f"{parts[0]}/|{parts[i + 1]}"
    return path


def explain(result: dict[str, Any], records: Iterable[tuple[str, Any]]) -> dict[str, Any]:
    """``result`` with ``audit`` added to each drift item, and ``changed_outside_keymgmt`` counted."""
    last_by_key: dict[str, dict[str, Any]] = {}
    unfinished_paths: dict[str, int] = {}
    order = 0
    for _where, record in records:
        if not isinstance(record, dict) or record.get("type") != "response":
            continue
        order += 1
        meta = record.get("keymgmt") or {}
        outcome = meta.get("outcome", "ok")
        path = _key_path(str((record.get("request") or {}).get("path", "")))
        if outcome != "ok":
            unfinished_paths[path] = order
        elif unfinished_paths.get(path, 0) < order:
            unfinished_paths.pop(path, None)
        for call in meta.get("aws_calls") or []:
            key_ref = str(call.get("key_id", ""))
            if key_ref:
                last_by_key[key_ref.split(" ")[0]] = {"order": order, "request_id": record["request"].get("id"),
                                                      "outcome": outcome, "time": record.get("time", ""),
                                                      "path": path}
    behind = 0
    for item in result.get("drift", []):
        key_id = item.get("key_id")
        last = last_by_key.get(key_id) if key_id else None
        if last is None:
            verdict: bool | None = None
        else:
            unfinished = last["outcome"] != "ok" or unfinished_paths.get(_key_path(item.get("path", "")), 0) > 0
            verdict = not unfinished
        item["audit"] = {"behind_our_back": verdict,
                         "last_request": None if last is None else last["request_id"],
                         "last_outcome": None if last is None else last["outcome"],
                         "last_time": None if last is None else last["time"]}
        behind += verdict is True
    result["changed_outside_keymgmt"] = behind
    return result
