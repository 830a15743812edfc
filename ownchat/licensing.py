"""What binds a result: base-model licences, teachers' terms, human-data licences.

Each entry says whether outputs/derivatives may be used commercially and why. The recipe's licence
ledger and every synthetic record's provenance draw on this one table.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Terms:
    key: str
    name: str
    commercial: bool | None  # None = unknown
    note: str
    url: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


TERMS: dict[str, Terms] = {t.key: t for t in [
    Terms("apache-2.0", "Apache License 2.0", True, "permissive; keep the notice", "https://www.apache.org/licenses/LICENSE-2.0"),
    Terms("mit", "MIT License", True, "permissive; keep the notice"),
    Terms("gemma", "Gemma Terms of Use", True,
          "commercial use allowed under the Gemma terms and prohibited-use policy; derivatives (including "
          "models trained on Gemma outputs) must carry the same restrictions", "https://ai.google.dev/gemma/terms"),
    Terms("llama", "Llama Community License", True,
          "commercial use allowed below 700M monthly users; name must start with 'Llama'; outputs may not be "
          "used to improve non-Llama models under older versions", "https://www.llama.com/llama3/license/"),
    Terms("openai", "OpenAI Terms of Use", False,
          "outputs may not be used to develop models that compete with OpenAI: a model trained on them is "
          "not cleared for commercial competing use", "https://openai.com/policies/terms-of-use"),
    Terms("sharegpt", "ShareGPT conversations (ChatGPT outputs)", False,
          "people's conversations with ChatGPT, shared without a licence; the answers are OpenAI outputs, and "
          "OpenAI's terms forbid using them to develop competing models: not cleared for a competing model",
          "https://openai.com/policies/terms-of-use"),
    Terms("cc-by-sa-3.0", "CC BY-SA 3.0", True, "share-alike: derived data must keep the licence (Dolly 2.0)"),
    Terms("cc-by-nc-4.0", "CC BY-NC 4.0", False, "non-commercial only (e.g. Alpaca data)"),
    Terms("unknown", "unknown", None, "no licence declared: cannot be cleared"),
]}

_ALIASES = {"apache-2.0": "apache-2.0", "apache 2.0": "apache-2.0", "mit": "mit", "gemma": "gemma",
            "llama": "llama", "llama2": "llama", "llama3": "llama", "openai": "openai", "sharegpt": "sharegpt",
            "cc-by-sa-3.0": "cc-by-sa-3.0", "cc-by-sa": "cc-by-sa-3.0", "cc-by-nc-4.0": "cc-by-nc-4.0"}


def lookup(license_name: str | None) -> Terms:
    key = _ALIASES.get((license_name or "unknown").strip().lower())
    return TERMS[key] if key else Terms(str(license_name), str(license_name), None, "not in ownchat's table")


def teacher_terms(engine_name: str, model_license: str | None, base_url: str | None = None) -> Terms:
    """A remote OpenAI endpoint binds outputs by OpenAI's terms; a local model by its own licence."""
    if engine_name == "openai" and (base_url is None or "openai.com" in base_url):
        return TERMS["openai"]
    return lookup(model_license)
