"""``/v1``: the OpenAI routes (chat completions, completions, models) with OpenAI's error bodies.

Request bodies are validated strictly (a string where a number belongs is a 400 naming the field), so
the official client, curl and hand-written scripts get the same clear errors OpenAI would give them.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from ownchat.serve.auth import authenticate
from ownchat.serve.backend import GenParams
from ownchat.serve.disconnect import until_disconnected
from ownchat.serve.limits import LimitError, check_prompt_size

router = APIRouter(prefix="/v1")


def error_body(message: str, type_: str = "invalid_request_error", param: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def error_response(status: int, message: str, type_: str = "invalid_request_error", param: str | None = None,
                   code: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(message, type_, param, code), status_code=status, headers=headers)


# -- request bodies ----------------------------------------------------------------------------------
class _Strict(BaseModel):
    # Unknown fields (user, logit_bias, ...) are ignored as OpenAI-compatible servers do; known ones
    # must have the right type: "0.7" is not a temperature.
    model_config = ConfigDict(extra="ignore", strict=True)


class ContentPart(_Strict):
    type: str
    text: str | None = None


class ChatMessage(_Strict):
    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None


class StreamOptions(_Strict):
    include_usage: bool = False


class _Sampling(_Strict):
    model: str
    temperature: float | None = Field(None, ge=0, le=2)
    top_p: float | None = Field(None, gt=0, le=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    stop: str | list[str] | None = None
    seed: int | None = None
    n: int = Field(1, ge=1)
    stream: bool = False
    stream_options: StreamOptions | None = None


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    echo: bool = False


# -- turning a request into engine inputs ------------------------------------------------------------
def gen_params(req: _Sampling, limits: Any) -> GenParams:
    max_tokens = req.max_completion_tokens or req.max_tokens or min(limits.default_max_tokens, limits.max_tokens)
    if max_tokens > limits.max_tokens:
        raise LimitError(400, f"max_tokens is {max_tokens}; this server allows at most {limits.max_tokens}",
                         code="invalid_value", param="max_tokens")
    if req.n > limits.max_n:
        raise LimitError(400, f"n is {req.n}; this server allows at most {limits.max_n}",
                         code="invalid_value", param="n")
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    if len(stop) > 4:
        raise LimitError(400, "at most 4 stop sequences", code="invalid_value", param="stop")
    return GenParams(temperature=1.0 if req.temperature is None else req.temperature,
                     top_p=1.0 if req.top_p is None else req.top_p, max_tokens=max_tokens,
                     stop=[s for s in stop if s], seed=req.seed, n=req.n)


def chat_messages(req: ChatCompletionRequest) -> list[dict[str, str]]:
    out = []
    for i, m in enumerate(req.messages):
        if m.role in ("tool", "function"):
            raise LimitError(400, "tool and function messages are not supported by this server",
                             code="unsupported_value", param=f"messages[{i}].role")
        if isinstance(m.content, list):
            if any(p.type != "text" for p in m.content):
                raise LimitError(400, "this model reads text only: send content parts of type 'text'",
                                 code="unsupported_value", param=f"messages[{i}].content")
            content = "".join(p.text or "" for p in m.content)
        else:
            content = m.content or ""
        out.append({"role": "system" if m.role == "developer" else m.role, "content": content})
    return out


def check_model(request: Request, name: str) -> None:
    served = request.app.state.model_names
    if name not in served:
        raise LimitError(404, f"The model '{name}' does not exist on this server; it serves "
                              f"'{served[0]}' (GET /v1/models lists it)", code="model_not_found", param="model")


# -- streaming -----------------------------------------------------------------------------------------
def sse(obj: Any) -> str:
    return f"data: {json.dumps(obj, ensure_ascii=False, separators=(',', ':'))}\n\n"


async def open_stream(request: Request, messages: list[dict] | None, prompt: str | None, p: GenParams,
                      include_usage: bool, on_chunk: Any = None, on_end: Any = None) -> StreamingResponse:
    """Queue for a slot and wait for the first chunk *before* answering 200.

    Errors the engine finds at once (prompt over the context window) thus still arrive as a 4xx with
    an error body; errors later in the stream arrive as an ``error`` event, then the stream ends.
    A client that leaves while queued or while its prompt is read stops the work right there.
    """
    state = request.app.state
    ticket = state.admission.enter(p.n)
    agen = state.backend.stream(messages, prompt, p, ticket)
    try:
        first = await until_disconnected(request, anext(agen, None))
    except BaseException:
        await agen.aclose()
        ticket.close_unstarted()
        raise

    async def body() -> AsyncIterator[str]:
        finish: str | None = None
        try:
            chunk: dict | None = first
            while chunk is not None:
                if on_chunk is not None:
                    on_chunk(chunk)
                for c in chunk.get("choices", ()):
                    finish = c.get("finish_reason") or finish
                if chunk.get("choices") or include_usage:
                    yield sse(chunk)
                chunk = await anext(agen, None)
            yield "data: [DONE]\n\n"
        except LimitError as exc:
            finish = "error"
            yield sse(error_body(exc.message, exc.type, exc.param, exc.code))
        finally:
            await agen.aclose()
            if on_end is not None:
                on_end(finish)

    return StreamingResponse(body(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})


async def run_request(request: Request, messages: list[dict] | None, prompt: str | None, p: GenParams,
                      stream: bool, include_usage: bool) -> Any:
    state = request.app.state
    check_prompt_size(state.limits, messages, prompt, state.count_tokens)
    if stream:
        return await open_stream(request, messages, prompt, p, include_usage)
    ticket = state.admission.enter(p.n)
    try:
        return await until_disconnected(request, state.backend.complete(messages, prompt, p, ticket))
    finally:
        ticket.close_unstarted()


# -- routes --------------------------------------------------------------------------------------------
@router.get("/models")
async def list_models(request: Request, owner: str = Depends(authenticate)) -> dict[str, Any]:
    return {"object": "list", "data": [_model_card(request)]}


@router.get("/models/{model_id:path}")
async def get_model(model_id: str, request: Request, owner: str = Depends(authenticate)) -> dict[str, Any]:
    check_model(request, model_id)
    return _model_card(request)


def _model_card(request: Request) -> dict[str, Any]:
    st = request.app.state
    return {"id": st.model_names[0], "object": "model", "created": st.backend.created, "owned_by": "ownchat",
            "license": st.license}


@router.post("/chat/completions")
async def chat_completions(body: ChatCompletionRequest, request: Request, owner: str = Depends(authenticate)) -> Any:
    check_model(request, body.model)
    p = gen_params(body, request.app.state.limits)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return await run_request(request, chat_messages(body), None, p, body.stream, include_usage)


@router.post("/completions")
async def completions(body: CompletionRequest, request: Request, owner: str = Depends(authenticate)) -> Any:
    check_model(request, body.model)
    if body.echo:
        raise LimitError(400, "echo is not supported by this server", code="unsupported_value", param="echo")
    prompt = body.prompt
    if isinstance(prompt, list):
        if len(prompt) != 1:
            raise LimitError(400, "send one prompt per request (a list of exactly one string)",
                             code="unsupported_value", param="prompt")
        prompt = prompt[0]
    p = gen_params(body, request.app.state.limits)
    include_usage = bool(body.stream_options and body.stream_options.include_usage)
    return await run_request(request, None, prompt, p, body.stream, include_usage)
