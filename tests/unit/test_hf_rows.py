"""Per-row control of batched generation and named templates, with plain tensors (no model)."""

from __future__ import annotations

import pytest
import torch

from ownchat.engines.hf_rows import RowControl, StopHoldback, cut_at_stop, sample_token
from ownchat.engines.templates import TEMPLATES, template_text
from ownchat.errors import UserError


class CharTok:
    """Token id k decodes to chr(k)."""

    def decode(self, ids, skip_special_tokens=False):
        return "".join(chr(i) for i in ids)


def control(**kw):
    args = {"temperatures": [0.0, 0.0], "top_ps": [1.0, 1.0], "max_new": [8, 8], "seeds": [1, 2],
            "stops": [(), ()], **kw}
    return RowControl(CharTok(), prompt_len=2, eos_id=0, **args)


def test_greedy_rows_are_untouched_and_long_rows_get_eos():
    ctrl = control(max_new=[1, 8])
    ids = torch.tensor([[65, 66, 67], [65, 66, 67]])  # one token generated so far
    scores = torch.randn(2, 128)
    out = ctrl(ids, scores)
    assert out[0].argmax() == 0 and ctrl.length_hit == [True, False]
    assert torch.equal(out[1], scores[1])


def test_stop_string_forces_eos_for_that_row_only():
    ctrl = control(stops=[("ab",), ("zz",)])
    ids = torch.tensor([[1, 1, ord("x"), ord("a"), ord("b")], [1, 1, ord("x"), ord("a"), ord("b")]])
    out = ctrl(ids, torch.zeros(2, 128))
    assert ctrl.stop_hit == [True, False] and out[0].argmax() == 0
    assert torch.isfinite(out[1]).all()


def test_sampling_rows_follow_their_own_seed():
    logits = torch.randn(1, 1000)
    draws = []
    for _ in range(2):
        ctrl = control(temperatures=[1.0, 1.0], seeds=[7, 7])
        out = ctrl(torch.tensor([[1, 1], [1, 1]]), logits.repeat(2, 1))
        picked = out.argmax(dim=-1).tolist()
        assert picked[0] == picked[1]  # same seed, same logits -> same token, whatever the batch
        assert torch.isinf(out[0]).sum() == 999
        draws.append(picked[0])
    assert draws[0] == draws[1]


def test_top_p_keeps_the_nucleus():
    logits = torch.tensor([10.0, 9.0, -10.0, -10.0])
    g = torch.Generator().manual_seed(0)
    picks = {sample_token(logits, 1.0, 0.5, g) for _ in range(50)}
    assert picks == {0}
    picks = {sample_token(logits, 1.0, 0.99, g) for _ in range(200)}
    assert picks == {0, 1}


def test_cut_at_stop():
    assert cut_at_stop("Paris.\nUser:", ["\nUser:", "."]) == ("Paris", True)
    assert cut_at_stop("Paris", ["x"]) == ("Paris", False)


@pytest.mark.parametrize("pieces", [["Hel", "lo<|e", "nd|>tail"], ["Hello", "<|end|>"], ["Hello<|end|>x"]])
def test_stream_holdback_hides_stop_strings(pieces):
    hold = StopHoldback(["<|end|>"])
    out = "".join(hold.feed(p) for p in pieces) + hold.flush()
    assert out == "Hello" and hold.stopped


def test_stream_holdback_releases_false_alarms():
    hold = StopHoldback(["<|end|>"])
    out = hold.feed("a<|e") + hold.feed("xit") + hold.flush()
    assert out == "a<|exit" and not hold.stopped


def test_named_templates_render():
    from jinja2 import Template

    msgs = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]
    chatml = Template(template_text("chatml")).render(messages=msgs, add_generation_prompt=True)
    assert chatml == "<|im_start|>system\nS<|im_end|>\n<|im_start|>user\nU<|im_end|>\n<|im_start|>assistant\n"
    gemma = Template(TEMPLATES["gemma"]).render(messages=msgs, add_generation_prompt=True, bos_token="<bos>")
    assert gemma == "<bos><start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\n"
    assert template_text("{{ x }}") == "{{ x }}"
    with pytest.raises(UserError, match="unknown chat template"):
        template_text("vicuna")


def test_turn_ends_follow_the_template_text():
    from ownchat.engines.templates import turn_ends

    assert turn_ends(TEMPLATES["chatml"]) == ("<|im_end|>",)
    assert turn_ends(TEMPLATES["gemma"]) == ("<end_of_turn>",)
    assert turn_ends("{{ messages }}") == () and turn_ends(None) == ()
