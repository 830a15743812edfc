"""llama.cpp in-process through xllamacpp: GGUF files, parallel slots, optional LoRA adapter.

Several Python threads may call the server at once; xllamacpp batches them across its slots, so
``generate_many`` (threads from the base class) is all the batching we need.

xllamacpp's ``Server`` always starts llama.cpp's own HTTP listener (there is no switch to turn it
off), and by default that is a keyless TCP port on loopback: any local process could use the model
past ``ownchat serve``'s keys, limits and queue, and read the GGUF path from ``/props``. We bind it
to a unix socket in a private (0700) temporary directory instead, give it a random API key nobody
knows, switch its web UI and ``/slots`` / ``/props`` off, and unlink the socket once the model has
loaded. What remains is one nameless AF_UNIX listening socket inside this process: no path leads to
it, so no other process can connect (and the key would stop it if one could).
"""

from __future__ import annotations

import os
import queue
import secrets
import shutil
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ownchat.engines.base import ChatRequest, Completion, Engine, EngineError
from ownchat.engines.logprobs import TOP_K, ChoiceLogprobs, from_openai_response, from_top_list
from ownchat.engines.templates import TEMPLATES, template_text, turn_ends
from ownchat.models.gguf_meta import gguf_string
from ownchat.models.identity import file_identity, text_identity

N_BATCH = 256


def _private_listener(p: Any) -> str:
    """Point llama.cpp's unavoidable HTTP listener at a private unix socket; returns its directory."""
    base = tempfile.gettempdir()
    if len(base) > 60:  # unix socket paths are limited to ~107 bytes
        base = "/tmp"
    sock_dir = tempfile.mkdtemp(prefix="ownchat-llama-", dir=base)  # mode 0700
    sock = os.path.join(sock_dir, "http.sock")  # a name ending in .sock makes llama.cpp use AF_UNIX
    if hasattr(p, "hostnames"):
        p.hostnames = [sock]
    else:  # older xllamacpp releases have a single hostname
        p.hostname = sock
    p.api_keys = [secrets.token_urlsafe(32)]  # never stored, never shown
    p.ui = False
    p.endpoint_slots = False
    p.endpoint_props = False
    p.endpoint_metrics = True  # read in-process by busy_slots(); the HTTP side is unreachable
    p.n_threads_http = 1
    return sock_dir


class LlamaCppEngine(Engine):
    name = "llamacpp"

    def __init__(self, gguf: str | Path, *, n_parallel: int = 4, n_ctx_per_slot: int = 4096,
                 n_threads: int | None = None, lora: str | Path | None = None, lora_scale: float = 1.0,
                 chat_template: str | None = None, model_name: str | None = None, verbose: bool = False,
                 n_batch: int = N_BATCH) -> None:
        from xllamacpp import CommonAdapterLoraInfo, CommonParams, Server

        self.path = Path(gguf)
        if not self.path.exists():
            raise EngineError(f"GGUF file not found: {self.path}")
        threads = n_threads or max(1, os.cpu_count() or 1)
        p = CommonParams()
        p.model.path = str(self.path)
        p.n_parallel = n_parallel
        p.n_ctx = n_ctx_per_slot * n_parallel  # llama.cpp splits n_ctx evenly across slots
        p.cpuparams.n_threads = threads
        p.cpuparams_batch.n_threads = threads
        p.cache_prompt = True
        # Streaming callbacks (the only way to stop a request) fire between prompt batches when a
        # request asks for progress: a smaller batch lets an abandoned prompt stop sooner. Measured on
        # 2 cores, 256 vs llama.cpp's 2048 changed prompt tokens/s by less than the run-to-run noise.
        p.n_batch = n_batch
        if not verbose:
            p.verbosity = -1
        jinja = template_text(chat_template) if chat_template else None
        if jinja:
            # The Jinja text, never the name: llama.cpp runs in Jinja mode, where a name is rendered as a
            # literal template ("gemma" became a 3-token prompt); only "chatml" is special-cased there.
            p.chat_template = jinja
        if lora:
            info = CommonAdapterLoraInfo()
            info.path = str(lora)
            info.scale = lora_scale
            p.lora_adapters = [info]
        sock_dir = _private_listener(p)
        try:
            self._server = Server(p)
        finally:
            shutil.rmtree(sock_dir, ignore_errors=True)  # unlinks the socket: nothing can reach it now
        self.max_concurrency = n_parallel
        self.n_ctx_per_slot = n_ctx_per_slot
        self.model_name = model_name or self.path.stem
        ident = file_identity(self.path)
        if lora:
            ident += "+lora:" + file_identity(Path(lora)) + f"@{lora_scale}"
        if jinja:  # the text llama.cpp renders, so answers rendered another way are never replayed
            ident += f"+tpl:{chat_template if chat_template in TEMPLATES else 'custom'}:{text_identity(jinja)}"
        # A base model taught a template keeps its own EOS: llama.cpp stops at the template's turn-end
        # marker only when asked (for gemma-3-270m taught ChatML, "<|im_end|>" is seven ordinary tokens),
        # whether the template comes from the caller or from the GGUF (an exported tuned model).
        if jinja:
            self.turn_ends = turn_ends(jinja)
            ident += "+stops:" + ",".join(self.turn_ends) if self.turn_ends else ""
        else:
            self.turn_ends = turn_ends(gguf_string(self.path, "tokenizer.chat_template"))
        self.model_id = f"llamacpp:{ident}"

    # -- request building -------------------------------------------------------------------------
    def _body(self, request: ChatRequest, stream: bool = False) -> dict[str, Any]:
        prm = request.params
        body: dict[str, Any] = {
            "temperature": prm.temperature,
            "top_p": prm.top_p,
            "max_tokens": prm.max_tokens,
            "cache_prompt": True,
            "stream": stream,
        }
        seed = request.effective_seed()
        if seed is not None:
            body["seed"] = seed
        elif prm.temperature > 0 and request.sample_index:
            body["seed"] = 1_000_003 * request.sample_index  # distinct samples stay distinct and replayable
        stops = list(prm.stop or ())
        if request.messages is not None:
            stops += [m for m in self.turn_ends if m not in stops]
        if stops:
            body["stop"] = stops
        if request.messages is not None:
            body["messages"] = list(request.messages)
        else:
            body["prompt"] = request.prompt or ""
        return body

    def generate(self, request: ChatRequest) -> Completion:
        body = self._body(request)
        if request.messages is not None:
            out = self._server.handle_chat_completions(body)
        else:
            out = self._server.handle_completions(body)
        if "error" in out:
            err = out["error"]
            raise EngineError(err.get("message", str(err)) if isinstance(err, dict) else str(err))
        choice = out["choices"][0]
        text = choice["message"]["content"] if "message" in choice else choice.get("text", "")
        usage = out.get("usage", {})
        return Completion(
            text=text or "",
            finish_reason=choice.get("finish_reason") or "stop",
            prompt_tokens=usage.get("prompt_tokens", 0),
            completion_tokens=usage.get("completion_tokens", 0),
            model=self.model_id,
            extra={"timings": out.get("timings", {})},
        )

    def choice_logprobs(self, request: ChatRequest, choices: Sequence[str]) -> ChoiceLogprobs:
        body = self._body(request)
        body.update(max_tokens=1, temperature=0.0, logprobs=True, top_logprobs=TOP_K)
        out = (self._server.handle_chat_completions(body) if request.messages is not None
               else self._server.handle_completions(body))
        if "error" in out:
            err = out["error"]
            raise EngineError(err.get("message", str(err)) if isinstance(err, dict) else str(err))
        if request.messages is None:  # completions give {"tokens": [...], "top_logprobs": [{tok: lp}]}
            top = out["choices"][0].get("logprobs", {}).get("top_logprobs") or [{}]
            return from_top_list(list(top[0].items()), choices)
        return from_openai_response(out, choices)

    def stream(self, request: ChatRequest) -> Iterator[str]:
        """Run the blocking streaming call in a thread and hand its chunks over through a queue."""
        q: queue.Queue = queue.Queue()
        done = object()
        body = self._body(request, stream=True)
        stop = threading.Event()

        def on_chunk(chunk: dict[str, Any]) -> bool:
            q.put(chunk)
            return stop.is_set()  # True: the consumer went away, llama.cpp frees the slot

        def run() -> None:
            try:
                if request.messages is not None:
                    res = self._server.handle_chat_completions(body, on_chunk)
                else:
                    res = self._server.handle_completions(body, on_chunk)
                if isinstance(res, dict) and "error" in res:
                    q.put(EngineError(str(res["error"])))
            except Exception as exc:  # noqa: BLE001 - re-raised in the consumer thread
                q.put(exc)
            finally:
                q.put(done)

        threading.Thread(target=run, daemon=True, name="llamacpp-stream").start()
        try:
            while True:
                item = q.get()
                if item is done:
                    return
                if isinstance(item, Exception):
                    raise item
                for choice in item.get("choices", []):
                    delta = choice.get("delta", {}).get("content") if "delta" in choice else choice.get("text")
                    if delta:
                        yield delta
        finally:
            stop.set()  # a closed generator stops generation at the next token

    def raw_chat(self, body: dict[str, Any], on_chunk=None) -> dict[str, Any] | None:
        """Pass an OpenAI-style body straight through (used by ``ownchat serve``)."""
        if on_chunk is None:
            return self._server.handle_chat_completions(body)
        return self._server.handle_chat_completions(body, on_chunk)

    def raw_completion(self, body: dict[str, Any], on_chunk=None) -> dict[str, Any] | None:
        if on_chunk is None:
            return self._server.handle_completions(body)
        return self._server.handle_completions(body, on_chunk)

    def busy_slots(self) -> int:
        """Requests llama.cpp is working on or has deferred, from its own metrics (engine-side truth)."""
        busy = 0
        for line in self._server.handle_metrics().splitlines():
            name, _, value = line.partition(" ")
            if name in ("llamacpp:requests_processing", "llamacpp:requests_deferred"):
                busy += int(float(value))
        return busy

    def close(self) -> None:
        self._server = None  # the C++ server shuts down when released
