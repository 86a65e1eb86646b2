"""`path-help`: a path's operations and fields, from the same schemas the engine validates with."""

from __future__ import annotations

from typing import Any

from keymgmt_cli.engine.core import Engine
from keymgmt_cli.errors import UnsupportedPath


def _route_doc(route: Any, mount_path: str) -> dict[str, Any]:
    operations = {}
    for verb, op in route.operations.items():
        fields = {}
        for name, field in op.fields.items():
            fields[name] = {"type": field.describe_type(), "description": field.description,
                            "default": field.default, "allowed": list(field.allowed) if field.allowed else None,
                            "required": field.required}
        operations[verb] = {"summary": op.summary, "example": op.example, "fields": fields}
    return {"route": mount_path + _display(route.pattern), "synopsis": route.synopsis, "operations": operations}


def _display(pattern: str) -> str:
    return pattern.replace("(?P<name>[^/]+)", ":name").replace("(?P<key_name>[^/]+)", ":key_name")


def path_help(engine: Engine, path: str) -> dict[str, Any]:
    from keymgmt_cli.engine.paths import ROUTES

    mount, rel = engine.resolve(path)
    if not rel:
        return {"path": mount.path, "synopsis": f"The {mount.type} secrets engine mounted at {mount.path}",
                "paths": [{"route": mount.path + _display(r.pattern), "synopsis": r.synopsis,
                           "operations": list(r.operations)} for r in ROUTES]}
    for route in ROUTES:
        if route.regex().match(rel):
            return {"path": mount.path + rel, **_route_doc(route, mount.path)}
    raise UnsupportedPath(f"unsupported path: {mount.path}{rel}",
                          hint=f"run 'keymgmt path-help {mount.path}' to see the paths of this mount")


def all_write_fields() -> dict[str, dict[str, Any]]:
    """Route pattern → write fields (for the completion scripts' static parts and tests)."""
    from keymgmt_cli.engine.paths import ROUTES

    return {r.pattern: r.operations["write"].fields for r in ROUTES if "write" in r.operations}
