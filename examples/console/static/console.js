// Switchyard console: plain JavaScript, no framework, no build step.
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, props = {}, ...kids) => {
  const e = Object.assign(document.createElement(tag), props);
  for (const k of kids) e.append(k);
  return e;
};

let config = { users: [], groups: [], activity_types: [], live: false, activity: false, topic: "user.activity" };

async function init() {
  const r = await fetch("/console/api/config");
  config = await r.json();
  for (const u of config.users) $("#user").append(el("option", { value: u, textContent: u }));
  for (const t of config.activity_types) $("#act-type").append(el("option", { value: t, textContent: t }));
  for (const g of config.groups) $("#act-crash").append(el("option", { value: g, textContent: g }));
  $("#topic").textContent = config.topic;
  $("#sync-download").addEventListener("click", syncDownload);
  $("#async-request").addEventListener("click", asyncRequest);
  $("#activity-form").addEventListener("submit", postActivity);
  $("#dl-refresh").addEventListener("click", refreshDeadLetters);
  if (!config.activity) $("#act-post").disabled = true;
  if (config.live) connectLive(); else $("#live-state").textContent = "no live events (no broker subscription)";
  refreshDeadLetters();
  document.body.dataset.ready = "true";
}

// ---- Export ----

function range() {
  return { start: $("#start").value, end: $("#end").value, user: $("#user").value };
}

// showMessage shows an answer that refused the export: 401, 403 (the
// auth service's reason), 503 (the auth service is down: fail closed).
async function showRefusal(resp) {
  let body = {};
  try { body = await resp.json(); } catch (e) { body = { detail: resp.statusText }; }
  const m = $("#export-message");
  m.hidden = false;
  m.dataset.status = String(resp.status);
  if (resp.status === 403) {
    m.className = "denied";
    m.textContent = `Denied: ${body.user} may not export transactions. ${body.reason || ""}`;
  } else if (resp.status === 503) {
    m.className = "unavailable";
    m.textContent = `Exports are refused: ${body.detail}`;
  } else {
    m.className = "error";
    m.textContent = `${resp.status} ${resp.statusText}: ${body.detail || ""}`;
  }
}

function clearMessage() {
  const m = $("#export-message");
  m.hidden = true; m.className = ""; m.textContent = ""; delete m.dataset.status;
}

// countRecords counts the CSV records after the header (RFC 4180: quoted
// fields may hold newlines).
function countRecords(text) {
  let n = 0, quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') quoted = !quoted;
    else if (c === "\n" && !quoted) n++;
  }
  return Math.max(0, n - 1);
}

async function syncDownload() {
  clearMessage();
  const { start, end, user } = range();
  const res = $("#sync-result");
  res.hidden = true;
  const resp = await fetch(`/api/Export?StartDate=${encodeURIComponent(start)}&EndDate=${encodeURIComponent(end)}`, { headers: { "X-User": user } });
  if (!resp.ok) return showRefusal(resp);
  const blob = await resp.blob();
  const rows = countRecords(await blob.text());
  const name = `transactions_${start}_${end}.csv`;
  const a = el("a", { href: URL.createObjectURL(blob), download: name });
  document.body.append(a);
  a.click();
  a.remove();
  res.hidden = false;
  res.dataset.rows = String(rows);
  res.textContent = `Downloaded ${name}: ${rows} rows (synchronous).`;
}

async function asyncRequest() {
  clearMessage();
  const { start, end, user } = range();
  const resp = await fetch("/api/Export", {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-User": user },
    body: JSON.stringify({ StartDate: start, EndDate: end }),
  });
  if (!resp.ok) return showRefusal(resp);
  const { RID } = await resp.json();
  const status = el("span", { className: "status", textContent: "pending" });
  status.dataset.status = "pending";
  const bar = el("progress", { max: 1, value: 0 });
  const rows = el("span", { className: "rows" });
  const link = el("span");
  const tr = el("tr", {},
    el("td", { className: "mono", textContent: RID }),
    el("td", { textContent: `${start} … ${end}` }),
    el("td", { textContent: user }),
    el("td", {}, status),
    el("td", {}, bar, " ", rows),
    el("td", {}, link));
  tr.dataset.rid = RID;
  $("#exports tbody").prepend(tr);
  const es = new EventSource(`/api/Export/Events?RID=${encodeURIComponent(RID)}`);
  es.addEventListener("status", (ev) => {
    const st = JSON.parse(ev.data);
    status.textContent = st.Status;
    status.dataset.status = st.Status;
    status.dataset.history = `${status.dataset.history || ""}${st.Status}:${st.Progress} `;
    status.className = `status status-${st.Status}`;
    if (st.Total) { bar.max = st.Total; bar.value = st.Progress; }
    rows.textContent = st.Total ? `${st.Progress} / ${st.Total} rows` : `${st.Progress} rows`;
    if (st.Status === "completed") {
      bar.value = bar.max = Math.max(st.Progress, 1);
      link.replaceChildren(el("a", { href: st.Url, textContent: "Download", className: "download", download: `transactions_${start}_${end}.csv` }));
    }
    if (st.Status === "failed") link.textContent = st.Error || "failed";
    if (st.Status === "completed" || st.Status === "failed") es.close();
  });
}

// ---- Live events ----

const seen = new Set();       // report keys, to drop repeats after a reconnect
const rows = new Map();       // message id → tr
const groups = [];            // columns, in order of appearance

function connectLive() {
  const es = new EventSource("/console/api/live");
  es.onopen = () => { $("#live-state").textContent = "live"; $("#live-state").dataset.state = "live"; };
  es.onerror = () => { $("#live-state").textContent = "reconnecting…"; $("#live-state").dataset.state = "reconnecting"; };
  es.addEventListener("report", (ev) => report(JSON.parse(ev.data)));
}

function groupColumn(g) {
  if (groups.includes(g)) return;
  groups.push(g);
  $("#events thead tr").append(el("th", { textContent: g }));
  for (const tr of rows.values()) tr.append(groupCell(g));
}

function groupCell(g) {
  const td = el("td");
  td.dataset.group = g;
  td.dataset.outcomes = "";
  return td;
}

function eventRow(rep) {
  let tr = rows.get(rep.message_id);
  if (tr) return tr;
  let a = {};
  try { a = JSON.parse(rep.payload); } catch (e) { /* not JSON */ }
  tr = el("tr", {},
    el("td", { textContent: new Date(rep.at).toLocaleTimeString() }),
    el("td", { className: "mono", textContent: rep.message_id }),
    el("td", { textContent: a.user_id || "" }),
    el("td", { textContent: a.type || "" }));
  tr.dataset.id = rep.message_id;
  tr.dataset.user = a.user_id || "";
  for (const g of groups) tr.append(groupCell(g));
  rows.set(rep.message_id, tr);
  $("#events tbody").prepend(tr);
  return tr;
}

function report(rep) {
  const key = `${rep.message_id}|${rep.group}|${rep.attempt}|${rep.outcome}|${rep.at}`;
  if (seen.has(key)) return;
  seen.add(key);
  groupColumn(rep.group);
  const tr = eventRow(rep);
  const td = tr.querySelector(`td[data-group="${CSS.escape(rep.group)}"]`);
  let text = { acked: "✓ acked", retried: "↻ retried", dead_lettered: "✗ dead-lettered" }[rep.outcome] || rep.outcome;
  text += ` #${rep.attempt}`;
  if (rep.outcome === "retried" && rep.delay_ms) text += ` (${rep.delay_ms} ms)`;
  const chip = el("span", { className: `o ${rep.outcome}`, textContent: text, title: rep.cause || "" });
  td.append(chip);
  td.dataset.outcomes = td.dataset.outcomes ? `${td.dataset.outcomes},${rep.outcome}` : rep.outcome;
  if (rep.outcome === "dead_lettered") scheduleDeadLetters();
}

async function postActivity(ev) {
  ev.preventDefault();
  const body = { user_id: $("#act-user").value, type: $("#act-type").value };
  const crash = $("#act-crash").value;
  if (crash) body.attributes = { simulate_failure: crash };
  const resp = await fetch("/console/api/activity", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  const out = await resp.json().catch(() => ({}));
  $("#act-result").textContent = resp.ok ? `published ${out.id}` : `${resp.status}: ${out.detail || ""}`;
  $("#act-result").dataset.id = resp.ok ? out.id : "";
}

let dlTimer = null;
function scheduleDeadLetters() {
  clearTimeout(dlTimer);
  dlTimer = setTimeout(refreshDeadLetters, 200);
}

async function refreshDeadLetters() {
  const resp = await fetch("/console/api/deadletters");
  if (!resp.ok) return;
  const { groups: list } = await resp.json();
  const box = $("#deadletters");
  box.replaceChildren();
  for (const g of list) {
    const div = el("div", { className: "group" }, el("h4", { textContent: `${g.group}: ${g.dead_letters.length} dead letter(s)` }));
    div.dataset.group = g.group;
    div.dataset.count = String(g.dead_letters.length);
    if (g.error) div.append(el("p", { className: "hint", textContent: g.error }));
    if (g.dead_letters.length) {
      const tb = el("tbody");
      for (const d of g.dead_letters) {
        const btn = el("button", { type: "button", className: "replay", textContent: "Replay" });
        btn.dataset.id = d.id;
        btn.addEventListener("click", () => replay(g.group, d.topic, d.id, btn));
        const tr = el("tr", {},
          el("td", { className: "mono", textContent: d.id }),
          el("td", { textContent: d.reason }),
          el("td", { textContent: `${d.attempts} attempts` }),
          el("td", {}, btn));
        tr.dataset.id = d.id;
        tb.append(tr);
      }
      div.append(el("table", {}, tb));
    }
    box.append(div);
  }
  box.dataset.loaded = String(Date.now());
}

async function replay(group, topic, id, btn) {
  btn.disabled = true;
  const resp = await fetch("/console/api/deadletters/replay", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ group, topic, ids: [id] }),
  });
  const out = await resp.json().catch(() => ({}));
  btn.textContent = resp.ok ? `replayed ${out.replayed}` : `${resp.status}: ${out.detail || ""}`;
  btn.dataset.replayed = resp.ok ? String(out.replayed) : "error";
  setTimeout(refreshDeadLetters, 300);
}

init();
