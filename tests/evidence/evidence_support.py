"""Helpers of the evidence tests: a file trail with known keys, records appended through it, and
the line-level edits an attacker makes."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from keymgmt_cli.audit import chain, records
from keymgmt_cli.audit.filetrail import FileTrail
from keymgmt_cli.audit.keys import AuditKeys


def trail(directory: Path, master: bytes | None = None, **kwargs: Any) -> FileTrail:
    return FileTrail(directory, AuditKeys(master or b"m" * 32), **kwargs)


def append_commands(t: FileTrail, count: int, *, secret: str = "s3cr3t-value") -> None:
    """``count`` commands: a request and its response each."""
    for i in range(count):
        with t.transaction() as tx:
            req = tx.append(records.request_record("write", f"keymgmt/key/k{i}",
                                                   {"type": "aes256-gcm96", "credentials": secret}, t.keys))
        with t.transaction() as tx:
            tx.append(records.response_record(req, keys=t.keys))


def verify(t: FileTrail) -> tuple[int, Any]:
    return chain.verify(t.records(), t.head(), t.keys)


def segment_lines(t: FileTrail, name: str | None = None) -> tuple[Path, list[bytes]]:
    path = t.directory / (name or t.segments()[-1])
    return path, path.read_bytes().splitlines(keepends=True)


def rewrite(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"".join(lines))
    os.chmod(path, 0o600)


def edit_line(line: bytes, change: Any) -> bytes:
    record = json.loads(line)
    change(record)
    return (json.dumps(record, sort_keys=True) + "\n").encode()
