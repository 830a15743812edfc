"""Stop work the moment its client is gone, at every stage: queued, reading the prompt, generating.

Starlette notices a disconnect only while it streams a response body. Before that, a request is
waiting for a slot or for its first token (a long prompt takes seconds), and a non-streaming
request waits for the whole reply; an abandoned request would keep its slot the whole time, and
OpenAI clients retry on timeout, which multiplies it. ``until_disconnected`` runs such a wait
beside a watcher of the ASGI ``receive`` channel and cancels the wait when the client leaves; the
backend turns the cancellation into a stop at llama.cpp's next callback.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable
from typing import Any, TypeVar

from fastapi import Request

T = TypeVar("T")


class ClientGone(Exception):
    """The client closed the connection before its answer was ready (logged as 499, sent nowhere)."""


async def _disconnected(receive: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return


async def until_disconnected(request: Request, work: Awaitable[T]) -> T:
    """``await work``, unless the client disconnects first: then cancel it and raise ClientGone.

    Only for waits before a response starts: the request body has been read by then, so the next
    ASGI message can only be the disconnect.
    """
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request.receive))
    try:
        await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task  # let the work's own clean-up run (queue places, engine stop flags)
        raise ClientGone()
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
