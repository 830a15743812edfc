"""transformers engine: Hugging Face directories (+ PEFT adapter) with real left-padded batches.

``generate_many`` groups requests into batches of ``batch_size`` and runs one ``model.generate`` per
batch. HF's ``generate`` applies one temperature/top_p/seed/max_tokens to the whole batch, so we run it
greedy and let ``RowControl`` (a logits processor) do per-row work: sampling with each request's own
temperature, top_p and seeded generator, stopping a row at its own max_tokens or stop string. A batch
can therefore mix any requests and still give each one the answer it would get alone.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from ownchat.engines.base import ChatRequest, Completion, Engine, EngineError
from ownchat.engines.hf_rows import RowControl, StopHoldback, cut_at_stop
from ownchat.engines.logprobs import ChoiceLogprobs, logsumexp
from ownchat.engines.templates import DEFAULT_TEMPLATE, template_text, turn_ends, with_bos
from ownchat.models.identity import file_identity, text_identity


class HFEngine(Engine):
    name = "hf"

    def __init__(self, path: str | Path, *, adapter: str | Path | None = None, batch_size: int = 8,
                 chat_template: str | None = None, device: str | None = None, dtype: str | None = None,
                 merge_adapter: bool = True, model_name: str | None = None, license: str | None = None,
                 verbose: bool = False, log: Callable[[str], Any] = print) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.path = Path(path)
        if not (self.path / "config.json").exists():
            raise EngineError(f"{self.path} is not a Hugging Face model directory (no config.json)")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        if dtype is None:  # fp32 on CPU (bf16 matmuls are slow there); half precision on GPUs
            use_bf16 = self.device.startswith("cuda") and torch.cuda.is_bf16_supported()
            dtype = "float32" if self.device == "cpu" else ("bfloat16" if use_bf16 else "float16")
        from transformers.utils import logging as hf_logging

        bars = hf_logging.is_progress_bar_enabled()
        if not verbose:  # a weight-loading bar per engine drowns our own progress output
            hf_logging.disable_progress_bar()
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.path)
            model = AutoModelForCausalLM.from_pretrained(self.path, dtype=getattr(torch, dtype))
        finally:
            if bars:
                hf_logging.enable_progress_bar()
        self.tokenizer.padding_side = "left"  # decoder-only batches must end on the prompt's last token
        if adapter:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(adapter))
            if merge_adapter:  # one matmul per layer instead of two: same outputs, faster decode
                model = model.merge_and_unload()
        self.model = model.to(self.device).eval()
        self.adapter = Path(adapter) if adapter else None
        self.batch_size = self.max_concurrency = max(1, batch_size)
        self.license = license
        self.model_name = model_name or self.path.name

        # Template: the caller's (name or Jinja) wins, then the tokenizer's; base models get chatml.
        self.template_name = chat_template if chat_template else (
            None if self.tokenizer.chat_template else DEFAULT_TEMPLATE)
        self._jinja = template_text(self.template_name) if self.template_name else None
        self._turn_ends = turn_ends(self._jinja or str(self.tokenizer.chat_template or ""))
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.eos_ids = self._eos_ids()
        self.context = int(getattr(self.model.config, "max_position_embeddings", 0) or 32768)
        self._lock = threading.Lock()  # one generate at a time: threads would only fight over the cores

        ident = file_identity(self.path)
        if adapter:
            ident += "+adapter:" + file_identity(Path(adapter))
        if chat_template:
            ident += "+tpl:" + (chat_template if len(chat_template) < 40 else text_identity(chat_template))
        if with_bos(self.tokenizer, []):  # chats are led by BOS since this was fixed: not the old cached answers
            ident += "+bos"
        self.model_id = f"hf:{ident}"
        log(f"hf engine: {self.model_name} on {self.device} ({dtype})"
            + (f" + adapter {self.adapter}" if self.adapter else ""))

    @classmethod
    def from_ref(cls, ref: Any, adapter: str | Path | None = None, batch_size: int = 8,
                 chat_template: str | None = None, log: Callable[[str], Any] = print, **opts: Any) -> HFEngine:
        """Build from a ``ModelRef`` (or a reference string); GGUF packs are converted to HF once."""
        from ownchat.models.resolve import ensure_hf, resolve

        if isinstance(ref, str | Path):
            ref = resolve(str(ref), log=log)
        path = ensure_hf(ref, log=log) if ref.kind == "gguf" else ref.path
        return cls(path, adapter=adapter or ref.adapter, batch_size=batch_size,
                   chat_template=chat_template or ref.chat_template, model_name=ref.display_name,
                   license=ref.license, log=log, **opts)

    # -- prompts ----------------------------------------------------------------------------------
    def _eos_ids(self) -> list[int]:
        ids: list[int] = []
        for src in (self.model.generation_config.eos_token_id, self.tokenizer.eos_token_id):
            for i in (src if isinstance(src, list) else [src]):
                if i is not None and i not in ids:
                    ids.append(int(i))
        # A turn-end marker that is one token in this vocabulary ends generation like EOS does.
        for marker in self._turn_ends:
            tid = self.tokenizer.convert_tokens_to_ids(marker)
            if isinstance(tid, int) and tid != self.tokenizer.unk_token_id and tid not in ids:
                ids.append(tid)
        if not ids:
            raise EngineError(f"{self.path}: the tokenizer defines no end-of-sequence token")
        return ids

    def prompt_ids(self, request: ChatRequest) -> list[int]:
        if request.messages is None:
            return self.tokenizer(request.prompt or "", add_special_tokens=True)["input_ids"]
        text = self.tokenizer.apply_chat_template(list(request.messages), chat_template=self._jinja,
                                                  tokenize=False, add_generation_prompt=True)
        return with_bos(self.tokenizer, self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _stops(self, request: ChatRequest) -> tuple[str, ...]:
        extra = self._turn_ends if request.messages is not None else ()
        return tuple(request.params.stop) + tuple(s for s in extra if s not in request.params.stop)

    # -- generation -------------------------------------------------------------------------------
    def generate(self, request: ChatRequest) -> Completion:
        comp = self._run_batch([request])[0]
        if comp.error:
            raise EngineError(comp.error)
        return comp

    def generate_many(self, requests: Iterable[ChatRequest], concurrency: int | None = None,
                      on_done: Callable[[int, Completion], None] | None = None) -> Iterator[tuple[int, Completion]]:
        size = max(1, concurrency or self.batch_size)
        it = enumerate(requests)
        while chunk := list(itertools.islice(it, size)):
            for (i, _), comp in zip(chunk, self._safe_batch([r for _, r in chunk]), strict=True):
                if on_done:
                    on_done(i, comp)
                yield i, comp

    def _safe_batch(self, batch: list[ChatRequest]) -> list[Completion]:
        try:
            return self._run_batch(batch)
        except Exception as exc:  # noqa: BLE001 - retry one by one so a single bad request is isolated
            if len(batch) == 1:
                return [Completion("", "error", error=f"{type(exc).__name__}: {exc}", model=self.model_id)]
            return [c for r in batch for c in self._safe_batch([r])]

    def _run_batch(self, batch: list[ChatRequest], streamer: Any = None) -> list[Completion]:
        import torch

        prompts = [self.prompt_ids(r) for r in batch]
        results: list[Completion | None] = [None] * len(batch)
        live = []
        for k, ids in enumerate(prompts):
            if len(ids) >= self.context:
                results[k] = Completion("", "error", len(ids), error=(
                    f"prompt of {len(ids)} tokens does not fit the {self.context}-token context"), model=self.model_id)
            else:
                live.append(k)
        if not live:
            return results  # type: ignore[return-value]
        plen = max(len(prompts[k]) for k in live)
        pad = self.tokenizer.pad_token_id
        # left padding: every row's last prompt token sits at the same position, where decoding starts
        input_ids = torch.tensor([[pad] * (plen - len(prompts[k])) + prompts[k] for k in live], device=self.device)
        attn = torch.tensor([[0] * (plen - len(prompts[k])) + [1] * len(prompts[k]) for k in live], device=self.device)
        reqs = [batch[k] for k in live]
        max_new = [max(1, min(r.params.max_tokens, self.context - len(prompts[k]))) for r, k in zip(reqs, live, strict=True)]
        seeds = [r.effective_seed() for r in reqs]
        seeds = [s if s is not None else (1_000_003 * r.sample_index if r.sample_index else random.getrandbits(62))
                 for s, r in zip(seeds, reqs, strict=True)]
        ctrl = RowControl(self.tokenizer, plen, self.eos_ids[0], [r.params.temperature for r in reqs],
                          [r.params.top_p for r in reqs], max_new, seeds, [self._stops(r) for r in reqs],
                          device=self.device)
        from transformers import GenerationConfig, LogitsProcessorList

        # A clean config: the model's sampling defaults (temperature, repetition penalty) would make
        # transformers answer differently from llama.cpp and the remote teachers.
        cfg = GenerationConfig(do_sample=False, max_new_tokens=max(max_new) + 1, eos_token_id=self.eos_ids,
                               pad_token_id=self.tokenizer.pad_token_id)
        with self._lock, torch.inference_mode():
            out = self.model.generate(input_ids=input_ids, attention_mask=attn, generation_config=cfg,
                                      logits_processor=LogitsProcessorList([ctrl]), streamer=streamer)
        for row, k in enumerate(live):
            gen = out[row, plen:].tolist()
            n = next((j for j, t in enumerate(gen) if t in self.eos_ids), len(gen))
            text = self.tokenizer.decode(gen[:n], skip_special_tokens=True)
            text, hit = cut_at_stop(text, self._stops(reqs[row]))
            reason = "length" if (ctrl.length_hit[row] or n >= max_new[row]) and not hit else "stop"
            results[k] = Completion(text=text, finish_reason=reason, prompt_tokens=int(attn[row].sum()),
                                    completion_tokens=min(n, max_new[row]), model=self.model_id)
        return results  # type: ignore[return-value]

    def choice_logprobs(self, request: ChatRequest, choices: Sequence[str]) -> ChoiceLogprobs:
        """Exact: one forward pass, the next-token distribution summed over each choice's spellings."""
        import torch

        ids = self.prompt_ids(request)
        with self._lock, torch.inference_mode():
            logits = self.model(input_ids=torch.tensor([ids], device=self.device)).logits[0, -1]
            logp = torch.log_softmax(logits.float(), dim=-1)
        out = {}
        for c in choices:
            variants = {tuple(self.tokenizer.encode(s, add_special_tokens=False)) for s in (c, " " + c)}
            firsts = {v[0] for v in variants if len(v) == 1}  # spellings that are one token
            if not firsts:
                raise EngineError(f"choice {c!r} is not a single token for {self.model_name}")
            out[c] = logsumexp(float(logp[t]) for t in firsts)
        return ChoiceLogprobs(out)

    def stream(self, request: ChatRequest) -> Iterator[str]:
        from transformers import TextIteratorStreamer

        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True, skip_special_tokens=True)
        box: dict[str, Any] = {}

        def run() -> None:
            try:
                box["result"] = self._run_batch([request], streamer=streamer)[0]
                if box["result"].error:  # refused before generating (prompt too long)
                    box["error"] = EngineError(box["result"].error)
                    streamer.end()
            except Exception as exc:  # noqa: BLE001 - re-raised in the consumer thread
                box["error"] = exc
                streamer.end()

        worker = threading.Thread(target=run, daemon=True, name="hf-stream")
        worker.start()
        hold = StopHoldback(self._stops(request))
        for piece in streamer:
            if out := hold.feed(piece):
                yield out
            if hold.stopped:
                break
        worker.join()
        if isinstance(box.get("error"), EngineError):
            raise box["error"]
        if "error" in box:
            raise EngineError(f"{type(box['error']).__name__}: {box['error']}")
        if tail := hold.flush():
            yield tail
        self.last_completion = box.get("result")

    def close(self) -> None:
        self.model = None
