"""The API documentation at ``/docs``: Swagger UI served from this origin, never from a CDN.

The API's origin holds operator tokens in the dashboard's session storage, so no script from
elsewhere may run on it. Swagger UI's assets come from the ``fastapi-offline`` package, the page
and its start-up script from ``static/`` (no inline script), under a self-only policy.
``CRUCIBLE_DOCS_ENABLED=false`` turns the page off; ``/openapi.json`` stays.
"""

from __future__ import annotations

from importlib import resources

from fastapi import APIRouter, HTTPException, status
from fastapi.responses import Response

from crucible_ray.api.deps import ServicesDep

router = APIRouter(include_in_schema=False)
STATIC = resources.files("crucible_ray.api") / "static"
SWAGGER = resources.files("fastapi_offline") / "static"
ASSETS = {  # name: (where, media type)
    "swagger-ui-bundle.js": (SWAGGER, "text/javascript"),
    "swagger-ui.css": (SWAGGER, "text/css"),
    "docs.js": (STATIC, "text/javascript"),
}
# Pages (docs, dashboard): their own files only; Swagger UI draws its icons from data: URIs.
PAGE_CSP = ("default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; "
            "form-action 'none'; frame-ancestors 'none'")  # fmt: skip
API_CSP = "default-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
HEADERS = {"Content-Security-Policy": PAGE_CSP, "Cache-Control": "no-cache"}


def _enabled(svc: ServicesDep) -> None:
    if not svc.settings.docs_enabled:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the documentation page is turned off")


@router.get("/docs", response_class=Response)
async def docs_page(svc: ServicesDep) -> Response:
    _enabled(svc)
    return Response((STATIC / "docs.html").read_text(), media_type="text/html", headers=HEADERS)


@router.get("/docs/assets/{name}", response_class=Response)
async def docs_asset(name: str, svc: ServicesDep) -> Response:
    _enabled(svc)
    if name not in ASSETS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "no such file")
    where, media_type = ASSETS[name]
    return Response((where / name).read_bytes(), media_type=media_type, headers=HEADERS)
