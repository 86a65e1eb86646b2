"""Name rules. Key names end up in the alias alias/hashicorp/<key_name>-<unix_timestamp>, whose
allowed characters are [a-zA-Z0-9/_-], so names are limited to letters, digits, '_' and '-'."""

from __future__ import annotations

import re

from keymgmt_cli.errors import InvalidRequest

NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,200}")  # used with fullmatch: "$" would let a trailing newline in
MOUNT_SEGMENT_RE = re.compile(r"[A-Za-z0-9_.-]{1,64}")
# AWS ReplicaRegion / region shape: us-west-1, us-gov-west-1, cn-north-1, eu-central-2
REGION_RE = re.compile(r"[a-z]{2}(-[a-z]+){1,2}-\d{1,2}")


def check_name(kind: str, name: str) -> str:
    if not NAME_RE.fullmatch(name):
        shown = name if len(name) <= 60 else name[:60] + "..."
        raise InvalidRequest(
            f"invalid {kind} name {shown!r}: use 1 to 200 letters, digits, '_' or '-'")
    return name


def normalize_mount_path(path: str) -> str:
    """'keymgmt' → 'keymgmt/'. Segments of letters, digits, '_', '.', '-'."""
    stripped = path.strip("/")
    segments = stripped.split("/") if stripped else []
    if not segments or any(not MOUNT_SEGMENT_RE.fullmatch(s) or s in (".", "..") for s in segments):
        raise InvalidRequest(
            f"invalid mount path {path!r}: use segments of letters, digits, '_', '.' or '-' separated by '/'")
    if segments[0] in ("sys", "auth", "cubbyhole", "identity"):
        raise InvalidRequest(f"mount path {path!r} is reserved")
    return "/".join(segments) + "/"
