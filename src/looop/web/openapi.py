"""The web API's own description (GET /api/v1/openapi.json), drawn from the routes as they
are declared, so it never lists a route that is not served."""

from __future__ import annotations

from typing import Any

import looop


def openapi_doc(listed: list[tuple[str, str, str]]) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for method, path, summary in listed:
        params = [
            {"name": part[1:-1], "in": "path", "required": True, "schema": {"type": "string"}}
            for part in path.split("/")
            if part.startswith("{")
        ]
        op: dict[str, Any] = {"summary": summary, "responses": {"200": {"description": "ok"}}}
        if params:
            op["parameters"] = params
        if method == "POST":
            op["requestBody"] = {"content": {"application/json": {"schema": {"type": "object"}}}}
        paths.setdefault(f"/api/v1{path}", {})[method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "looop web API", "version": f"1 (looop {looop.__version__})"},
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
