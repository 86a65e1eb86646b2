"""Paths → handlers, as a table. Adding a resource is adding a row; an unknown path or verb fails
the same way everywhere ("unsupported path", "unsupported operation").

A route's pattern is a regex, as in Vault's framework, but the rows of ``paths.py`` use only
literal segments and ``(?P<name>[^/]+)`` captures, and those are matched segment by segment
without ``re`` (the read path does not import it: about half a bare interpreter start-up). Any
other pattern is matched with its regex; ``Route.regex()`` compiles it for the callers that want one
(path-help, completion). tests/engine/test_routing.py checks that both ways agree on every row.
"""

from __future__ import annotations

from keymgmt_cli.errors import UnsupportedOperation, UnsupportedPath

TYPE_CHECKING = False  # typing and dataclasses cost milliseconds on the read path
if TYPE_CHECKING:
    import re
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

    __slots__ = ("pattern", "synopsis", "operations", "_regex", "_segments")

    def __init__(self, pattern: str, synopsis: str, operations: dict[str, Operation]):
        self.pattern, self.synopsis, self.operations = pattern, synopsis, operations
        self._regex: re.Pattern[str] | None = None
        self._segments = segments_of(pattern)

    def regex(self) -> re.Pattern[str]:
        """The pattern compiled, anchored at both ends (on first use: it imports re)."""
        if self._regex is None:
            import re

            self._regex = re.compile("(?:" + self.pattern + r")\Z")  # \Z, not $: "$" also matches before a final newline
        return self._regex

    def match(self, rel_path: str) -> dict[str, str] | None:
        """The captures when ``rel_path`` (relative to the mount) is a path of this route, else None."""
        if self._segments is None:
            found = self.regex().match(rel_path)
            return found.groupdict() if found else None
        parts = rel_path.split("/")
        if len(parts) != len(self._segments):
            return None
        params = {}
        for part, (text, is_capture) in zip(parts, self._segments):
            if is_capture:
                if not part:
                    return None
                params[text] = part
            elif part != text:
                return None
        return params


_CAPTURE_OPEN, _ANY_SEGMENT = "(?P<", "[^/]+)"
_REGEX_SYNTAX = frozenset("\\.^$*+?{}[]|()\0")


def segments_of(pattern: str) -> tuple[tuple[str, bool], ...] | None:
    """``pattern`` as (literal text or capture name, is a capture) per ``/``-separated segment, when
    it is nothing but literal segments and ``(?P<name>[^/]+)`` captures of distinct names; else
    None (``Route.match`` then uses the regex). ``[^/]+`` holds a slash, so it is set aside
    before the split."""
    if "\0" in pattern:
        return None
    segments: list[tuple[str, bool]] = []
    for part in pattern.replace(_ANY_SEGMENT, "\0").split("/"):
        name = part[len(_CAPTURE_OPEN):-2]
        if part.startswith(_CAPTURE_OPEN) and part.endswith(">\0") and name.isidentifier():
            segments.append((name, True))
        elif part and _REGEX_SYNTAX.isdisjoint(part):
            segments.append((part, False))
        else:
            return None
    names = [text for text, is_capture in segments if is_capture]
    return tuple(segments) if len(names) == len(set(names)) else None


def match(routes: list[Route], rel_path: str, operation: str, mount_path: str) -> tuple[Route, Operation, dict[str, str]]:
    if not rel_path.isprintable():  # a newline or other control character is in no path (names match fully)
        raise UnsupportedPath(f"unsupported path: {mount_path}{rel_path}",
                              hint=f"run 'keymgmt path-help {mount_path}' to see the paths of this mount")
    for route in routes:
        params = route.match(rel_path)
        if params is not None:
            op = route.operations.get(operation)
            if op is None:
                allowed = ", ".join(route.operations)
                raise UnsupportedOperation(
                    f"unsupported operation: {operation} on {mount_path}{rel_path} (this path supports: {allowed})")
            return route, op, params
    raise UnsupportedPath(f"unsupported path: {mount_path}{rel_path}",
                          hint=f"run 'keymgmt path-help {mount_path}' to see the paths of this mount")
