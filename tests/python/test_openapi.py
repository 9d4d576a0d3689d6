"""`/openapi.json` is a valid OpenAPI document (checked by an independent validator, not by the
code that generates it), public, and describes the routes clients use; `/docs` renders it."""

from __future__ import annotations

import requests
from openapi_spec_validator import validate

HTTP_TIMEOUT_S = 10


def test_openapi_document_validates_and_covers_the_clients_routes(gateway):
    r = requests.get(f"{gateway.url}/openapi.json", timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200, r.text
    doc = r.json()
    validate(doc)  # raises on any schema violation
    paths = doc["paths"]
    for path, method in [
        ("/v1/chat/completions", "post"),
        ("/v1/embeddings", "post"),
        ("/v1/models", "get"),
        ("/key/generate", "post"),
        ("/spend/logs", "get"),
        ("/health/liveliness", "get"),
    ]:
        assert method in paths.get(path, {}), f"{method} {path} is not described"


def test_docs_page_is_self_contained(gateway):
    r = requests.get(f"{gateway.url}/docs", timeout=HTTP_TIMEOUT_S)
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "openapi.json" in r.text
    assert "http://" not in r.text and "https://" not in r.text
