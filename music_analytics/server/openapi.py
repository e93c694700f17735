"""What /openapi.json says beyond FastAPI's own: each pipe's typed parameters (the pipes
parse their query strings themselves) and the token schemes, for /docs' Authorize button."""

from __future__ import annotations

from fastapi import FastAPI

from music_analytics.server.pipes import Pipe


def pipe_parameters(pipe: Pipe) -> dict:
    """The OpenAPI `parameters` of a pipe's route, from its declared parameters."""
    schema_of = {
        "date": {"type": "string", "format": "date"},
        "integer": {"type": "integer"},
        "string": {"type": "string", "maxLength": 200},
    }
    parameters = []
    for param in pipe.params:
        schema = dict(schema_of.get(param.kind, {"type": "string"}))
        if param.kind == "enum":
            schema["enum"] = list(param.choices)
        if param.minimum is not None:
            schema["minimum"] = param.minimum
        if param.maximum is not None:
            schema["maximum"] = param.maximum
        if param.pattern:
            schema["pattern"] = f"^{param.pattern}$"
        if param.default is not None:
            schema["default"] = param.default
        parameters.append(
            {
                "name": param.name,
                "in": "query",
                "required": False,
                "description": param.description,
                "schema": schema,
            }
        )
    return {"parameters": parameters}


def declare_token_auth(app: FastAPI) -> None:
    """OpenAPI names the token scheme, so /docs' Authorize button sends it on every call."""
    plain = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = plain()
            schema.setdefault("components", {})["securitySchemes"] = {
                "bearer": {"type": "http", "scheme": "bearer"},
                "token": {"type": "apiKey", "in": "query", "name": "token"},
            }
            for path, operations in schema["paths"].items():
                if path.startswith("/v0/"):
                    for operation in operations.values():
                        operation["security"] = [{"bearer": []}, {"token": []}]
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi
