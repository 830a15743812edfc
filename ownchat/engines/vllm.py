"""vLLM behind the engine protocol, for GPU machines (``load_engine(model, "vllm")``, ``--engine vllm``).

vLLM's offline ``LLM`` is fastest when handed many requests at once, so a collector thread gathers
whatever requests arrive within a few milliseconds and runs them as one batch. It is only imported
when ``vllm`` is installed; ``load_engine`` explains what to do when it is not.

Not exercised by the test suite (vLLM needs CUDA): keep it small and close to vLLM's documented API.
"""

from __future__ import annotations

import queue
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from ownchat.engines.base import ChatRequest, Completion, Engine

BATCH_WINDOW_S = 0.005


class VLLMEngine(Engine):
    name = "vllm"

    def __init__(self, model_path: str | Path, *, adapter: str | Path | None = None, max_concurrency: int = 32,
                 chat_template: str | None = None, model_name: str | None = None, license: str | None = None) -> None:
        from vllm import LLM

        self._llm = LLM(model=str(model_path), enable_lora=adapter is not None, max_num_seqs=max_concurrency)
        self._lora = None
        if adapter is not None:
            from vllm.lora.request import LoRARequest

            self._lora = LoRARequest("adapter", 1, str(adapter))
        # vLLM takes a Jinja template text; a template *name* (ownchat's "chatml") means the model's own.
        self.chat_template = chat_template if chat_template and "{%" in chat_template else None
        self.max_concurrency = max_concurrency
        self.model_name = model_name or Path(model_path).name
        self.model_id = f"vllm:{model_path}" + (f"+lora:{adapter}" if adapter else "")
        self.license = license
        self._q: queue.Queue[tuple[ChatRequest, Future]] = queue.Queue()
        threading.Thread(target=self._loop, daemon=True, name="vllm-batcher").start()

    @classmethod
    def from_ref(cls, ref: Any, *, adapter: str | Path | None = None, max_concurrency: int = 32,
                 log: Any = print) -> VLLMEngine:
        from ownchat.models.resolve import ensure_hf, resolve

        ref = resolve(ref, log=log) if isinstance(ref, str) else ref
        path = ensure_hf(ref, log=log) if ref.kind == "gguf" else ref.path  # vLLM wants safetensors
        return cls(path, adapter=adapter or ref.adapter, max_concurrency=max_concurrency,
                   chat_template=ref.chat_template, model_name=ref.display_name, license=ref.license)

    def generate(self, request: ChatRequest) -> Completion:
        fut: Future = Future()
        self._q.put((request, fut))
        return fut.result()

    def _sampling(self, request: ChatRequest) -> Any:
        from vllm import SamplingParams

        p = request.params
        return SamplingParams(temperature=p.temperature, top_p=p.top_p, max_tokens=p.max_tokens,
                              seed=request.effective_seed(), stop=list(p.stop) or None)

    def _loop(self) -> None:
        while True:
            batch = [self._q.get()]
            try:
                while len(batch) < self.max_concurrency:
                    batch.append(self._q.get(timeout=BATCH_WINDOW_S))
            except queue.Empty:
                pass
            chats = [(r, f) for r, f in batch if r.messages is not None]
            prompts = [(r, f) for r, f in batch if r.messages is None]
            try:
                if chats:
                    outs = self._llm.chat([list(r.messages) for r, _ in chats],
                                          [self._sampling(r) for r, _ in chats], lora_request=self._lora,
                                          chat_template=self.chat_template, use_tqdm=False)
                    self._resolve(chats, outs)
                if prompts:
                    outs = self._llm.generate([r.prompt or "" for r, _ in prompts],
                                              [self._sampling(r) for r, _ in prompts], lora_request=self._lora,
                                              use_tqdm=False)
                    self._resolve(prompts, outs)
            except Exception as exc:  # noqa: BLE001 - every waiting caller gets the error
                for _, f in batch:
                    if not f.done():
                        f.set_exception(exc)

    def _resolve(self, items: list[tuple[ChatRequest, Future]], outs: list[Any]) -> None:
        for (_, fut), out in zip(items, outs, strict=True):
            o = out.outputs[0]
            fut.set_result(Completion(text=o.text, finish_reason=o.finish_reason or "stop",
                                      prompt_tokens=len(out.prompt_token_ids or []),
                                      completion_tokens=len(o.token_ids), model=self.model_id))
