// crucible-ray live dashboard: polls /api/dashboard with an operator token and redraws.
// No libraries, no CDN: the page must work on an air-gapped cluster.
"use strict";

const REFRESH_MS = 2000;
const STATUSES = ["succeeded", "failed", "compile_error", "timed_out", "cancelled", "error"];
const $ = (id) => document.getElementById(id);

function token() {
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("token")) {
    sessionStorage.setItem("crucible-token", hash.get("token"));
    history.replaceState(null, "", location.pathname);  // keep it out of the address bar
  }
  return sessionStorage.getItem("crucible-token");
}

function text(id, value) { $(id).textContent = value === null || value === undefined ? "–" : String(value); }

function cell(row, value, className) {
  const td = row.insertCell();
  td.textContent = value === null || value === undefined ? "–" : String(value);
  if (className) td.className = className;
}

function drawChart(perMinute) {
  const svg = $("chart");
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const max = Math.max(1, ...perMinute.map((m) => m.finished));
  const width = 600 / Math.max(1, perMinute.length);
  perMinute.forEach((minute, i) => {
    let y = 140;
    for (const status of STATUSES) {
      const count = minute.by_status[status] || 0;
      if (!count) continue;
      const height = (count / max) * 130;
      y -= height;
      const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      rect.setAttribute("x", i * width + 1);
      rect.setAttribute("y", y);
      rect.setAttribute("width", Math.max(1, width - 2));
      rect.setAttribute("height", height);
      rect.setAttribute("fill", getComputedStyle(document.body).getPropertyValue(`--${status}`));
      const title = document.createElementNS("http://www.w3.org/2000/svg", "title");
      title.textContent = `${minute.minute}: ${count} ${status}`;
      rect.appendChild(title);
      svg.appendChild(rect);
    }
  });
  $("legend").replaceChildren(...STATUSES.map((status) => {
    const span = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = `var(--${status})`;
    span.append(swatch, status);
    return span;
  }));
}

function render(data) {
  const d = data.dispatcher;
  const ready = d.executors.filter((e) => e.ready);
  const slots = ready.reduce((n, e) => n + e.slots, 0);
  const busy = ready.reduce((n, e) => n + e.busy, 0);
  const up = ready.length > 0;
  $("status").textContent = up ? "ok" : "no executor ready";
  $("status").className = "pill " + (up ? "ok" : "down");
  text("updated", new Date(data.generated_at).toLocaleTimeString());
  text("window", Math.round(data.window_s / 60));

  const minutes = data.per_minute;
  const lastFull = minutes.length > 1 ? minutes[minutes.length - 2].finished : 0;
  const total = minutes.reduce((n, m) => n + m.finished, 0);
  text("throughput", lastFull);
  text("throughput-avg", (total / Math.max(1, minutes.length)).toFixed(1));
  text("latency-p50", data.duration_ms.p50);
  text("latency-p95", data.duration_ms.p95);
  text("e2e-p50", data.latency_ms.p50);
  text("e2e-p95", data.latency_ms.p95);

  text("running", d.running);
  text("queue", d.queued);
  text("capacity", d.admission_limit);
  $("queue-bar-running").style.width = `${(100 * d.running) / Math.max(1, d.admission_limit)}%`;
  $("queue-bar-queued").style.width = `${(100 * d.queued) / Math.max(1, d.admission_limit)}%`;

  text("utilisation", slots ? `${Math.round((100 * busy) / slots)}%` : "–");
  text("busy-slots", busy);
  text("slots", slots);
  text("executors-ready", ready.length);
  text("rejected-overloaded", d.counters.rejected_overloaded || 0);
  text("rejected-unavailable", d.counters.rejected_unavailable || 0);
  text("admitted", d.counters.admitted || 0);

  drawChart(minutes);
  const outcomes = $("outcomes").tBodies[0];
  outcomes.replaceChildren();
  for (const status of STATUSES) {
    const row = outcomes.insertRow();
    cell(row, status, `status-${status}`);
    cell(row, data.outcomes[status] || 0);
  }
  const executors = $("executors").tBodies[0];
  executors.replaceChildren();
  for (const e of d.executors) {
    const row = executors.insertRow();
    cell(row, e.actor_id.slice(0, 12));
    cell(row, e.ready ? (e.busy ? "busy" : "idle") : "starting");
    cell(row, `${e.busy} / ${e.slots}`);
  }
  const recent = $("recent").tBodies[0];
  recent.replaceChildren();
  for (const r of data.recent) {
    const row = recent.insertRow();
    cell(row, r.id.slice(0, 12));
    cell(row, r.user);
    cell(row, r.language);
    cell(row, r.status, `status-${r.status}`);
    cell(row, r.duration_ms === null ? null : r.duration_ms.toFixed(0));
    cell(row, r.finished_at ? new Date(r.finished_at).toLocaleTimeString() : null);
  }
  document.body.dataset.updated = data.generated_at;  // for tests and for the curious
}

async function refresh() {
  const bearer = token();
  if (!bearer) { showLogin(""); return; }
  try {
    const answer = await fetch("/api/dashboard", { headers: { Authorization: `Bearer ${bearer}` } });
    if (answer.status === 401 || answer.status === 403) {
      sessionStorage.removeItem("crucible-token");
      showLogin((await answer.json()).detail);
      return;
    }
    if (!answer.ok) throw new Error(`HTTP ${answer.status}`);
    $("login").hidden = true;
    $("board").hidden = false;
    render(await answer.json());
  } catch (error) {
    $("status").textContent = `unreachable (${error.message})`;
    $("status").className = "pill down";
  }
}

function showLogin(message) {
  $("board").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

$("login").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("crucible-token", $("token").value.trim());
  refresh();
});

// One request at a time: the next one is scheduled when this one has answered.
async function poll() {
  await refresh();
  setTimeout(poll, REFRESH_MS);
}
poll();
