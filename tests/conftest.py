"""Shared fixtures. Real-model tests need the packs that `make test` pulls first."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# No per-example deadline for property tests: on a loaded 2-core machine (a teacher decoding beside
# the suite) one example can exceed hypothesis' default 200 ms and fail a test for no fault of its own.
settings.register_profile("ownchat", deadline=None)
settings.load_profile("ownchat")


def _pack_path(name: str) -> Path:
    from ownchat.models.store import installed

    inst = installed(name)
    if inst is None:
        pytest.fail(f"pack {name} is not installed: run `make test` (it pulls the packs) or "
                    f"`ownchat models pull {name}`")
    return inst.path


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    return _pack_path("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def qwen_gguf() -> Path:
    return _pack_path("qwen2.5-coder-1.5b-instruct")


@pytest.fixture(scope="session")
def smollm2_hf() -> Path:
    """SmolLM2 converted to a HF directory once (cached under OWNCHAT_HOME/hf)."""
    from ownchat.models.resolve import ensure_hf

    return ensure_hf("smollm2-135m-instruct")


@pytest.fixture
def cache_db(tmp_path: Path) -> Path:
    return tmp_path / "responses.sqlite"


@pytest.fixture(autouse=True, scope="session")
def _quiet_threads():
    # two cores: keep torch from oversubscribing when several engines share the machine
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    yield
