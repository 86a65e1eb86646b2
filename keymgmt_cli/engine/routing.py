"""Paths → handlers, as a table. Adding a resource is adding a row; an unknown path or verb fails
the same way everywhere ("unsupported path", "unsupported operation")."""

from __future__ import annotations

import re

from keymgmt_cli.errors import UnsupportedOperation, UnsupportedPath

TYPE_CHECKING = False  # typing and dataclasses cost milliseconds on the read path
if TYPE_CHECKING:
    from typing import Any, Callable

    from keymgmt_cli.engine.fields import Field

OPERATIONS = ("read", "list", "write", "delete")


class Request:
    """operation: read | list | write | delete; path as typed, mount included."""

    __slots__ = ("operation", "path", "data")

    def __init__(self, operation: str, path: str, data: dict[str, Any] | None = None):
        self.operation, self.path, self.data = operation, path, data if data is not None else {}


class Response:
    __slots__ = ("data", "warnings")

    def __init__(self, data: dict[str, Any] | None = None, warnings: list[str] | None = None):
        self.data, self.warnings = data, warnings if warnings is not None else []


class Operation:
    __slots__ = ("handler", "summary", "fields", "example")

    def __init__(self, handler: Callable[..., Response], summary: str,
                 fields: dict[str, Field] | None = None, example: str = ""):
        self.handler, self.summary, self.fields, self.example = handler, summary, fields or {}, example


class Route:
    """pattern is relative to the mount; its named groups become handler parameters."""

    __slots__ = ("pattern", "synopsis", "operations", "_regex")

    def __init__(self, pattern: str, synopsis: str, operations: dict[str, Operation]):
        self.pattern, self.synopsis, self.operations = pattern, synopsis, operations
        self._regex = re.compile("^" + pattern + "$")

    def regex(self) -> re.Pattern[str]:
        return self._regex


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
