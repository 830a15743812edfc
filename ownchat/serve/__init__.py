"""Serve a model privately: OpenAI-compatible API, web chat, local SQLite history.

    from ownchat.serve import create_app, ServeSettings, serve
    serve("smollm2-135m-instruct", port=8000)                 # blocking, like `ownchat serve`
    app = create_app(engine, ServeSettings(model_name="m"))   # a FastAPI app around any engine
"""

from __future__ import annotations

from ownchat.serve.app import ServeSettings, create_app
from ownchat.serve.auth import KeyRing
from ownchat.serve.history import HistoryStore, default_history_db
from ownchat.serve.limits import Limits
from ownchat.serve.server import build_settings, load_serving_engine, serve

__all__ = ["ServeSettings", "create_app", "KeyRing", "HistoryStore", "default_history_db", "Limits",
           "build_settings", "load_serving_engine", "serve"]
