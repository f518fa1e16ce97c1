"""The ASGI app of ``stridelab explore`` (Starlette): three pages, their static assets and a JSON
API. Served by uvicorn (see :mod:`stridelab.cli.explore`).

Pages: ``/`` arithmetic, ``/model`` model inspector, ``/study`` study runs. API (all GET, query
parameters named like the page's controls; bad values answer 422 ``{"error", "param"}``, never a
stack trace):

=====================  ===============================================================
``/api/layer``         one conv / pool / transposed layer: sizes, formula, grid, code
``/api/chain``         a chain such as ``c7s2p3,m3s2p1``: sizes, stride, field per layer
``/api/models``        the model names the page may choose
``/api/model``         inspector table, totals, diagnostics, pyramid of ``model-spec``
``/api/unit``          the field of the unit nearest a clicked pixel ``x``, ``y``
``/api/erf``           effective receptive field heatmap (when ``stridelab.effective_field``
                       exists)
``/api/photo.jpg``     the bundled photograph (scikit-learn's ``china.jpg``)
``/api/study``         the runs under ``--runs``; ``/api/study/{run}`` one run
``/runs/{run}/{file}`` a plot or report file of a run
=====================  ===============================================================
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from stridelab.web import arithmetic, models, study
from stridelab.web.params import ParamError

STATIC = Path(__file__).parent / "static"
PAGES = {"/": "arith.html", "/model": "model.html", "/study": "study.html"}
#: Everything the page loads comes from this server (no CDN); dropped photos are blob: URLs.
CSP = ("default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; "
       "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'")

log = logging.getLogger("stridelab.explore")


def _query(request: Request) -> dict[str, str]:
    return {key: value for key, value in request.query_params.items()}


def _page(name: str) -> Callable[[Request], Response]:
    def endpoint(request: Request) -> Response:
        return FileResponse(STATIC / name, media_type="text/html")
    return endpoint


def api_layer(request: Request) -> JSONResponse:
    return JSONResponse(arithmetic.layer_answer(_query(request)))


def api_chain(request: Request) -> JSONResponse:
    return JSONResponse(arithmetic.chain_answer(_query(request)))


def api_models(request: Request) -> JSONResponse:
    source: models.ModelSource = request.app.state.models
    return JSONResponse({"names": source.names(), "default": source.command_line_spec or "resnet18",
                         "effective_field": models.effective_field_available()})


def api_model(request: Request) -> JSONResponse:
    return JSONResponse(models.model_answer(request.app.state.models, _query(request)))


def api_unit(request: Request) -> JSONResponse:
    return JSONResponse(models.unit_answer(request.app.state.models, _query(request)))


def api_erf(request: Request) -> JSONResponse:
    return JSONResponse(models.erf_answer(request.app.state.models, _query(request)))


@lru_cache(maxsize=1)
def _photo_bytes() -> bytes:
    """scikit-learn's sample photograph ``china.jpg`` (a dependency: no download), read from
    its package folder without importing ``sklearn.datasets`` (slow), else decoded by it."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is not None and spec.origin is not None:
        path = Path(spec.origin).parent / "datasets" / "images" / "china.jpg"
        if path.is_file():
            return path.read_bytes()
    from PIL import Image
    from sklearn.datasets import load_sample_image

    buffer = io.BytesIO()
    Image.fromarray(load_sample_image("china.jpg")).save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()


def api_photo(request: Request) -> Response:
    return Response(_photo_bytes(), media_type="image/jpeg",
                    headers={"Cache-Control": "max-age=3600"})


def api_study(request: Request) -> JSONResponse:
    return JSONResponse(study.study_index(request.app.state.study))


def api_run(request: Request) -> JSONResponse:
    return JSONResponse(study.run_answer(request.app.state.study, request.path_params["run"]))


def run_file(request: Request) -> Response:
    path, media_type = request.app.state.study.file(request.path_params["run"],
                                                   request.path_params["file"])
    return FileResponse(path, media_type=media_type)


async def _param_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ParamError)
    return JSONResponse({"error": exc.message, "param": exc.param}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return JSONResponse({"error": exc.detail, "param": None}, status_code=exc.status_code)


async def _server_error(request: Request, exc: Exception) -> Response:
    log.error("explore: %s on %s: %s", type(exc).__name__, request.url.path, exc)
    first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return JSONResponse({"error": f"internal error ({type(exc).__name__}) {first}".strip(),
                         "param": None}, status_code=500)


class SecurityHeaders:
    """Adds the content-security policy (no third-party origin can load) to every response."""

    def __init__(self, app: Callable[..., Awaitable[None]]) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-security-policy", CSP.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


@asynccontextmanager
async def _lifespan(app: Starlette) -> AsyncIterator[None]:
    """Warm torch up in the background while the first page loads (see models.warm_up)."""
    if app.state.warm_up:
        threading.Thread(target=_quiet_warm_up, name="explore-warm-up", daemon=True).start()
    yield


def _quiet_warm_up() -> None:
    try:
        models.warm_up()
    except Exception as err:  # a failed warm-up only costs time later
        log.warning("explore: warm-up failed: %s", err)


def create_app(*, model: str | None = None, runs: str | Path | None = None,
               allowed_hosts: list[str] | None = None, warm_up: bool = True) -> Starlette:
    """The explore app. ``model``: a spec from the command line (may be ``file.py:attr``; the
    page itself only chooses built-in and registry names). ``runs``: a study folder or a folder
    of them. ``allowed_hosts``: Host headers accepted (the CLI passes the loopback names when
    bound to loopback, against DNS rebinding); None accepts any. ``warm_up``: run one small
    capture in the background when the server starts."""
    routes: list[BaseRoute] = [Route(path, _page(name)) for path, name in PAGES.items()]
    routes += [
        Route("/api/layer", api_layer), Route("/api/chain", api_chain),
        Route("/api/models", api_models), Route("/api/model", api_model),
        Route("/api/unit", api_unit), Route("/api/erf", api_erf),
        Route("/api/photo.jpg", api_photo), Route("/api/study", api_study),
        Route("/api/study/{run}", api_run), Route("/runs/{run}/{file}", run_file),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    middleware = [Middleware(SecurityHeaders)]
    if allowed_hosts:
        middleware.insert(0, Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts))
    app = Starlette(routes=routes, middleware=middleware, exception_handlers={
        ParamError: _param_error, HTTPException: _http_error, Exception: _server_error},
        lifespan=_lifespan)
    app.state.warm_up = warm_up
    app.state.models = models.ModelSource(model)
    app.state.study = study.StudyFolder(runs)
    return app
