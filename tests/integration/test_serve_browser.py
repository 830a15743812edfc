"""The web chat in a real headless Chromium: send, watch it stream, reload, find it, delete it."""

from __future__ import annotations

import os
import shutil
import sqlite3

import pytest

from ownchat.serve.process import ServerProcess

pytestmark = [pytest.mark.model, pytest.mark.browser]
MODEL = "smollm2-135m-instruct"
CHROMIUM = os.environ.get("OWNCHAT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"]


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip(f"chromium not installed at {CHROMIUM} (`make browser` installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def server(smollm2_gguf, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("web")
    with ServerProcess(MODEL, "--parallel", "1", "--history", str(tmp / "h.sqlite"),
                       log_path=tmp / "server.log") as srv:
        srv.history = tmp / "h.sqlite"
        yield srv


def test_chat_stream_reload_delete(browser, server):
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    outside: list[str] = []
    page.on("request", lambda r: None if r.url.startswith(server.base_url) else outside.append(r.url))
    page.goto(server.base_url + "/")
    page.wait_for_selector("#license:has-text('Apache')")
    page.click("#settings-toggle")
    page.fill("#max-tokens", "24")
    page.fill("#temperature", "0")
    # count the distinct partial texts painted while the reply is still streaming
    page.evaluate("""() => { window.partials = new Set();
      new MutationObserver(() => { const b = document.querySelector('.msg.assistant.streaming .body');
        if (b && b.textContent.trim()) window.partials.add(b.textContent); })
      .observe(document.getElementById('messages'), {subtree: true, childList: true, characterData: true}); }""")
    page.fill("#prompt", "What is the capital of France?")
    page.keyboard.press("Enter")
    page.wait_for_selector(".msg.assistant:not(.streaming) .body > *", timeout=60_000)
    reply = page.inner_text(".msg.assistant .body")
    assert reply.strip()
    assert page.evaluate("window.partials.size") >= 2, "the reply should appear piece by piece"
    page.wait_for_selector("#conversations li")
    title = page.inner_text("#conversations li")
    assert "capital of France" in title

    page.reload()
    page.wait_for_selector("#conversations li")
    page.click("#conversations li >> nth=0")
    page.wait_for_selector(".msg.user")
    assert page.inner_text(".msg.user .body") == "What is the capital of France?"
    assert page.inner_text(".msg.assistant .body").strip() == reply.strip()

    db = sqlite3.connect(server.history)
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 2
    page.click("#delete")
    page.click("#delete:has-text('Really delete?')")
    page.wait_for_selector("#conversations li", state="detached")
    assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 0
    assert db.execute("SELECT COUNT(*) FROM conversations").fetchone()[0] == 0
    page.reload()
    page.wait_for_selector("#empty")
    assert page.locator("#conversations li").count() == 0
    assert errors == [] and outside == []
    page.close()


def test_stop_button_keeps_partial_reply(browser, server):
    page = browser.new_page()
    page.goto(server.base_url + "/")
    page.wait_for_selector("#license:has-text('Apache')")
    page.fill("#prompt", "Write a long story about a dragon.")
    page.keyboard.press("Enter")
    page.wait_for_selector(".msg.assistant.streaming .body > *", timeout=30_000)
    page.click("#stop")
    page.wait_for_selector(".msg.assistant:not(.streaming)")
    assert page.is_visible("#send") and not page.is_visible("#stop")
    page.wait_for_timeout(500)
    db = sqlite3.connect(server.history)
    row = db.execute("SELECT content, meta FROM messages WHERE role = 'assistant'").fetchone()
    assert row is not None and row[0].strip()
    page.close()


def test_any_reply_text_renders(browser, server):
    """A reply holding the Markdown renderer's own placeholder ("\\u00005\\u0000") used to throw, and the
    conversation could no longer be opened. Whatever the model wrote, the page shows it."""
    from ownchat.serve.auth import LOCAL_OWNER
    from ownchat.serve.history import HistoryStore

    nasty = ["\u00005\u0000", "code `x` then \u00000\u0000 and **bold**", "<img src=x onerror=alert(1)>\u0000 end"]
    store = HistoryStore(server.history)
    cid = store.create(LOCAL_OWNER, title="odd characters")["id"]
    store.add_message(LOCAL_OWNER, cid, "user", "show me")
    store.add_message(LOCAL_OWNER, cid, "assistant", "\n\n".join(nasty))
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(server.base_url + "/")
        page.click("#conversations li:has-text('odd characters')")
        page.wait_for_selector(".msg.assistant .body p")
        text = page.inner_text(".msg.assistant .body")
        assert "\ufffd5\ufffd" in text and "\ufffd0\ufffd" in text and "end" in text
        assert page.inner_text(".msg.assistant .body code") == "x"
        assert page.locator(".msg.assistant .body img").count() == 0
        assert errors == []
    finally:
        page.close()
        store.delete(LOCAL_OWNER, cid)  # the other tests count rows in this file
        store.close()
