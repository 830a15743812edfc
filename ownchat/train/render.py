"""Conversation -> (token ids, loss mask), built per message from the chat template's structure.

For each assistant message we render the conversation up to it *with* the generation prompt and up
to and including it; the difference is exactly that message as the template writes it. Those
character spans (cut just after the end-of-turn marker, so the model learns to stop but not to
emit the newline that follows) are mapped onto the tokens of the full rendering through the fast
tokenizer's offsets. Nothing is inferred from token counts of separately tokenised pieces, which
is how FastChat's "tokenization mismatch" silently dropped every multi-turn sample.

The check (``MaskReport``) re-tokenises each supervised span on its own and compares it with what
the mask selected; disagreements are counted and one example is kept, never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ownchat.engines.templates import with_bos
from ownchat.train.templates import end_of_turn_strings

Messages = list[dict[str, str]]


@dataclass
class MaskReport:
    """What rendering found across a data set; printed before training starts."""

    conversations: int = 0
    assistant_turns: int = 0
    supervised_tokens: int = 0
    total_tokens: int = 0
    straddling: int = 0  # tokens crossing a span boundary (left unsupervised)
    retokenize_mismatch: int = 0  # spans whose separate tokenisation differs from the masked tokens
    template_unstable: int = 0  # conversations whose prefix renderings were not prefixes of the whole
    missing_end_of_turn: int = 0
    truncated: int = 0
    dropped_no_target: int = 0
    example: str = ""
    notes: list[str] = field(default_factory=list)

    def add_problem(self, text: str) -> None:
        if not self.example:
            self.example = text

    @property
    def problems(self) -> int:
        return self.straddling + self.retokenize_mismatch + self.template_unstable + self.missing_end_of_turn

    def summary(self) -> str:
        frac = self.supervised_tokens / max(1, self.total_tokens)
        s = (f"{self.conversations} conversations, {self.assistant_turns} assistant turns, "
             f"{self.supervised_tokens}/{self.total_tokens} tokens supervised ({frac:.0%})")
        if self.truncated or self.dropped_no_target:
            s += f"; {self.truncated} truncated to seq_len, {self.dropped_no_target} dropped (no answer left)"
        if self.problems:
            s += (f"\nmask check: {self.retokenize_mismatch} re-tokenisation mismatches, {self.straddling} "
                  f"boundary-straddling tokens, {self.template_unstable} template-unstable conversations, "
                  f"{self.missing_end_of_turn} turns without an end-of-turn marker. Example: {self.example}")
        else:
            s += "; mask check: every supervised span re-tokenises identically"
        return s

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "notes"}


def _apply(tokenizer, messages: Messages, template: str | None, gen: bool) -> str:
    if not messages:
        return ""
    return tokenizer.apply_chat_template(messages, chat_template=template, tokenize=False,
                                         add_generation_prompt=gen)


def assistant_spans(tokenizer, messages: Messages, template: str | None,
                    report: MaskReport | None = None) -> tuple[str, list[tuple[int, int]]]:
    """The full rendering and the character spans [start, end) of every assistant message."""
    full = _apply(tokenizer, messages, template, False)
    eots = end_of_turn_strings(tokenizer)
    spans: list[tuple[int, int]] = []
    cursor = 0
    for i, msg in enumerate(messages):
        if msg["role"] != "assistant":
            continue
        before = _apply(tokenizer, messages[:i], template, True)
        through = _apply(tokenizer, messages[: i + 1], template, False)
        if full.startswith(through) and through.startswith(before) and len(before) >= cursor:
            start, end = len(before), len(through)
        else:
            # Templates that rewrite history (e.g. strip earlier reasoning) are not prefix-stable:
            # fall back to locating the message text itself, and say so.
            start = full.find(msg["content"], cursor)
            if report is not None:
                report.template_unstable += 1
                report.add_problem(f"template re-renders earlier turns (message {i})")
            if start < 0:
                continue
            end = start + len(msg["content"])
            tail = full[end:]
            hit = [(tail.find(e), e) for e in eots if tail.find(e) >= 0]
            if hit:
                pos, e = min(hit)
                end += pos + len(e)
        span = full[start:end]
        cut = max((span.rfind(e) + len(e) for e in eots if span.rfind(e) >= 0), default=-1)
        if cut > 0:
            end = start + cut
        elif report is not None:
            report.missing_end_of_turn += 1
            report.add_problem(f"no end-of-turn marker after assistant message {i}: {span[-40:]!r}")
        spans.append((start, end))
        cursor = end
    return full, spans


def render_conversation(tokenizer, messages: Messages, template: str | None = None, *,
                        report: MaskReport | None = None) -> tuple[list[int], list[int]]:
    """Token ids of the whole conversation and a 0/1 mask: 1 on assistant tokens + end-of-turn."""
    full, spans = assistant_spans(tokenizer, messages, template, report)
    enc = tokenizer(full, add_special_tokens=False, return_offsets_mapping=True)
    ids: list[int] = list(enc["input_ids"])
    offsets = enc["offset_mapping"]
    mask = [0] * len(ids)
    j = 0
    for start, end in spans:
        chosen: list[int] = []
        for k in range(j, len(ids)):
            s, e = offsets[k]
            if e <= start:
                continue
            if s >= end:
                break
            if s >= start and e <= end:
                mask[k] = 1
                chosen.append(ids[k])
            elif e > s and report is not None:
                report.straddling += 1
                report.add_problem(f"token {tokenizer.convert_ids_to_tokens(ids[k])!r} crosses the edge of "
                                   f"assistant span {full[start:end][:40]!r}")
            j = k
        if report is not None:
            alone = tokenizer(full[start:end], add_special_tokens=False)["input_ids"]
            if list(alone) != chosen:
                report.retokenize_mismatch += 1
                report.add_problem(f"span {full[start:end][:40]!r}: {len(chosen)} tokens in context, "
                                   f"{len(alone)} when tokenised alone")
    if (led := with_bos(tokenizer, ids)) is not ids:  # BOS is context, never a target
        ids, mask = led, [0, *mask]
    if report is not None:
        report.conversations += 1
        report.assistant_turns += len(spans)
        report.supervised_tokens += sum(mask)
        report.total_tokens += len(ids)
    return ids, mask


def show_mask(tokenizer, ids: list[int], mask: list[int]):
    """A Rich ``Text``: supervised tokens in bold green, context tokens dimmed."""
    from rich.text import Text

    out = Text()
    for tid, m in zip(ids, mask, strict=True):
        piece = tokenizer.decode([tid])
        out.append(piece, style="bold green" if m else "dim")
    return out
