"""GET /v1/llm/openapi.json (the native API's OpenAPI 3 schema) and GET /v1/llm/docs (a plain,
server-rendered reference built from it: no JavaScript, no CDN). Public: no key needed."""

import json

from django.shortcuts import render
from django.views.decorators.http import require_GET

from gpuniq_site.responses import json_response

from .. import openapi


@require_GET
def openapi_json(request):
    return json_response(openapi.schema())


def _pretty(value) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


@require_GET
def api_docs(request):
    spec = openapi.schema()
    operations = openapi.operations(spec)
    for operation in operations:
        operation["request_json"] = _pretty(operation["request"]) if operation["request"] else ""
        operation["responses_list"] = [
            {
                "status": status,
                "description": r.get("description", ""),
                "schema": _pretty((r.get("content") or {}).get("application/json", {}).get("schema", {})),
            }
            for status, r in operation["responses"].items()
        ]
    schemas = [
        {"name": name, "json": _pretty(value)}
        for name, value in sorted(spec.get("components", {}).get("schemas", {}).items())
    ]
    return render(
        request,
        "llm/api_docs.html",
        {"info": spec.get("info", {}), "operations": operations, "schemas": schemas},
    )
