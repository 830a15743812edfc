"""Loading a recipe: YAML with line numbers -> ``Recipe``, every problem reported at once.

Pydantic collects the per-field errors; each is mapped back to the YAML line it came from and given a
fix ("did you mean 'concurrency'?"). Rules that span sections and ``options:`` keys are checked after.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from ownchat.errors import DataError, UserError
from ownchat.recipe.schema import Recipe


class RecipeError(UserError):
    """Every problem in a recipe, one per line."""

    def __init__(self, path: Path, errors: list[DataError]) -> None:
        self.path, self.errors = path, errors
        lines = "\n".join(f"  {e}" for e in errors)
        super().__init__(f"{path}: {len(errors)} problem(s) in the recipe:\n{lines}")


def _line_map(text: str) -> dict[tuple, int]:
    """(key, index, ...) path -> 1-based line of that node, from the YAML node tree."""
    lines: dict[tuple, int] = {}

    def walk(node: yaml.Node, loc: tuple) -> None:
        lines[loc] = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                lines[(*loc, k.value)] = k.start_mark.line + 1
                walk(v, (*loc, k.value))
                lines[(*loc, k.value)] = k.start_mark.line + 1  # the key's line wins over its value's
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                walk(item, (*loc, i))

    root = yaml.compose(text)
    if root is not None:
        walk(root, ())
    return lines


def _nearest_line(lines: dict[tuple, int], loc: tuple) -> int | None:
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return lines.get(())


def _fix_for(err: dict[str, Any], loc: tuple, model_cls: type[BaseModel]) -> tuple[str, str]:
    kind, msg = err["type"], err["msg"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(model_cls, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.5)
        fix = f"did you mean {close[0]!r}?" if close else f"allowed keys: {', '.join(allowed)}"
        return f"unknown key {loc[-1]!r}", fix
    if kind == "missing":
        return f"missing required key {loc[-1]!r}", "add it (see docs/recipes.md)"
    if kind == "value_error":
        return msg.removeprefix("Value error, "), ""
    got = err.get("input")
    shown = repr(got) if not isinstance(got, dict | list) else type(got).__name__
    return f"{msg} (got {shown})", ""


def _allowed_keys(model_cls: type[BaseModel], loc: tuple) -> list[str]:
    """Walk the schema along ``loc`` to the model whose keys were expected there."""
    cls: Any = model_cls
    for part in loc:
        if isinstance(part, int) or cls is None:
            continue
        field = cls.model_fields.get(part) if hasattr(cls, "model_fields") else None
        cls = _model_in(field.annotation) if field else None
    if cls is None or not hasattr(cls, "model_fields"):
        return []
    return [k for k, f in cls.model_fields.items() if not f.exclude]


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()) or ():
        found = _model_in(arg)
        if found:
            return found
    return None


def parse_recipe(text: str, path: Path, *, base_dir: Path | None = None) -> Recipe:
    base_dir = base_dir if base_dir is not None else path.parent
    try:
        data = yaml.safe_load(text)
        lines = _line_map(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise RecipeError(path, [DataError(path, line, f"not valid YAML ({getattr(exc, 'problem', exc)})",
                                           "check indentation and quoting")]) from None
    if not isinstance(data, dict):
        raise RecipeError(path, [DataError(path, 1, "a recipe is a YAML mapping (name:, students:, ...)",
                                           "see recipes/quickstart.yaml")])
    data.pop("base_dir", None)
    try:
        recipe = Recipe.model_validate(data, context={"base_dir": str(base_dir)})
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
            problem, fix = _fix_for(err, loc, Recipe)
            key = ".".join(str(p) for p in loc) or "(top)"
            problems.append(DataError(path, _nearest_line(lines, loc), f"{key}: {problem}", fix))
        raise RecipeError(path, problems) from None
    recipe.base_dir = base_dir
    errors = _cross_checks(recipe, path, lines)
    if errors:
        raise RecipeError(path, errors)
    return recipe


def _cross_checks(r: Recipe, path: Path, lines: dict[tuple, int]) -> list[DataError]:
    """Rules that span sections: things a single field cannot know."""
    errs = []
    names = [s.name for s in r.students]
    for dup in sorted({n for n in names if names.count(n) > 1}):
        errs.append(DataError(path, lines.get(("students",)), f"students: name {dup!r} used twice",
                              "give each student a distinct name"))
    if r.synth and r.teacher is None:
        errs.append(DataError(path, lines.get(("synth",)), "synth needs a teacher", "add a teacher: section"))
    if r.sft and not r.synth and not r.data and not r.improve:
        errs.append(DataError(path, lines.get(("sft",)), "sft has no training data",
                              "add a synth: section or data: files"))
    if r.dpo and not r.feedback:
        errs.append(DataError(path, lines.get(("dpo",)), "dpo needs preference pairs",
                              "add a feedback: section"))
    errs += _check_options(r, path, lines)
    for section in ("feedback", "judge"):
        sec = getattr(r, section)
        if sec is not None and r.judge_model(sec) is None:
            errs.append(DataError(path, lines.get((section,)), f"{section} needs a judge model",
                                  f"add a teacher: or {section}.judge:"))
    return errs


# section -> (module, config class) whose fields ``options:`` may set (checked when the stage exists)
_OPTION_TARGETS = {"sft": ("ownchat.train.config", "SFTConfig"), "dpo": ("ownchat.train.dpo", "DPOConfig"),
                   "feedback": ("ownchat.feedback.collect", "FeedbackConfig"),
                   "synth": ("ownchat.synth", "SynthConfig"), "improve": ("ownchat.improve.lmsi", "LMSIConfig")}


def _check_options(r: Recipe, path: Path, lines: dict[tuple, int]) -> list[DataError]:
    """``options:`` passes settings straight to a stage's config: its keys must be fields there."""
    import dataclasses
    import importlib

    errs = []
    for section, (module, cls_name) in _OPTION_TARGETS.items():
        sec = getattr(r, section, None)
        if sec is None or not sec.options:
            continue
        try:
            cls = getattr(importlib.import_module(module), cls_name)
        except (ImportError, AttributeError):
            continue  # stage not installed: the stage itself reports it when it runs
        known = {f.name for f in dataclasses.fields(cls)}
        for key in sec.options:
            if key not in known:
                close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.5)
                errs.append(DataError(path, lines.get((section, "options", key)),
                                      f"{section}.options.{key}: not a setting of {cls_name}",
                                      f"did you mean {close[0]!r}?" if close else
                                      f"known: {', '.join(sorted(known))}"))
    return errs


def load_recipe(path: str | Path) -> Recipe:
    path = Path(path)
    if not path.exists():
        raise DataError(path, None, "recipe not found", "pass a YAML file, e.g. recipes/quickstart.yaml")
    return parse_recipe(path.read_text(encoding="utf-8"), path)
