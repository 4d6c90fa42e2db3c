"""The native API's OpenAPI 3 schema (served at /v1/llm/openapi.json, browsable at /v1/llm/docs).

drf-spectacular documents the DRF views (chat CRUD, usage); the async views are added by the
`add_async_operations` postprocessing hook (SPECTACULAR_SETTINGS['POSTPROCESSING_HOOKS']) from
the hand-written path items in each app's `openapi_paths` module (see llm/openapi_paths.py).
Only routes mounted under /v1/llm/ are described: the root URLconf's include of that prefix,
looked up at run time (the roof imports llm, never the reverse).
"""

import importlib
from functools import lru_cache

from django.apps import apps
from django.urls import get_resolver
from drf_spectacular.extensions import OpenApiAuthenticationExtension

NATIVE_PREFIX = "v1/llm/"
SECURITY_SCHEMES = {
    "ApiKeyAuth": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "BearerAuth": {"type": "http", "scheme": "bearer", "description": "Authorization: Bearer gpuniq_..."},
}


class APIKeyScheme(OpenApiAuthenticationExtension):
    """accounts.drf.APIKeyAuthentication: X-API-Key or Authorization: Bearer, either one."""

    target_class = "accounts.drf.APIKeyAuthentication"
    name = list(SECURITY_SCHEMES)

    def get_security_definition(self, auto_schema):
        return list(SECURITY_SCHEMES.values())

    def get_security_requirement(self, auto_schema):
        return [{name: []} for name in SECURITY_SCHEMES]


def _documented_modules():
    for config in apps.get_app_configs():
        try:
            yield importlib.import_module(f"{config.name}.openapi_paths")
        except ModuleNotFoundError as missing:
            if missing.name != f"{config.name}.openapi_paths":
                raise


def add_async_operations(result, generator, request, public):
    """Postprocessing hook: merge the hand-written path items and their component schemas."""
    paths = result.setdefault("paths", {})
    components = result.setdefault("components", {})
    for module in _documented_modules():
        for path, item in getattr(module, "PATHS", {}).items():
            paths.setdefault(path, {}).update(item)
        components.setdefault("schemas", {}).update(getattr(module, "SCHEMAS", {}))
    components.setdefault("securitySchemes", {}).update(SECURITY_SCHEMES)
    for item in paths.values():
        for operation in item.values():
            _add_error_responses(operation)
    result["paths"] = dict(sorted(paths.items()))
    return result


def _add_error_responses(operation: dict) -> None:
    """The catalog errors every keyed operation can answer with, for views that do not list them."""
    if not operation.get("security"):
        return
    codes = {"401": "Missing or invalid API key", "429": "Rate limited"}
    if operation.get("requestBody") or operation.get("parameters"):
        codes["400"] = "Invalid request"
    if any(p.get("in") == "path" for p in operation.get("parameters", ())):
        codes["404"] = "Not found"
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorEnvelope"}}}
    for status, description in codes.items():
        operation["responses"].setdefault(status, {"description": description, "content": error})


def native_patterns() -> list:
    """The root URLconf's /v1/llm/ include, looked up when the schema is built: every app's native
    routes as the roof wired them, without llm importing the roof."""
    return [p for p in get_resolver().url_patterns if str(p.pattern) == NATIVE_PREFIX]


@lru_cache(maxsize=1)
def schema() -> dict:
    """The schema, built once per process (routes and views do not change while it runs)."""
    from drf_spectacular.generators import SchemaGenerator

    generator = SchemaGenerator(patterns=native_patterns())
    return generator.get_schema(request=None, public=True)


def operations(spec: dict) -> list[dict]:
    """Flat list of operations for the HTML page."""
    out = []
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                out.append(
                    {
                        "method": method.upper(),
                        "path": path,
                        "summary": operation.get("summary", ""),
                        "description": operation.get("description", ""),
                        "tags": operation.get("tags", []),
                        "auth": bool(operation.get("security")),
                        "parameters": operation.get("parameters", []),
                        "request": operation.get("requestBody"),
                        "responses": operation.get("responses", {}),
                    }
                )
    return out
