// The panel's one script: a fetch helper that carries the CSRF token, and each page's code.
"use strict";

const $ = (id) => document.getElementById(id);
let csrf = null;

async function api(method, url, body) {
  const opts = { method, headers: {}, credentials: "same-origin" };
  if (csrf) opts.headers["x-csrf-token"] = csrf;
  if (body instanceof FormData) opts.body = body;
  else if (body !== undefined) { opts.headers["content-type"] = "application/json"; opts.body = JSON.stringify(body); }
  const res = await fetch(url, opts);
  if (res.status === 401 && !url.startsWith("/api/login")) { location.href = "/login"; throw new Error("log in first"); }
  const type = res.headers.get("content-type") || "";
  const data = type.includes("json") ? await res.json() : await res.text();
  if (!res.ok) {
    const err = new Error((data && data.error && data.error.message) || res.statusText);
    err.field = data && data.error && data.error.field;
    throw err;
  }
  return data;
}

function text(el, value) { if (el) el.textContent = value; }
function mb(bytes) { return bytes == null ? "?" : (bytes / 1048576).toFixed(bytes < 10485760 ? 1 : 0) + " MB"; }
function item(list, content, cls) { const li = document.createElement("li"); li.textContent = content; if (cls) li.className = cls; list.appendChild(li); return li; }

function showError(err, focusField) {
  text($("form-error"), err.message);
  if (focusField && err.field) {
    const el = $(err.field);
    if (el) { el.setAttribute("aria-invalid", "true"); el.focus(); }
  }
}

const pages = {
  async setup() {
    $("setup-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      if ($("password").value !== $("confirm").value) { showError(new Error("The two passwords differ; type them again.")); return; }
      try {
        await api("POST", "/api/setup", { code: $("code").value, password: $("password").value });
        await refreshCsrf();
        const chosen = document.querySelector("input[name=profile]:checked");
        if (chosen && chosen.value) await api("POST", "/api/profile", { name: chosen.value });
        // A box set up from nothing goes on to fetch its models.
        const st = await api("GET", "/api/status").catch(() => ({}));
        location.href = st.missing ? "/models" : "/";
      }
      catch (err) { showError(err); (/setup code/.test(err.message) ? $("code") : $("password")).focus(); }
    });
    const list = await api("GET", "/api/profiles").catch(() => ({ profiles: [] }));
    for (const p of list.profiles) {
      const div = document.createElement("div");
      div.className = "field check";
      const input = Object.assign(document.createElement("input"), { type: "radio", name: "profile", id: `profile-${p.name}`, value: p.name });
      const label = Object.assign(document.createElement("label"), { htmlFor: input.id, textContent: `${p.title}: ${p.description}` });
      div.append(input, label);
      $("profile-options").appendChild(div);
    }
    $("code").focus();
  },

  async login() {
    $("login-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      try { await api("POST", "/api/login", { password: $("password").value }); location.href = "/"; }
      catch (err) { showError(err); $("password").select(); }
    });
    $("password").focus();
  },

  async status() {
    const load = async () => {
      const s = await api("GET", "/api/status");
      $("not-ready").hidden = !s.missing;
      if (s.missing) {
        $("not-ready").replaceChildren(document.createTextNode(s.missing + " "), Object.assign(document.createElement("a"), { href: "/models", textContent: "Fetch the models" }));
      }
      const body = $("models-body");
      body.replaceChildren();
      for (const m of s.models) {
        const tr = body.insertRow();
        for (const v of [m.task, m.id, m.device]) tr.insertCell().textContent = v;
      }
      text($("voice"), "Voice: " + s.voice + (s.voice_loop ? "; listening to the room" : ""));
      $("talk").hidden = !s.voice_loop;
      const mem = s.memory;
      text($("memory"), `Iris uses ${mb(mem.iris_rss)}; ${mb(mem.available)} of ${mb(mem.total)} is free. Up ${Math.round(s.uptime_s / 60)} min.`);
      const turns = $("turns");
      turns.replaceChildren();
      if (!s.turns.length) item(turns, "No turns yet. Ask something on the Try it page.");
      for (const t of s.turns) {
        const li = item(turns, `${new Date(t.at * 1000).toLocaleTimeString()} (${t.source}): "${t.transcript || "…"}" → "${t.answer || t.error || ""}"`);
        const bar = document.createElement("div");
        bar.className = "bar";
        bar.setAttribute("role", "img");
        const parts = t.stages_ms.filter(([, ms]) => ms > 0);
        bar.setAttribute("aria-label", parts.map(([n, ms]) => `${n} ${ms} ms`).join(", ") + `, total ${t.total_ms} ms`);
        for (const [name, ms] of parts) {
          const span = document.createElement("span");
          span.className = ["asr", "llm", "tts"].includes(name) ? name : "other";
          span.style.width = Math.max(1, (100 * ms) / Math.max(1, t.total_ms)) + "%";
          span.title = `${name} ${ms} ms`;
          bar.appendChild(span);
        }
        li.appendChild(bar);
      }
      const errors = $("errors");
      errors.replaceChildren();
      if (!s.errors.length) item(errors, "None.");
      for (const e of s.errors) item(errors, `${new Date(e.at * 1000).toLocaleString()}: ${e.message}`, "error");
      text($("updated"), "Updated " + new Date().toLocaleTimeString());
    };
    $("refresh").addEventListener("click", load);
    $("talk").addEventListener("click", async () => {
      try { await api("POST", "/api/talk"); text($("talk-state"), "Listening: ask your question."); }
      catch (err) { text($("talk-state"), err.message); }
    });
    await load();
    setInterval(() => load().catch(() => {}), 10000);
  },

  async config() {
    const [cfg, models, profiles] = await Promise.all([api("GET", "/api/config"), api("GET", "/api/models"), api("GET", "/api/profiles")]);
    const pick = $("profile-select");
    if (!profiles.current) pick.add(new Option("(none chosen)", ""));
    for (const p of profiles.profiles) pick.add(new Option(p.title, p.name));
    pick.value = profiles.current;
    const describe = () => text($("profile-description"), (profiles.profiles.find((p) => p.name === pick.value) || {}).description || "");
    describe();
    pick.addEventListener("change", describe);
    $("profile-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      if (!pick.value) return;
      text($("profile-result"), "Applying…");
      try {
        await api("POST", "/api/profile", { name: pick.value });
        text($("profile-result"), "Applied; the settings below show what it set.");
        setTimeout(() => location.reload(), 800);
      } catch (err) { text($("profile-result"), err.message); }
    });
    const installed = (task) => models.models.filter((m) => m.task === task && m.state === "installed").map((m) => m.id);
    for (const [id, task] of [["models.tts", "tts"], ["models.asr", "asr"], ["models.llm", "llm"]]) {
      const sel = $(id);
      for (const m of installed(task)) sel.add(new Option(m, m));
    }
    const fields = document.querySelectorAll("#config-form [id*='.']");
    for (const el of fields) {
      const [section, key] = el.id.split(".");
      const v = cfg[section][key];
      if (el.type === "checkbox") el.checked = v;
      else el.value = el.hasAttribute("data-list") ? v.join(", ") : v;
    }
    $("config-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      for (const el of fields) el.removeAttribute("aria-invalid");
      text($("form-error"), ""); text($("config-result"), "Saving…");
      const next = structuredClone(cfg);
      for (const el of fields) {
        const [section, key] = el.id.split(".");
        next[section][key] = el.type === "checkbox" ? el.checked
          : el.type === "number" ? Number(el.value)
          : el.hasAttribute("data-list") ? el.value.split(",").map((x) => x.trim()).filter((x) => x) : el.value;
      }
      try {
        const r = await api("PUT", "/api/config", next);
        Object.assign(cfg, r.config);
        text($("config-result"), r.applied === "reloaded" ? "Saved; the models were loaded again." : "Saved and in force.");
      } catch (err) { text($("config-result"), ""); showError(err, true); }
    });

    const tokens = async () => {
      const list = $("tokens");
      list.replaceChildren();
      for (const t of (await api("GET", "/api/tokens")).tokens) {
        const li = item(list, `${t.name} (created ${new Date(t.created * 1000).toLocaleDateString()}) `);
        const b = document.createElement("button");
        b.type = "button"; b.className = "secondary"; b.textContent = "Revoke";
        b.setAttribute("aria-label", `Revoke token ${t.name}`);
        b.addEventListener("click", async () => { await api("DELETE", "/api/tokens/" + encodeURIComponent(t.id)); await tokens(); });
        li.appendChild(b);
      }
    };
    $("token-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        const r = await api("POST", "/api/tokens", { name: $("token-name").value });
        text($("token-secret"), `Token "${r.token.name}": ${r.secret} (copy it now; it is not shown again)`);
        $("token-name").value = "";
        await tokens();
      } catch (err) { text($("token-secret"), err.message); }
    });
    $("password-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      try {
        await api("POST", "/api/password", { current: $("current").value, password: $("new-password").value });
        text($("password-result"), "Password changed. Other browsers were logged out.");
        await refreshCsrf();
      } catch (err) { text($("password-result"), err.message); }
    });
    await tokens();
  },

  async models() {
    const load = async () => {
      const r = await api("GET", "/api/models");
      text($("disk"), `Installed models use ${mb(r.disk_bytes)} in ${r.models_dir}.`);
      const body = $("models-body");
      body.replaceChildren();
      let busy = false;
      for (const m of r.models) {
        const tr = body.insertRow();
        const th = document.createElement("th");
        th.scope = "row"; th.textContent = m.id + (m.in_use ? " (in use)" : "");
        tr.appendChild(th);
        for (const v of [m.task, mb(m.size), m.licence]) tr.insertCell().textContent = v;
        const state = tr.insertCell();
        if (m.job && !m.job.finished) {
          busy = true;
          const p = document.createElement("progress");
          p.max = m.job.total || 1; p.value = m.job.done;
          p.setAttribute("aria-label", `Fetching ${m.id}`);
          state.append(`${m.job.stage} `, p);
        } else if (m.job && m.job.error) state.textContent = "failed: " + m.job.error;
        else state.textContent = m.state;
        const actions = tr.insertCell();
        const button = (label, fn) => {
          const b = document.createElement("button");
          b.type = "button"; b.className = "secondary"; b.textContent = label;
          b.setAttribute("aria-label", `${label} ${m.id}`);
          b.addEventListener("click", async () => {
            try { text($("models-result"), await fn()); } catch (err) { text($("models-result"), err.message); }
            await load();
          });
          actions.appendChild(b);
        };
        const id = encodeURIComponent(m.id);
        if (m.state !== "installed") button("Fetch", async () => { await api("POST", `/api/models/${id}/pull`); return `Fetching ${m.id}…`; });
        else {
          button("Verify", async () => { const v = await api("POST", `/api/models/${id}/verify`); return v.ok ? `${m.id} is intact.` : v.problem; });
          if (!m.in_use) button("Remove", async () => { await api("DELETE", `/api/models/${id}`); return `${m.id} removed.`; });
        }
      }
      if (busy) setTimeout(() => load().catch(() => {}), 1000);
    };
    $("pull-default").addEventListener("click", async () => {
      try {
        const r = await api("POST", "/api/models/pack/default/pull");
        text($("models-result"), r.started.length ? `Fetching ${r.started.join(", ")}…` : "The default pack is already installed.");
      } catch (err) { text($("models-result"), err.message); }
      await load();
    });
    $("upload-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const file = $("upload-file").files[0];
      if (!file) return;
      // XMLHttpRequest, for the upload's progress: a bundle is hundreds of MB over Wi-Fi.
      const xhr = new XMLHttpRequest();
      const bar = $("upload-progress");
      xhr.open("POST", "/api/models/upload?name=" + encodeURIComponent(file.name));
      xhr.setRequestHeader("x-csrf-token", csrf);
      xhr.setRequestHeader("content-type", "application/octet-stream");
      xhr.upload.onprogress = (p) => { bar.hidden = false; bar.max = p.total || 1; bar.value = p.loaded; };
      xhr.upload.onload = () => text($("models-result"), "Uploaded; installing (each file is checked)…");
      xhr.onload = async () => {
        bar.hidden = true;
        let r = {};
        try { r = JSON.parse(xhr.responseText); } catch (_) { /* not JSON */ }
        text($("models-result"), xhr.status === 200
          ? "Installed: " + Object.entries(r.imported).map(([id, how]) => `${id} (${how})`).join(", ")
          : (r.error && r.error.message) || xhr.statusText);
        await load();
      };
      xhr.onerror = () => { bar.hidden = true; text($("models-result"), "The upload broke off; try again."); };
      text($("models-result"), `Uploading ${file.name}…`);
      xhr.send(file);
    });
    $("import-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      text($("models-result"), "Installing from the folder… (each file is checked)");
      try {
        const r = await api("POST", "/api/models/import", { path: $("import-path").value });
        text($("models-result"), "Installed: " + Object.entries(r.imported).map(([id, how]) => `${id} (${how})`).join(", "));
      } catch (err) { text($("models-result"), err.message); }
      await load();
    });
    await load();
  },

  // The kiosk: push to talk with large captions. Each question stands alone, and the page
  // clears itself when left idle, so the next visitor starts with nothing of the last one's.
  async kiosk() {
    const info = await fetch("/api/kiosk").then((r) => r.json());
    text($("kiosk-name"), `${info.name}:`);
    let rec = null, idle = null, busy = false;
    const player = $("kiosk-player");
    const queue = [];
    const next = () => { if (player.paused && queue.length) { player.src = queue.shift(); player.play().catch(() => {}); } };
    player.onended = next;
    const reset = () => {
      for (const id of ["kiosk-heard", "kiosk-answer", "kiosk-state"]) text($(id), "");
      $("kiosk-text").value = ""; queue.length = 0; player.pause();
    };
    const touch = () => { clearTimeout(idle); idle = setTimeout(reset, info.idle_reset_s * 1000); };
    const ask = async (form, typed) => {
      if (busy) return;
      busy = true; touch();
      text($("kiosk-heard"), typed || ""); text($("kiosk-answer"), ""); text($("kiosk-state"), "Thinking…");
      try {
        await stream("/api/kiosk", form, (event, data) => {
          if (event === "transcript" && data.final && data.text.trim()) text($("kiosk-heard"), data.text);
          else if (event === "delta") $("kiosk-answer").textContent += data.text;
          else if (event === "audio") { queue.push("data:audio/wav;base64," + data.wav); next(); }
          else if (event === "error") text($("kiosk-state"), data.message);
          else if (event === "done") text($("kiosk-state"), "");
        });
      } catch (err) { text($("kiosk-state"), err.message); }
      busy = false; touch();
    };
    if (!navigator.mediaDevices) { $("talk").disabled = true; text($("kiosk-state"), "Speaking needs the page opened on the kiosk itself (or https); type instead."); }
    const talk = async () => {
      if (rec) {
        const got = await rec.stop(); rec = null;
        $("talk").textContent = "Press to talk"; $("talk").setAttribute("aria-pressed", "false");
        if (got.peak < 0.003) { text($("kiosk-state"), "I heard nothing: speak closer to the microphone."); return; }
        const form = new FormData(); form.append("audio", got.blob, "question.wav");
        await ask(form, "");
        return;
      }
      try {
        reset(); rec = await record(); touch();
        $("talk").textContent = "Press when done"; $("talk").setAttribute("aria-pressed", "true"); text($("kiosk-state"), "Listening…");
      } catch (err) { text($("kiosk-state"), "Cannot use the microphone: " + err.message); }
    };
    $("talk").addEventListener("click", talk);
    document.addEventListener("keydown", (e) => {
      if (e.code === "Space" && document.activeElement === document.body) { e.preventDefault(); talk(); }
    });
    $("kiosk-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const q = $("kiosk-text").value.trim();
      if (!q) return;
      const form = new FormData(); form.append("text", q);
      $("kiosk-text").value = "";
      await ask(form, q);
    });
    $("kiosk-reset").addEventListener("click", () => { reset(); $("talk").focus(); });
    $("talk").focus();
  },

  async try() {
    let recorded = null;
    let rec = null;
    if (!navigator.mediaDevices) {
      // Browsers allow the microphone only on https or on the box itself.
      $("record").disabled = true;
      text($("record-state"), "Recording needs a secure connection (https, or the panel opened on the box itself); upload a WAV instead.");
    }
    $("record").addEventListener("click", async () => {
      if (rec) { recorded = await rec.stop(); rec = null; $("record").textContent = "Start recording"; $("record").setAttribute("aria-pressed", "false"); text($("record-state"), recorded.peak < 0.003
        ? `Recorded ${recorded.seconds.toFixed(1)} s, but it is silent: check the microphone.`
        : `Recorded ${recorded.seconds.toFixed(1)} s.`); return; }
      try { rec = await record(); $("record").textContent = "Stop recording"; $("record").setAttribute("aria-pressed", "true"); text($("record-state"), "Recording…"); }
      catch (err) { text($("record-state"), "Cannot use the microphone: " + err.message); }
    });
    $("try-form").addEventListener("submit", async (e) => {
      e.preventDefault();
      const form = new FormData();
      if (recorded) form.append("audio", recorded.blob, "recording.wav");
      else if ($("audio").files[0]) form.append("audio", $("audio").files[0]);
      if ($("image").files[0]) form.append("image", $("image").files[0]);
      if ($("text").value.trim()) form.append("text", $("text").value);
      for (const id of ["transcript", "answer", "timings", "form-error"]) text($(id), "");
      $("ask").disabled = true;
      const queue = [];
      const player = $("player");
      const next = () => { if (player.paused && queue.length) { player.src = queue.shift(); player.play().catch(() => {}); } };
      player.onended = next;
      try {
        await stream("/api/try", form, (event, data) => {
          if (event === "transcript" && data.final) text($("transcript"), ($("transcript").textContent + " " + data.text).trim());
          else if (event === "delta") $("answer").textContent += data.text;
          else if (event === "audio") { queue.push("data:audio/wav;base64," + data.wav); next(); }
          else if (event === "done") {
            if (!$("transcript").textContent) text($("transcript"), $("text").value);
            text($("timings"), data.stages_ms.map(([n, ms]) => `${n} ${ms} ms`).join(", ") + `; first audio ${data.first_audio_ms} ms`);
          } else if (event === "error") showError(new Error(data.message));
        });
      } catch (err) { showError(err); }
      $("ask").disabled = false;
      recorded = null;
    });
  },

  async logs() {
    const load = async () => {
      const list = $("log");
      list.replaceChildren();
      for (const l of (await api("GET", "/api/logs")).lines.reverse()) {
        item(list, `${new Date(l.at * 1000).toLocaleString()} ${l.level}: ${l.message}`, l.level === "error" ? "error" : "");
      }
    };
    $("refresh").addEventListener("click", load);
    await load();
  },
};

// Server-sent events from a POST (EventSource only does GET).
async function stream(url, form, onEvent) {
  // The kiosk's own browser has no session: a header a cross-site form cannot send stands in.
  const res = await fetch(url, { method: "POST", body: form, headers: { "x-csrf-token": csrf || "", "x-iris-kiosk": "1" }, credentials: "same-origin" });
  if (!res.ok) {
    const data = await res.json().catch(() => ({}));
    throw new Error((data.error && data.error.message) || res.statusText);
  }
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = buf.indexOf("\n\n")) >= 0) {
      const block = buf.slice(0, cut);
      buf = buf.slice(cut + 2);
      let event = "message", data = "";
      for (const line of block.split("\n")) {
        if (line.startsWith("event:")) event = line.slice(6).trim();
        else if (line.startsWith("data:")) data += line.slice(5).trim();
      }
      if (data) onEvent(event, JSON.parse(data));
    }
  }
}

// Records the microphone as 16-bit mono WAV, which the server takes like any upload.
async function record() {
  const media = await navigator.mediaDevices.getUserMedia({ audio: true });
  const ctx = new AudioContext();
  const source = ctx.createMediaStreamSource(media);
  const node = ctx.createScriptProcessor(4096, 1, 1);
  const chunks = [];
  node.onaudioprocess = (e) => chunks.push(new Float32Array(e.inputBuffer.getChannelData(0)));
  source.connect(node); node.connect(ctx.destination);
  return {
    async stop() {
      node.disconnect(); source.disconnect(); media.getTracks().forEach((t) => t.stop());
      const rate = ctx.sampleRate; await ctx.close();
      const n = chunks.reduce((a, c) => a + c.length, 0);
      const view = new DataView(new ArrayBuffer(44 + n * 2));
      const str = (o, s) => { for (let i = 0; i < s.length; i++) view.setUint8(o + i, s.charCodeAt(i)); };
      str(0, "RIFF"); view.setUint32(4, 36 + n * 2, true); str(8, "WAVEfmt "); view.setUint32(16, 16, true);
      view.setUint16(20, 1, true); view.setUint16(22, 1, true); view.setUint32(24, rate, true); view.setUint32(28, rate * 2, true);
      view.setUint16(32, 2, true); view.setUint16(34, 16, true); str(36, "data"); view.setUint32(40, n * 2, true);
      let o = 44, peak = 0;
      for (const c of chunks) for (const s of c) { view.setInt16(o, Math.max(-1, Math.min(1, s)) * 32767, true); o += 2; peak = Math.max(peak, Math.abs(s)); }
      return { blob: new Blob([view], { type: "audio/wav" }), seconds: n / rate, peak };
    },
  };
}

async function refreshCsrf() {
  const s = await api("GET", "/api/state");
  csrf = s.csrf;
  return s;
}

document.addEventListener("DOMContentLoaded", async () => {
  await refreshCsrf().catch(() => {});
  const logout = $("logout");
  if (logout) logout.addEventListener("click", async () => { await api("POST", "/api/logout").catch(() => {}); location.href = "/login"; });
  const page = pages[document.body.dataset.page];
  if (page) page().catch((err) => showError(err));
});
