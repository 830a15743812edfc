// ownchat web chat. Talks only to the server that served it: /api for conversations (stored in the
// server's local SQLite file) and streamed replies. With --no-history the conversations live in this
// page's memory and vanish when it closes.
"use strict";

const $ = (sel) => document.querySelector(sel);
const state = {
  info: null, key: sessionStorage.getItem("ownchat-key") || "",
  convs: [], current: null, messages: [], streaming: null, memory: new Map(),
};

// -- server calls ---------------------------------------------------------------------------------
function headers(json = true) {
  const h = json ? { "Content-Type": "application/json" } : {};
  if (state.key) h.Authorization = `Bearer ${state.key}`;
  return h;
}

async function api(method, path, body) {
  const res = await fetch(path, { method, headers: headers(body !== undefined), body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 401) { await login("That key was not accepted."); return api(method, path, body); }
  if (!res.ok) {
    let msg = `${res.status}`;
    try { msg = (await res.json()).error.message; } catch (_) { /* not JSON */ }
    throw new Error(msg);
  }
  return res.status === 204 ? null : res.json();
}

function login(message) {
  return new Promise((resolve) => {
    const dlg = $("#login");
    $("#login-error").textContent = message || "";
    $("#login-form").onsubmit = () => {
      state.key = $("#api-key").value.trim();
      sessionStorage.setItem("ownchat-key", state.key);
      resolve();
    };
    dlg.showModal();
  });
}

// -- conversations: server store, or page memory with --no-history ----------------------------------
const store = {
  async list() {
    if (state.info.history) return api("GET", "/api/conversations");
    return [...state.memory.values()].sort((a, b) => b.updated - a.updated);
  },
  async create(fields) {
    if (state.info.history) return api("POST", "/api/conversations", fields);
    const conv = { id: newId(), title: "New chat", messages: [], created: Date.now() / 1000,
                   updated: Date.now() / 1000, ...fields };
    state.memory.set(conv.id, conv);
    return conv;
  },
  async get(id) { return state.info.history ? api("GET", `/api/conversations/${id}`) : state.memory.get(id); },
  async patch(id, fields) {
    if (state.info.history) return api("PATCH", `/api/conversations/${id}`, fields);
    Object.assign(state.memory.get(id), fields, { updated: Date.now() / 1000 });
    return state.memory.get(id);
  },
  async remove(id) { if (state.info.history) await api("DELETE", `/api/conversations/${id}`); else state.memory.delete(id); },
};

function newId() {
  // crypto.randomUUID needs a secure context; a plain-HTTP LAN address is not one.
  if (window.crypto && crypto.randomUUID) return crypto.randomUUID().replace(/-/g, "");
  return Array.from({ length: 32 }, () => Math.floor(Math.random() * 16).toString(16)).join("");
}

function settings() {
  const num = (sel, fallback) => { const v = parseFloat($(sel).value); return Number.isFinite(v) ? v : fallback; };
  const seed = parseInt($("#seed").value, 10);
  return { temperature: num("#temperature", 0.7), top_p: num("#top-p", 1), max_tokens: Math.max(1, Math.round(num("#max-tokens", 512))),
           seed: Number.isFinite(seed) ? seed : null };
}

function showSettings(conv) {
  const s = (conv && conv.settings) || {};
  $("#system-prompt").value = (conv && conv.system_prompt) || "";
  $("#temperature").value = s.temperature ?? 0.7;
  $("#top-p").value = s.top_p ?? 1;
  $("#max-tokens").value = s.max_tokens ?? Math.min(512, state.info.limits.max_tokens);
  $("#seed").value = s.seed ?? "";
}

// -- rendering ------------------------------------------------------------------------------------
function renderList() {
  const ul = $("#conversations");
  ul.replaceChildren();
  for (const c of state.convs) {
    const li = document.createElement("li");
    li.textContent = c.title;
    li.title = c.title;
    li.dataset.id = c.id;
    if (state.current && c.id === state.current.id) li.classList.add("active");
    li.onclick = () => openConversation(c.id);
    ul.append(li);
  }
}

function messageNode(role, content) {
  const div = document.createElement("div");
  div.className = `msg ${role}`;
  const body = document.createElement("div");
  body.className = "body";
  div.append(body);
  fill(body, role, content);
  return div;
}

function fill(body, role, content) {
  if (role === "assistant") body.innerHTML = Markdown.render(content);  // escaped inside the renderer
  else body.textContent = content;
}

const emptyNode = document.getElementById("empty");

function renderMessages() {
  const box = $("#messages");
  box.replaceChildren();
  if (!state.messages.length) box.append(emptyNode);
  for (const m of state.messages) if (m.role !== "system") box.append(messageNode(m.role, m.content));
  box.scrollTop = box.scrollHeight;
  $("#title").textContent = state.current ? state.current.title : "New chat";
  for (const id of ["#rename", "#export", "#delete"]) $(id).disabled = !state.current;
}

// -- actions --------------------------------------------------------------------------------------
async function refreshList() { state.convs = await store.list(); renderList(); }

async function openConversation(id) {
  if (state.streaming) return;
  const conv = await store.get(id);
  if (!conv) return;
  state.current = conv;
  state.messages = (conv.messages || []).map((m) => ({ role: m.role, content: m.content }));
  showSettings(conv);
  renderMessages();
  renderList();
}

function newChat() {
  if (state.streaming) return;
  state.current = null;
  state.messages = [];
  showSettings(null);
  renderMessages();
  renderList();
  $("#prompt").focus();
}

async function send(text) {
  if (!text.trim() || state.streaming) return;
  if (!state.current) {
    state.current = await store.create({ system_prompt: $("#system-prompt").value, settings: settings() });
  }
  state.messages.push({ role: "user", content: text });
  renderMessages();
  const node = messageNode("assistant", "");
  node.classList.add("streaming");
  $("#messages").append(node);
  const body = node.querySelector(".body");
  const ctrl = new AbortController();
  state.streaming = ctrl;
  setBusy(true);
  let reply = "";
  let pending = false;
  const paint = () => { pending = false; fill(body, "assistant", reply); $("#messages").scrollTop = $("#messages").scrollHeight; };
  try {
    const conv = state.current;
    let res;
    if (state.info.history) {
      res = await fetch(`/api/conversations/${conv.id}/messages`, { method: "POST", headers: headers(), signal: ctrl.signal,
        body: JSON.stringify({ content: text, settings: settings() }) });
    } else {
      const sys = $("#system-prompt").value.trim();
      const msgs = (sys ? [{ role: "system", content: sys }] : []).concat(state.messages);
      res = await fetch("/api/chat", { method: "POST", headers: headers(), signal: ctrl.signal,
        body: JSON.stringify({ messages: msgs, settings: settings() }) });
    }
    if (!res.ok) {
      let msg = `${res.status}`;
      try { msg = (await res.json()).error.message; } catch (_) { /* not JSON */ }
      throw new Error(msg);
    }
    for await (const ev of events(res)) {
      if (ev.error) throw new Error(ev.error.message);
      for (const c of ev.choices || []) reply += (c.delta && c.delta.content) || "";
      if (!pending) { pending = true; requestAnimationFrame(paint); }
    }
  } catch (err) {
    if (err.name !== "AbortError") {
      const e = document.createElement("div");
      e.className = "error"; e.textContent = `Error: ${err.message}`;
      node.append(e);
    }
  } finally {
    paint();
    node.classList.remove("streaming");
    state.messages.push({ role: "assistant", content: reply });
    if (!state.info.history) state.current.messages = state.messages.slice();
    state.streaming = null;
    setBusy(false);
    if (!state.info.history && state.current.title === "New chat") await store.patch(state.current.id, { title: text.slice(0, 60) });
    await refreshList();
    const fresh = state.convs.find((c) => c.id === state.current.id);
    if (fresh) { state.current.title = fresh.title; $("#title").textContent = fresh.title; }
  }
}

async function* events(res) {
  const reader = res.body.getReader();
  const dec = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += dec.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      for (const line of block.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }
}

function setBusy(busy) {
  $("#send").hidden = busy;
  $("#stop").hidden = !busy;
  $("#prompt").disabled = busy;
  if (!busy) $("#prompt").focus();
}

function rename() {
  if (!state.current) return;
  const input = $("#title-input");
  input.value = state.current.title;
  $("#title").hidden = true;
  input.hidden = false;
  input.focus();
  input.select();
}

async function finishRename(save) {
  const input = $("#title-input");
  if (input.hidden) return;
  input.hidden = true;
  $("#title").hidden = false;
  const title = input.value.trim();
  if (save && title && state.current && title !== state.current.title) {
    state.current = { ...state.current, ...(await store.patch(state.current.id, { title })) };
    $("#title").textContent = state.current.title;
    await refreshList();
  }
}

async function removeCurrent(btn) {
  if (!state.current) return;
  if (btn.dataset.armed !== "1") {  // two clicks: no accidental deletes, no blocking dialog
    btn.dataset.armed = "1";
    btn.textContent = "Really delete?";
    setTimeout(() => { btn.dataset.armed = ""; btn.textContent = "Delete"; }, 4000);
    return;
  }
  btn.dataset.armed = "";
  btn.textContent = "Delete";
  await store.remove(state.current.id);
  newChat();
  await refreshList();
}

async function exportCurrent() {
  if (!state.current) return;
  let data;
  if (state.info.history) {
    const res = await fetch(`/api/conversations/${state.current.id}/export`, { headers: headers(false) });
    data = await res.json();
  } else {
    const who = { user: "human", assistant: "gpt", system: "system" };
    const sys = $("#system-prompt").value.trim();
    const msgs = (sys ? [{ role: "system", content: sys }] : []).concat(state.messages);
    data = [{ id: state.current.id, title: state.current.title, conversations: msgs.map((m) => ({ from: who[m.role], value: m.content })) }];
  }
  const a = document.createElement("a");
  a.href = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
  a.download = `chat-${state.current.id.slice(0, 8)}.json`;
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

async function saveSettings() {
  if (!state.current) return;
  await store.patch(state.current.id, { system_prompt: $("#system-prompt").value, settings: settings() });
}

// -- start ----------------------------------------------------------------------------------------
async function start() {
  state.info = await (await fetch("/api/info")).json();
  $("#model").textContent = state.info.model;
  const lic = $("#license");
  lic.textContent = `Licence: ${state.info.license_name || state.info.license}`;
  lic.title = state.info.license_note || "";
  $("#privacy").textContent = state.info.history
    ? "History is saved only on this machine."
    : "History is off: nothing is saved.";
  $("#max-tokens").max = state.info.limits.max_tokens;
  if (state.info.auth && !state.key) await login();
  if (state.info.auth) await api("GET", "/api/whoami");
  showSettings(null);
  renderMessages();
  await refreshList();

  $("#new-chat").onclick = newChat;
  $("#composer").onsubmit = (e) => { e.preventDefault(); const t = $("#prompt").value; $("#prompt").value = ""; send(t); };
  $("#prompt").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey && !e.isComposing) { e.preventDefault(); $("#composer").requestSubmit(); }
  });
  $("#prompt").addEventListener("input", (e) => { e.target.style.height = "auto"; e.target.style.height = `${Math.min(e.target.scrollHeight, 200)}px`; });
  $("#stop").onclick = () => state.streaming && state.streaming.abort();
  $("#rename").onclick = rename;
  $("#title-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter") { e.preventDefault(); finishRename(true); } else if (e.key === "Escape") finishRename(false);
  });
  $("#title-input").addEventListener("blur", () => finishRename(true));
  $("#delete").onclick = (e) => removeCurrent(e.currentTarget);
  $("#export").onclick = exportCurrent;
  $("#settings-toggle").onclick = (e) => {
    const open = $("#settings").hidden;
    $("#settings").hidden = !open;
    e.currentTarget.setAttribute("aria-expanded", String(open));
  };
  for (const id of ["#system-prompt", "#temperature", "#top-p", "#max-tokens", "#seed"]) $(id).addEventListener("change", saveSettings);
  $("#messages").addEventListener("click", (e) => {
    if (!e.target.classList.contains("copy")) return;
    const text = e.target.nextElementSibling.textContent;
    if (navigator.clipboard) navigator.clipboard.writeText(text).then(() => { e.target.textContent = "Copied"; });
    else { const r = document.createRange(); r.selectNodeContents(e.target.nextElementSibling); getSelection().removeAllRanges(); getSelection().addRange(r); }
  });
}

start().catch((err) => { document.body.prepend(Object.assign(document.createElement("p"), { className: "error", textContent: `ownchat: ${err.message}` })); });
