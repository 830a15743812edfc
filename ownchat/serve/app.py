"""``create_app(engine, settings)``: the FastAPI application behind ``ownchat serve``.

Routes: ``/v1`` (OpenAI API), ``/api`` (web chat and history), ``/`` (the web chat itself, served from
package files: the page loads nothing from any other host, and its Content-Security-Policy says so).
In front of all of them: the Host check and security headers (``guards``) and the body limits.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from ownchat.engines.base import Engine
from ownchat.serve import openai_api, web_api
from ownchat.serve.auth import KeyRing
from ownchat.serve.backend import Backend
from ownchat.serve.disconnect import ClientGone
from ownchat.serve.guards import CSP, HostCheck, host_policy
from ownchat.serve.history import HistoryStore
from ownchat.serve.limits import Admission, BodySizeLimit, LimitError, Limits
from ownchat.serve.openai_api import error_response

WEB_DIR = Path(__file__).parent / "web"
log = logging.getLogger("ownchat.serve")


@dataclass
class ServeSettings:
    model_name: str = "model"
    #: other names clients may send as ``model`` (e.g. the reference the user typed)
    aliases: tuple[str, ...] = ()
    license: str | None = None
    history: bool = True
    history_path: str | Path | None = None  # None: ``ownchat.paths.home()/history.sqlite``
    keys: KeyRing = field(default_factory=KeyRing)
    limits: Limits = field(default_factory=Limits)
    #: the address the server listens on, and other names it answers to (the Host check)
    host: str = "127.0.0.1"
    allowed_hosts: tuple[str, ...] = ()


def token_counter(engine: Engine) -> Any:
    """A ``text -> n_tokens`` function when the engine has a tokenizer at hand (transformers does)."""
    fn = getattr(engine, "count_tokens", None)
    if callable(fn):
        return fn
    tok = getattr(engine, "tokenizer", None)
    if tok is not None and callable(tok):
        return lambda text: len(tok(text)["input_ids"])
    return None


def create_app(engine: Engine, settings: ServeSettings | None = None) -> FastAPI:
    settings = settings or ServeSettings()
    # One key cannot learn another's prompts through the prompt cache when the cache is not shared.
    backend = Backend(engine, settings.model_name, isolate_cache=len(settings.keys) > 1)
    history = HistoryStore(settings.history_path) if settings.history else None
    if history is not None:
        for old, new in settings.keys.owner_renames():  # histories kept under unsalted ids
            history.rename_owner(old, new)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        backend.close()
        if history is not None:
            history.close()

    app = FastAPI(title="ownchat", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    st = app.state
    st.backend, st.history, st.keys, st.limits = backend, history, settings.keys, settings.limits
    st.model_names = [settings.model_name, *[a for a in settings.aliases if a != settings.model_name]]
    st.license = settings.license or getattr(engine, "license", None) or "unknown"
    st.admission = Admission(backend.slots, settings.limits.queue_size)
    st.count_tokens = token_counter(engine)

    app.include_router(openai_api.router)
    app.include_router(web_api.public)
    app.include_router(web_api.router)
    _add_error_handlers(app)
    _add_pages(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.limits.max_body_bytes)
    app.add_middleware(HostCheck, policy=host_policy(settings.host, settings.allowed_hosts))  # outermost
    return app


def _add_pages(app: FastAPI) -> None:
    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(WEB_DIR / "index.html", headers={
            "Content-Security-Policy": CSP, "Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})

    @app.get("/healthz", include_in_schema=False)
    async def healthz(request: Request) -> dict[str, Any]:
        st = request.app.state
        # generating: engine calls running; engine_busy: requests the engine itself holds (llama.cpp)
        busy = await asyncio.to_thread(st.backend.engine_busy)
        return {"ok": True, "in_flight": st.admission.inside, "capacity": st.admission.capacity,
                "generating": st.backend.generating, "engine_busy": busy}

    app.mount("/static", StaticFiles(directory=WEB_DIR), name="static")


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(LimitError)
    async def on_limit(request: Request, exc: LimitError) -> JSONResponse:
        headers = {"Retry-After": "1"} if exc.status == 429 else None
        if exc.status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        return error_response(exc.status, exc.message, exc.type, exc.param, exc.code, headers)

    @app.exception_handler(ClientGone)
    async def on_gone(request: Request, exc: ClientGone) -> Response:
        return Response(status_code=499)  # nobody reads it: the client closed the connection

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"msg": "invalid request", "loc": ()}
        loc = [str(x) for x in first.get("loc", ()) if x != "body"]
        if first.get("type") == "json_invalid":
            return error_response(400, f"request body is not valid JSON ({first.get('msg')})",
                                  code="invalid_json")
        if first.get("type") == "missing" and not loc:
            return error_response(400, "request body is missing: send a JSON object", code="invalid_json")
        param = ".".join(loc) or None
        more = f" (and {len(errors) - 1} more problems)" if len(errors) > 1 else ""
        msg = f"{param}: {first.get('msg')}{more}" if param else f"{first.get('msg')}{more}"
        return error_response(400, msg, param=param, code="invalid_value")

    @app.exception_handler(StarletteHTTPException)
    async def on_http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "invalid_request_error" if exc.status_code < 500 else "server_error"
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404:
            detail = f"no route {request.method} {request.url.path}"
        return error_response(exc.status_code, detail, kind, code=str(exc.status_code))

    @app.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, f"internal error ({type(exc).__name__}); the server keeps running",
                              "server_error", code="internal_error")
