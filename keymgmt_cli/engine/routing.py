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
    """A verb on a path. ``handler`` and ``fields`` are (loader, attribute) pairs: the loader is a
    function of the route table that imports the module, so a read imports only the module that
    serves it, and every import stays a plain import statement in ``paths.py`` (no module is named
    by a string, so the import graph can be read from the source)."""

    __slots__ = ("_handler", "summary", "_fields", "example")

    def __init__(self, handler: tuple[Callable[[], Any], str], summary: str,
                 fields: tuple[Callable[[], Any], str] | None = None, example: str = ""):
        self._handler, self.summary, self._fields, self.example = handler, summary, fields, example

    @property
    def handler(self) -> Callable[..., Response]:
        load, attr = self._handler
        return getattr(load(), attr)

    @property
    def fields(self) -> dict[str, Field]:
        if self._fields is None:
            return {}
        load, attr = self._fields
        return getattr(load(), attr)


class Route:
    """pattern is relative to the mount; its named groups become handler parameters."""

    __slots__ = ("pattern", "synopsis", "operations", "_regex")

    def __init__(self, pattern: str, synopsis: str, operations: dict[str, Operation]):
        self.pattern, self.synopsis, self.operations = pattern, synopsis, operations
        self._regex: re.Pattern[str] | None = None

    def regex(self) -> re.Pattern[str]:
        """Compiled on first use: a read matches the first few routes only, and compiling all of
        them cost every start-up a millisecond or two."""
        if self._regex is None:
            self._regex = re.compile("(?:" + self.pattern + r")\Z")  # \Z, not $: "$" also matches before a final newline
        return self._regex


def match(routes: list[Route], rel_path: str, operation: str, mount_path: str) -> tuple[Route, Operation, dict[str, str]]:
    if not rel_path.isprintable():  # a newline or other control character is in no path (names match fully)
        raise UnsupportedPath(f"unsupported path: {mount_path}{rel_path}",
                              hint=f"run 'keymgmt path-help {mount_path}' to see the paths of this mount")
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
