"""`ownchat synth`: a teacher model writes training data.

    from ownchat.synth import SynthConfig, run_synth
    res = run_synth(SynthConfig(mode="alpaca", out=Path("data.jsonl"), n=200))
    res.kept, res.filtered, res.teacher_tokens

Modes: ``self-instruct`` (Wang et al. 2022), ``alpaca`` (Taori et al. 2023), ``answer`` (distil
responses for existing prompts; ``constraints=True`` adds verifiable constraints and keeps only
answers that pass IFEval's checkers) and ``chat`` (multi-turn, the teacher plays both sides). Work
runs as a rolling queue that keeps every teacher slot busy (``ownchat.engines.rolling``), committed
in order. Runs are resumable: run the same command again after a crash and it continues where it
stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ownchat.synth.filters import FilterConfig, Filters
from ownchat.synth.runner import SynthConfig, SynthResult, Teacher, run_units, stats_path_for

__all__ = ["MODES", "FilterConfig", "SynthConfig", "SynthResult", "run_synth", "stats_path_for"]

MODES = ("self-instruct", "alpaca", "answer", "chat")


def _mode_class(name: str):
    if name == "self-instruct":
        from ownchat.synth.self_instruct import SelfInstructMode
        return SelfInstructMode
    if name == "alpaca":
        from ownchat.synth.alpaca import AlpacaMode
        return AlpacaMode
    if name == "answer":
        from ownchat.synth.answer import AnswerMode
        return AnswerMode
    if name == "chat":
        from ownchat.synth.chat import ChatMode
        return ChatMode
    from ownchat.errors import UserError
    raise UserError(f"unknown synth mode {name!r}; choose one of {', '.join(MODES)}")


def run_synth(cfg: SynthConfig, log: Callable[[str], None] = print, engine=None,
              on_kept: Callable[[int, int], None] | None = None) -> SynthResult:
    """Run (or resume) one synth job. ``engine`` overrides loading ``cfg.teacher`` (tests, recipes)."""
    from ownchat.errors import UserError

    if cfg.n < 1:
        raise UserError("--n must be at least 1")
    if cfg.mode == "answer" and not cfg.inputs:
        raise UserError("answer mode needs --input FILE (instructions or conversations to answer)")
    if cfg.constraints and cfg.mode != "answer":
        raise UserError("--constraints works with answer mode: ownchat synth answer --constraints --input FILE")
    if cfg.constraint_samples < 1:
        raise UserError("--constraint-samples must be at least 1")
    if cfg.mix_sharegpt < 0:
        raise UserError("--mix-sharegpt must be 0 or more")
    mode_cls = _mode_class(cfg.mode)
    own = engine is None
    if own:
        from ownchat.engines import load_engine
        engine = load_engine(cfg.teacher, cfg.engine, cache=cfg.cache, concurrency=cfg.concurrency,
                             base_url=cfg.base_url, api_key=cfg.api_key, log=log)
    try:
        teacher = Teacher(engine, cfg)
        if cfg.filters.language == "auto":
            cfg.filters = replace(cfg.filters, language=cfg.language)
        filters = Filters(cfg.filters)
        mode = mode_cls(cfg, teacher, filters, log)
        return run_units(cfg, mode, teacher, filters, log, on_kept=on_kept)
    finally:
        if own:
            engine.close()
