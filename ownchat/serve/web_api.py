"""``/api``: what the web chat needs beyond ``/v1``: server info and the conversation history.

Replies to a saved conversation are generated here, not in the browser: the server appends the user
turn, streams the answer (the same OpenAI chunks as ``/v1``) and stores whatever was generated when
the stream ends, including a reply cut short by the stop button.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ownchat.licensing import lookup
from ownchat.serve.auth import authenticate
from ownchat.serve.backend import GenParams
from ownchat.serve.limits import LimitError, check_prompt_size
from ownchat.serve.openai_api import open_stream

router = APIRouter(prefix="/api", dependencies=[Depends(authenticate)])
public = APIRouter(prefix="/api")  # what the page needs before it has a key


class Settings(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    temperature: float = Field(0.7, ge=0, le=2)
    top_p: float = Field(1.0, gt=0, le=1)
    max_tokens: int = Field(512, ge=1)
    seed: int | None = None


class NewConversation(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    title: str = Field("New chat", max_length=200)
    system_prompt: str = ""
    settings: Settings = Field(default_factory=Settings)


class ConversationPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    title: str | None = Field(None, min_length=1, max_length=200)
    system_prompt: str | None = None
    settings: Settings | None = None


class UserTurn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    content: str = Field(min_length=1)
    settings: Settings | None = None


class StatelessChat(BaseModel):
    """``--no-history``: the page keeps the conversation and sends all of it each turn."""

    model_config = ConfigDict(extra="forbid", strict=True)
    messages: list[dict[str, str]] = Field(min_length=1)
    settings: Settings = Field(default_factory=Settings)


def _store(request: Request) -> Any:
    store = request.app.state.history
    if store is None:
        raise LimitError(404, "history is off on this server (--no-history): nothing is stored",
                         code="history_disabled")
    return store


def _missing(cid: str) -> LimitError:
    return LimitError(404, f"no conversation {cid}", code="not_found")


def _params(s: Settings, limits: Any) -> GenParams:
    if s.max_tokens > limits.max_tokens:
        raise LimitError(400, f"max_tokens is {s.max_tokens}; this server allows at most {limits.max_tokens}",
                         code="invalid_value", param="max_tokens")
    return GenParams(temperature=s.temperature, top_p=s.top_p, max_tokens=s.max_tokens, seed=s.seed)


@public.get("/info")
async def info(request: Request) -> dict[str, Any]:
    st = request.app.state
    terms = lookup(st.license)
    return {"model": st.model_names[0], "license": st.license, "license_name": terms.name,
            "license_note": terms.note, "license_url": terms.url, "commercial": terms.commercial,
            "history": st.history is not None, "auth": st.keys.enabled, "limits": st.limits.to_dict()}


@router.get("/whoami")
async def whoami(request: Request) -> dict[str, Any]:
    return {"ok": True}  # reaching here means the key (if any) was accepted


@router.get("/conversations")
async def list_conversations(request: Request) -> list[dict[str, Any]]:
    return _store(request).list(request.state.owner)


@router.post("/conversations", status_code=201)
async def create_conversation(body: NewConversation, request: Request) -> dict[str, Any]:
    return _store(request).create(request.state.owner, body.title, body.system_prompt,
                                  body.settings.model_dump(), model=request.app.state.model_names[0],
                                  license=request.app.state.license)


@router.get("/conversations/{cid}")
async def get_conversation(cid: str, request: Request) -> dict[str, Any]:
    conv = _store(request).get(request.state.owner, cid, messages=True)
    if conv is None:
        raise _missing(cid)
    return conv


@router.patch("/conversations/{cid}")
async def patch_conversation(cid: str, body: ConversationPatch, request: Request) -> dict[str, Any]:
    conv = _store(request).update(request.state.owner, cid, title=body.title, system_prompt=body.system_prompt,
                                  settings=body.settings.model_dump() if body.settings else None)
    if conv is None:
        raise _missing(cid)
    return conv


@router.delete("/conversations/{cid}", status_code=204)
async def delete_conversation(cid: str, request: Request) -> Response:
    if not _store(request).delete(request.state.owner, cid):
        raise _missing(cid)
    return Response(status_code=204)


@router.get("/conversations/{cid}/export")
async def export_conversation(cid: str, request: Request) -> JSONResponse:
    rec = _store(request).export_sharegpt(request.state.owner, cid)
    if rec is None:
        raise _missing(cid)
    return JSONResponse([rec], headers={"Content-Disposition": f'attachment; filename="chat-{cid[:8]}.json"'})


@router.post("/conversations/{cid}/messages")
async def reply(cid: str, body: UserTurn, request: Request) -> Any:
    """Store the user's turn, stream the model's reply, store the reply when the stream ends."""
    store, owner, st = _store(request), request.state.owner, request.app.state
    conv = store.get(owner, cid, messages=True)
    if conv is None:
        raise _missing(cid)
    settings = body.settings or Settings(**conv["settings"])
    p = _params(settings, st.limits)
    messages = [{"role": "system", "content": conv["system_prompt"]}] if conv["system_prompt"] else []
    messages += [{"role": m["role"], "content": m["content"]} for m in conv["messages"]]
    messages.append({"role": "user", "content": body.content})
    check_prompt_size(st.limits, messages, None, st.count_tokens)
    parts: list[str] = []

    def collect(chunk: dict) -> None:
        for c in chunk.get("choices", ()):
            parts.append(c.get("delta", {}).get("content") or "")

    def save(finish: str | None) -> None:
        # Runs when the stream ends for any reason; a stopped reply is kept as far as it got.
        if parts or finish not in (None, "error"):
            store.add_message(owner, cid, "assistant", "".join(parts), meta={"finish_reason": finish or "cancelled"})

    response = await open_stream(request, messages, None, p, include_usage=True, on_chunk=collect, on_end=save)
    # Saved only once the reply has started: a refused request (429, too long) leaves no orphan turn.
    store.add_message(owner, cid, "user", body.content)
    if not conv["messages"] and conv["title"] == "New chat":
        store.update(owner, cid, title=_title(body.content))
    return response


@router.post("/chat")
async def stateless_chat(body: StatelessChat, request: Request) -> Any:
    st = request.app.state
    for i, m in enumerate(body.messages):
        if set(m) != {"role", "content"} or m["role"] not in ("system", "user", "assistant"):
            raise LimitError(400, "each message is {role: system|user|assistant, content}",
                             code="invalid_value", param=f"messages[{i}]")
    check_prompt_size(st.limits, body.messages, None, st.count_tokens)
    return await open_stream(request, body.messages, None, _params(body.settings, st.limits),
                             include_usage=True)


def _title(text: str) -> str:
    line = " ".join(text.split())
    return line[:60] + ("…" if len(line) > 60 else "")
