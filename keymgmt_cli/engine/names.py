"""Name rules. Key names end up in the alias alias/hashicorp/<key_name>-<unix_timestamp>, whose
allowed characters are [a-zA-Z0-9/_-], so names are limited to letters, digits, '_' and '-'.

Names and mount paths are checked against character sets, not regexes: ``read`` checks a key name
and every command resolves a mount, and the read path imports no ``re`` (it costs about half a bare
interpreter start-up). The region pattern, used by the write schemas only, is compiled on first use.
"""

from __future__ import annotations

from keymgmt_cli.errors import InvalidRequest

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
NAME_CHARS = frozenset(_ALNUM + "_-")  # [A-Za-z0-9_-]{1,200}
NAME_MAX = 200
MOUNT_SEGMENT_CHARS = frozenset(_ALNUM + "_.-")  # [A-Za-z0-9_.-]{1,64}
MOUNT_SEGMENT_MAX = 64
# AWS ReplicaRegion / region shape: us-west-1, us-gov-west-1, cn-north-1, eu-central-2
REGION_PATTERN = r"[a-z]{2}(-[a-z]+){1,2}-\d{1,2}"


def _is_name(text: str, chars: frozenset[str], longest: int) -> bool:
    return 0 < len(text) <= longest and chars.issuperset(text)


def check_name(kind: str, name: str) -> str:
    if not _is_name(name, NAME_CHARS, NAME_MAX):
        shown = name if len(name) <= 60 else name[:60] + "..."
        raise InvalidRequest(
            f"invalid {kind} name {shown!r}: use 1 to 200 letters, digits, '_' or '-'")
    return name


def normalize_mount_path(path: str) -> str:
    """'keymgmt' → 'keymgmt/'. Segments of letters, digits, '_', '.', '-'."""
    stripped = path.strip("/")
    segments = stripped.split("/") if stripped else []
    if not segments or any(not _is_name(s, MOUNT_SEGMENT_CHARS, MOUNT_SEGMENT_MAX) or s in (".", "..")
                            for s in segments):
        raise InvalidRequest(
            f"invalid mount path {path!r}: use segments of letters, digits, '_', '.' or '-' separated by '/'")
    if segments[0] in ("sys", "auth", "cubbyhole", "identity"):
        raise InvalidRequest(f"mount path {path!r} is reserved")
    return "/".join(segments) + "/"
