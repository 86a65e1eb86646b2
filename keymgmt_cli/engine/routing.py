"""Paths → handlers, as a table. Adding a resource is adding a row; an unknown path or verb fails
the same way everywhere ("unsupported path", "unsupported operation")."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from keymgmt_cli.engine.fields import Field
from keymgmt_cli.errors import UnsupportedOperation, UnsupportedPath

OPERATIONS = ("read", "list", "write", "delete")


@dataclass
class Request:
    operation: str  # read | list | write | delete
    path: str  # as typed, mount included: "keymgmt/key/example"
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Response:
    data: dict[str, Any] | None = None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Operation:
    handler: Callable[..., Response]
    summary: str
    fields: dict[str, Field] = field(default_factory=dict)
    example: str = ""


@dataclass(frozen=True)
class Route:
    pattern: str  # relative to the mount; named groups become handler parameters
    synopsis: str
    operations: dict[str, Operation]
    description: str = ""

    def regex(self) -> re.Pattern[str]:
        return re.compile("^" + self.pattern + "$")


def match(routes: list[Route], rel_path: str, operation: str, mount_path: str) -> tuple[Route, Operation, dict[str, str]]:
    for route in routes:
        m = route.regex().match(rel_path)
        if m:
            op = route.operations.get(operation)
            if op is None:
                allowed = ", ".join(route.operations)
                raise UnsupportedOperation(
                    f"unsupported operation: {operation} on {mount_path}{rel_path} (this path supports: {allowed})")
            return route, op, m.groupdict()
    raise UnsupportedPath(f"unsupported path: {mount_path}{rel_path}",
                          hint=f"run 'keymgmt path-help {mount_path}' to see the paths of this mount")
