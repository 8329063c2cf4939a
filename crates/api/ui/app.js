// Cubby dashboard: projects, tenants with live stats, usage charts, the
// event feed, and start/stop/delete. It talks only to this daemon's
// /api/v1 with the token given at sign-in (kept in sessionStorage), and
// builds the page from text nodes only: names and event data come from
// tenants and are never parsed as HTML.
"use strict";

const TOKEN_KEY = "cubby.token";
const REFRESH_MS = 3000;
const FEED_SIZE = 50;
const STATS_AT_ONCE = 100;

const state = {
  token: sessionStorage.getItem(TOKEN_KEY),
  projects: [],
  project: null,
  containers: [],
  names: new Map(),
  stats: new Map(),
  selected: null,
  confirming: null,
  feed: null,
  timer: null,
  refreshing: null,
  again: false,
  pending: new Set(),
};

const $ = (id) => document.getElementById(id);

// An element with attributes and children (strings become text nodes).
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("data-")) node.setAttribute(key, value);
    else node[key] = value;
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined) continue;
    node.append(typeof child === "string" ? document.createTextNode(child) : child);
  }
  return node;
}

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const headers = { Authorization: `Bearer ${state.token}` };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const response = await fetch(path, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const error = data && data.error ? data.error : {};
    throw new ApiError(response.status, error.code, error.message || `${method} ${path}: HTTP ${response.status}`);
  }
  return data;
}

function notice(message, kind = "error") {
  const box = $("notice");
  box.textContent = message;
  box.className = kind === "info" ? "info" : "";
  box.hidden = !message;
}

// Any failure lands in the notice; a refused token signs out.
function failed(error) {
  if (error instanceof ApiError && error.status === 401) {
    signOut("The token was refused (401): sign in again.");
    return;
  }
  notice(error.message || String(error));
}

// --- numbers -------------------------------------------------------------

function bytes(n) {
  if (!Number.isFinite(n)) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function duration(seconds) {
  if (!seconds) return "–";
  const d = Math.floor(seconds / 86400);
  const h = Math.floor((seconds % 86400) / 3600);
  const m = Math.floor((seconds % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${Math.floor(seconds % 60)}s`;
  return `${Math.floor(seconds)}s`;
}

function safeUrl(url) {
  try {
    const parsed = new URL(url);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

// --- sign-in -------------------------------------------------------------

function showLogin(message) {
  $("login").hidden = false;
  $("app").hidden = true;
  $("signout").hidden = true;
  $("project-picker").hidden = true;
  $("who").textContent = "";
  if (message) notice(message);
  $("token").focus();
}

function signOut(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  state.token = null;
  state.project = null;
  state.containers = [];
  state.selected = null;
  stopFeed();
  clearInterval(state.timer);
  state.timer = null;
  showLogin(message);
}

async function signIn(token) {
  state.token = token;
  let projects;
  try {
    projects = await api("GET", "/api/v1/projects");
  } catch (error) {
    state.token = null;
    sessionStorage.removeItem(TOKEN_KEY);
    showLogin(error instanceof ApiError && error.status === 401 ? "That token is not valid here." : error.message);
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  notice("");
  state.projects = projects;
  $("login").hidden = true;
  $("app").hidden = false;
  $("signout").hidden = false;
  $("project-picker").hidden = false;
  $("who").textContent = projects.length === 1 ? "project token" : `${projects.length} projects`;
  const select = $("project");
  select.replaceChildren(...projects.map((p) => el("option", { value: p.id }, p.name)));
  if (!projects.length) {
    notice("This token sees no project yet: POST /api/v1/projects makes one.", "info");
    return;
  }
  await chooseProject(projects[0].id);
  clearInterval(state.timer);
  state.timer = setInterval(() => refresh().catch(failed), REFRESH_MS);
}

async function chooseProject(id) {
  state.project = state.projects.find((p) => p.id === id) || null;
  state.selected = null;
  state.confirming = null;
  state.stats.clear();
  $("project").value = id;
  $("detail").hidden = true;
  $("events").replaceChildren();
  // Tenants first, so the feed can name the containers in its events.
  await refresh();
  startFeed(id);
}

// --- tenants -------------------------------------------------------------

// Reloads the tenants and their stats; a call made while one runs makes
// it go round once more, so the last change is always shown.
function refresh() {
  if (!state.project) return Promise.resolve();
  if (state.refreshing) {
    state.again = true;
    return state.refreshing;
  }
  state.refreshing = (async () => {
    try {
      do {
        state.again = false;
        await loadTenants(state.project.id);
      } while (state.again && state.project);
    } finally {
      state.refreshing = null;
    }
  })();
  return state.refreshing;
}

async function loadTenants(project) {
  const page = await api("GET", `/api/v1/projects/${encodeURIComponent(project)}/containers?limit=500`);
  // A tenant with an action under way (a delete) is not asked for stats.
  const running = page.items
    .filter((c) => c.status === "running" && !state.pending.has(c.id))
    .slice(0, STATS_AT_ONCE);
  const stats = await Promise.all(
    running.map((c) => api("GET", `/api/v1/containers/${encodeURIComponent(c.id)}/stats`).catch(() => null)),
  );
  if (!state.project || state.project.id !== project) return;
  state.containers = page.items;
  page.items.forEach((c) => state.names.set(c.id, c.name));
  state.stats.clear();
  running.forEach((c, i) => stats[i] && state.stats.set(c.id, stats[i]));
  renderTenants();
}

// Rows are kept and patched cell by cell, so a button under the pointer
// is not replaced by a refresh that changed nothing about it.
function renderTenants() {
  const body = $("tenants").tBodies[0];
  const kept = new Map([...body.rows].map((row) => [row.dataset.id, row]));
  const rows = state.containers.map((c) => {
    const fresh = tenantRow(c, state.stats.get(c.id));
    const row = kept.get(c.id);
    if (!row) return fresh;
    for (const name of ["data-name", "data-status", "class"]) row.setAttribute(name, fresh.getAttribute(name));
    [...fresh.cells].forEach((cell, i) => {
      if (!row.cells[i].isEqualNode(cell)) row.replaceChild(cell, row.cells[i]);
    });
    return row;
  });
  if (rows.length !== body.rows.length || rows.some((row, i) => body.rows[i] !== row)) body.replaceChildren(...rows);
  $("tenant-count").textContent = `(${state.containers.length})`;
  $("empty").hidden = state.containers.length > 0;
}

function tenantRow(c, stats) {
  const url = safeUrl(c.url);
  const running = c.status === "running";
  const confirming = state.confirming === c.id;
  const action = (name, label, enabled, cls) =>
    el("button", { type: "button", class: cls, "data-action": name, "data-id": c.id, disabled: !enabled }, label);
  return el(
    "tr",
    { "data-id": c.id, "data-name": c.name, "data-status": c.status, class: state.selected === c.id ? "selected" : "" },
    el("td", {}, el("a", { class: "name", href: "#", "data-action": "select", "data-id": c.id }, c.name)),
    el("td", {}, el("span", { class: `status status-${c.status}` }, c.status)),
    el("td", {}, url ? el("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, c.url) : c.url),
    el("td", { class: "num" }, stats ? `${stats.cpu_percent.toFixed(1)} %` : "–"),
    el("td", { class: "num" }, stats ? `${bytes(stats.memory_bytes)} / ${bytes(stats.memory_limit_bytes)}` : "–"),
    el("td", { class: "num" }, stats ? String(stats.pids) : "–"),
    el("td", { class: "num" }, stats ? `${bytes(stats.net_rx_bytes)} / ${bytes(stats.net_tx_bytes)}` : "–"),
    el("td", { class: "num" }, stats ? duration(stats.uptime_seconds) : "–"),
    el(
      "td",
      {},
      el(
        "span",
        { class: "actions" },
        action("start", "Start", !running && c.status === "stopped"),
        action("stop", "Stop", running),
        action("delete", confirming ? "Confirm delete" : "Delete", true, confirming ? "danger confirm" : "danger"),
      ),
    ),
  );
}

async function act(action, id) {
  const path = `/api/v1/containers/${encodeURIComponent(id)}`;
  const name = (state.containers.find((c) => c.id === id) || {}).name || id;
  if (action === "select") {
    state.selected = id;
    renderTenants();
    await showUsage(id);
    return;
  }
  if (action === "delete" && state.confirming !== id) {
    state.confirming = id;
    renderTenants();
    return;
  }
  state.confirming = null;
  const buttons = document.querySelectorAll(`button[data-id="${CSS.escape(id)}"]`);
  buttons.forEach((b) => (b.disabled = true));
  notice(`${action} ${name}…`, "info");
  state.pending.add(id);
  try {
    // A reload under way finishes first, so it asks nothing of a tenant
    // this action is about to remove.
    await (state.refreshing || Promise.resolve());
    if (action === "start") await api("POST", `${path}/start`);
    else if (action === "stop") await api("POST", `${path}/stop`);
    else if (action === "delete") {
      await api("DELETE", path);
      if (state.selected === id) {
        state.selected = null;
        $("detail").hidden = true;
      }
    }
  } finally {
    state.pending.delete(id);
  }
  notice("");
  await refresh();
}

// --- usage ---------------------------------------------------------------

async function showUsage(id) {
  const from = new Date(Date.now() - 3600 * 1000).toISOString();
  const usage = await api("GET", `/api/v1/containers/${encodeURIComponent(id)}/usage?step=60&from=${encodeURIComponent(from)}`);
  if (state.selected !== id) return;
  const c = state.containers.find((x) => x.id === id);
  $("detail-name").textContent = c ? c.name : id;
  const step = usage.step_seconds || 60;
  const series = usage.series || [];
  const chart = (title, value, format) =>
    el("figure", {}, el("figcaption", {}, title), lineChart(series.map((p) => value(p.usage)), format));
  $("charts").replaceChildren(
    chart("CPU (cores)", (u) => u.cpu_seconds / step, (v) => v.toFixed(2)),
    chart("Memory (average)", (u) => (u.memory_gib_seconds / step) * 1024 ** 3, bytes),
    chart("Requests", (u) => u.requests, (v) => String(Math.round(v))),
    chart("Network in + out", (u) => u.network_rx_bytes + u.network_tx_bytes, bytes),
  );
  const t = usage.totals;
  const total = (label, value) => el("div", {}, el("dt", {}, label), el("dd", {}, value));
  $("totals").replaceChildren(
    total("CPU seconds", t.cpu_seconds.toFixed(1)),
    total("Memory GiB·s", t.memory_gib_seconds.toFixed(2)),
    total("Memory peak", bytes(t.memory_peak_bytes)),
    total("Network in", bytes(t.network_rx_bytes)),
    total("Network out", bytes(t.network_tx_bytes)),
    total("Requests", String(t.requests)),
    total("Running", duration(t.running_seconds)),
    total("Wakes", String(t.wakes)),
  );
  $("detail").hidden = false;
}

const SVG = "http://www.w3.org/2000/svg";

function lineChart(values, format) {
  const width = 300;
  const height = 110;
  const pad = 14;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  svg.setAttribute("preserveAspectRatio", "none");
  const max = Math.max(...values, 0);
  const text = (x, y, content) => {
    const t = document.createElementNS(SVG, "text");
    t.setAttribute("x", x);
    t.setAttribute("y", y);
    t.textContent = content;
    return t;
  };
  svg.append(text(4, 11, `max ${format(max)}`));
  if (values.length < 2) {
    svg.append(text(4, height / 2, values.length ? `${format(values[0])}` : "no samples yet"));
    return svg;
  }
  const x = (i) => (i / (values.length - 1)) * width;
  const y = (v) => height - 2 - (max > 0 ? (v / max) * (height - pad - 4) : 0);
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("points", values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" "));
  svg.append(line);
  return svg;
}

// --- event feed ----------------------------------------------------------

function stopFeed() {
  if (state.feed) state.feed.abort();
  state.feed = null;
}

// Follows /events/stream with fetch (EventSource cannot send a bearer
// token), resuming after the last event seen when the stream breaks.
function startFeed(projectId) {
  stopFeed();
  const control = new AbortController();
  state.feed = control;
  const query = new URLSearchParams({ project_id: projectId, newest: "true", limit: "30" });
  let lastId = null;
  (async () => {
    while (!control.signal.aborted) {
      try {
        const headers = { Authorization: `Bearer ${state.token}`, Accept: "text/event-stream" };
        if (lastId) headers["Last-Event-ID"] = lastId;
        const response = await fetch(`/api/v1/events/stream?${query}`, { headers, signal: control.signal });
        if (!response.ok) throw new ApiError(response.status, null, `event stream: HTTP ${response.status}`);
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        let buffer = "";
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          buffer += value;
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) {
            const block = buffer.slice(0, end);
            buffer = buffer.slice(end + 2);
            const data = block
              .split("\n")
              .filter((line) => line.startsWith("data:"))
              .map((line) => line.slice(5).trimStart())
              .join("\n");
            if (!data) continue;
            const event = JSON.parse(data);
            lastId = String(event.id);
            addEvent(event);
          }
        }
      } catch (error) {
        if (control.signal.aborted) return;
        if (error instanceof ApiError && error.status === 401) return failed(error);
      }
      await new Promise((resolve) => setTimeout(resolve, 2000));
    }
  })();
}

function addEvent(event) {
  const who = state.names.get(event.container_id) || event.container_id || "";
  const how = [event.trigger, event.actor].filter(Boolean).join(", ");
  const at = new Date(event.at);
  const item = el(
    "li",
    { "data-type": event.type, "data-container": event.container_id || "" },
    el("time", { dateTime: event.at }, at.toLocaleTimeString([], { hour12: false })),
    el("span", { class: "type" }, event.type),
    el("span", { class: "what" }, how ? `${who} (${how})` : who),
  );
  const list = $("events");
  list.prepend(item);
  while (list.children.length > FEED_SIZE) list.lastElementChild.remove();
  // A lifecycle change shows in the table without waiting for the timer.
  if (event.type.startsWith("container.")) refresh().catch(failed);
}

// --- wiring --------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const token = $("token").value.trim();
    $("token").value = "";
    signIn(token).catch(failed);
  });
  $("signout").addEventListener("click", () => signOut(""));
  $("project").addEventListener("change", (e) => chooseProject(e.target.value).catch(failed));
  $("tenants").addEventListener("click", (e) => {
    const target = e.target.closest("[data-action]");
    if (!target) return;
    e.preventDefault();
    act(target.dataset.action, target.dataset.id).catch(failed);
  });
  if (state.token) signIn(state.token).catch(failed);
  else showLogin();
});
