"""Ollama ``Modelfile``: the GGUF, a Go ``TEMPLATE`` equivalent to the run's chat template, stops.

Ollama renders prompts with Go templates, not Jinja, so we translate by template family (ChatML,
Llama 3, Gemma), recognised from the markers in the Jinja text. A template we cannot translate is
an error rather than a silently wrong prompt format.
"""

from __future__ import annotations

import re
from pathlib import Path

from ownchat.errors import UserError

_CHATML_GO = """{{- if .System }}<|im_start|>system
{{ .System }}<|im_end|>
{{ end }}
{{- range .Messages }}<|im_start|>{{ .Role }}
{{ .Content }}<|im_end|>
{{ end }}<|im_start|>assistant
"""

_LLAMA3_GO = """{{- if .System }}<|start_header_id|>system<|end_header_id|>

{{ .System }}<|eot_id|>
{{- end }}
{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>

{{ .Content }}<|eot_id|>
{{- end }}<|start_header_id|>assistant<|end_header_id|>

"""

_GEMMA_GO = """{{- range $i, $m := .Messages }}
{{- if eq $m.Role "user" }}<start_of_turn>user
{{ if and $.System (eq $i 0) }}{{ $.System }}

{{ end }}{{ $m.Content }}<end_of_turn>
{{ else if eq $m.Role "assistant" }}<start_of_turn>model
{{ $m.Content }}<end_of_turn>
{{ end }}
{{- end }}<start_of_turn>model
"""

FAMILIES = {
    "chatml": (_CHATML_GO, ["<|im_start|>", "<|im_end|>"]),
    "llama3": (_LLAMA3_GO, ["<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"]),
    "gemma": (_GEMMA_GO, ["<start_of_turn>", "<end_of_turn>"]),
}


def template_family(jinja: str) -> str:
    if "<|im_start|>" in jinja:
        return "chatml"
    if "<|start_header_id|>" in jinja:
        return "llama3"
    if "<start_of_turn>" in jinja:
        return "gemma"
    raise UserError("cannot translate this chat template to an Ollama Go template (known: ChatML, Llama 3, "
                    "Gemma); use --to gguf and give Ollama a TEMPLATE yourself")


def default_system(jinja: str) -> str | None:
    """A system prompt the Jinja template injects when none is given (SmolLM2 does), so Ollama does too."""
    m = re.search(r"messages\[0\]\['role'\] != 'system' %\}\{\{ '<\|im_start\|>system\n(.*?)<\|im_end\|>",
                  jinja, re.S)
    return m.group(1) if m else None


def write_modelfile(out_dir: Path, gguf_name: str, jinja: str, *, params: dict | None = None) -> Path:
    family = template_family(jinja)
    go, stops = FAMILIES[family]
    lines = [f"FROM ./{gguf_name}", "", f'TEMPLATE """{go}"""', ""]
    system = default_system(jinja)
    if system:
        lines += [f'SYSTEM """{system}"""', ""]
    lines += [f'PARAMETER stop "{s}"' for s in stops]
    for k, v in (params or {"temperature": 0.7}).items():
        lines.append(f"PARAMETER {k} {v}")
    path = out_dir / "Modelfile"
    path.write_text("\n".join(lines) + "\n")
    return path
