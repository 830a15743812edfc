"""The web chat's Markdown renderer (run in Node when it is installed): model output is never HTML."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

NODE = shutil.which("node")
JS = Path(__file__).resolve().parents[2] / "ownchat" / "serve" / "web" / "markdown.js"


def render(*texts: str) -> list[str]:
    if NODE is None:
        pytest.skip("node is not installed: the renderer is covered by the browser test only")
    script = JS.read_text() + f"\nconsole.log(JSON.stringify({json.dumps(list(texts))}.map(Markdown.render)));"
    out = subprocess.run([NODE, "-e", script], capture_output=True, text=True, timeout=30, check=True)
    return json.loads(out.stdout)


def test_html_in_model_output_is_escaped():
    (html,) = render('<script>alert(1)</script> <img src=x onerror="alert(2)"> [x](javascript:alert(3))')
    assert "<script" not in html and "<img" not in html and 'href="javascript' not in html
    assert "&lt;script&gt;" in html


def test_code_blocks_lists_and_inline():
    fenced, listed, inline, unclosed = render(
        "```python\nif a < b:\n    print('*not italic*')\n```",
        "Steps:\n\n1. one\n2. two\n\n- a\n- b",
        "Use `x<y` and **bold** and *it* and [site](https://example.org).",
        "```js\nlet x = 1;",
    )
    assert '<pre data-lang="python">' in fenced and "if a &lt; b:" in fenced and "<em>" not in fenced
    assert "<ol><li>one</li><li>two</li></ol>" in listed and "<ul><li>a</li><li>b</li></ul>" in listed
    assert "<code>x&lt;y</code>" in inline and "<strong>bold</strong>" in inline and "<em>it</em>" in inline
    assert 'href="https://example.org"' in inline and 'rel="noopener noreferrer"' in inline
    assert "let x = 1;" in unclosed and "<pre" in unclosed  # a code block still streaming renders as code


def test_tables_and_headings():
    (html,) = render("# Title\n\n| a | b |\n|---|---|\n| 1 | 2 |")
    assert "<h1>Title</h1>" in html and "<th>a</th>" in html and "<td>2</td>" in html


def test_any_text_renders_even_nul_placeholders():
    """A reply holding the renderer's own placeholder text ("\\u00005\\u0000") used to throw."""
    texts = ["\u00005\u0000", "a `x` \u00000\u0000 b", "\u0000", "`\u00001\u0000`", "**\u00002\u0000**", ""]
    outs = render(*texts)
    assert outs[0] == "<p>\ufffd5\ufffd</p>"
    assert "<code>x</code>" in outs[1] and "\ufffd0\ufffd" in outs[1]
    assert "<code>\ufffd1\ufffd</code>" in outs[3] and "\u0000" not in "".join(outs)
