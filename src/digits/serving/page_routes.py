"""The routes of the drawing page: `GET /` (the page) and `/page/...` (its scripts and styles,
some shared with the page `digits.export format=web` writes)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from digits.exported.web import SHARED_FILES, WEB_PAGE

PAGE = Path(__file__).parent / "page"


def page_routes() -> APIRouter:
    """The page and its files; none of them in /openapi.json."""
    router = APIRouter(include_in_schema=False)

    @router.get("/")
    def page() -> FileResponse:
        return FileResponse(PAGE / "index.html")

    for name in SHARED_FILES:  # the drawing pad and the look, shared with the exported page
        router.add_api_route(f"/page/{name}", shared_file(WEB_PAGE / name))
    router.mount("/page", StaticFiles(directory=PAGE), name="page")
    return router


def shared_file(path: Path) -> Callable[[], FileResponse]:
    def answer() -> FileResponse:
        return FileResponse(path)

    return answer
