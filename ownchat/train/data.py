"""Training data: read files in any supported format, hold out an eval split, mix with weights.

Every record goes through ``ownchat.data.formats.to_messages`` (Alpaca, Dolly, ShareGPT, OpenAI
messages, prompt/completion, and ``ownchat synth`` output, which is OpenAI messages plus
provenance). The eval split is taken per file *before* weighting, so an up-weighted file never
leaks copies of its held-out examples into training.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ownchat.data.formats import detect_format, to_messages
from ownchat.data.jsonl import read_records
from ownchat.errors import DataError

Messages = list[dict[str, str]]


@dataclass
class DataFileInfo:
    path: str
    format: str
    records: int
    weight: float
    train: int = 0
    eval: int = 0
    terms: dict[str, int] = field(default_factory=dict)  # provenance terms keys -> record count
    teachers: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass
class TrainData:
    train: list[Messages]
    eval: list[Messages]
    files: list[DataFileInfo]


def load_file(path: str | Path) -> tuple[list[Messages], DataFileInfo]:
    path = Path(path)
    records = read_records(path)
    if not records:
        raise DataError(path, None, "no records", "the file is empty")
    convs: list[Messages] = []
    formats: Counter[str] = Counter()
    terms: Counter[str] = Counter()
    teachers: set[str] = set()
    for i, rec in enumerate(records, start=1):
        if not isinstance(rec, dict):
            raise DataError(path, i, "expected a JSON object", "one record per line")
        formats[detect_format(rec)] += 1
        convs.append(to_messages(rec, where=(path, i)))
        prov = rec.get("provenance")
        if isinstance(prov, dict):
            key = (prov.get("terms") or {}).get("key")
            if key:
                terms[key] += 1
            if prov.get("teacher"):
                teachers.add(str(prov["teacher"]))
    fmt = formats.most_common(1)[0][0] if len(formats) == 1 else "mixed:" + ",".join(sorted(formats))
    info = DataFileInfo(str(path), fmt, len(convs), 1.0, terms=dict(terms), teachers=sorted(teachers))
    return convs, info


def weighted_copies(items: list[Messages], weight: float, rng: random.Random) -> list[Messages]:
    """``weight`` 2.5 -> every item twice plus a random half once more (deterministic given rng)."""
    whole, frac = int(weight), weight - int(weight)
    out = [m for m in items for _ in range(whole)]
    if frac > 0:
        out += rng.sample(items, round(frac * len(items)))
    return out


def load_training_data(paths: list[str | Path], weights: list[float] | None = None, *,
                       eval_fraction: float = 0.05, seed: int = 0) -> TrainData:
    rng = random.Random(seed)
    weights = list(weights) if weights else [1.0] * len(paths)
    train: list[Messages] = []
    held: list[Messages] = []
    infos: list[DataFileInfo] = []
    for path, w in zip(paths, weights, strict=True):
        convs, info = load_file(path)
        info.weight = float(w)
        order = list(range(len(convs)))
        rng.shuffle(order)
        # at least one eval example per file when asked for any, but never the whole file
        n_eval = min(len(convs) - 1, max(1, round(eval_fraction * len(convs)))) if eval_fraction > 0 else 0
        ev = [convs[i] for i in order[:n_eval]]
        tr = [convs[i] for i in order[n_eval:]]
        mixed = weighted_copies(tr, float(w), rng)
        info.train, info.eval = len(mixed), len(ev)
        train += mixed
        held += ev
        infos.append(info)
    if not train:
        raise DataError(paths[0], None, "no training examples after the eval split", "add data")
    return TrainData(train, held, infos)
