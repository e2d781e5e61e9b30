// The looop dashboard: plain DOM, no build step. Every value from the server is set with
// textContent (never parsed as HTML). Live through two EventSources: the loop's events and
// the selected worker's screen.
"use strict";

const $ = (sel) => document.querySelector(sel);
const el = (tag, props = {}, ...kids) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const kid of kids) e.append(kid);
  return e;
};

const ui = { selected: null, screen: null, refreshTimer: null, highlight: null, fleet: [], all: false,
  asks: [], needs: [] };

async function api(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const r = await fetch(`/api/v1${path}`, { credentials: "same-origin", ...opts });
  let data = null;
  try { data = await r.json(); } catch (_) { /* an empty or non-JSON answer */ }
  if (!r.ok) {
    const e = new Error((data && data.error) || `${r.status} ${r.statusText}`);
    e.data = data;  // fields beside the one line a panel may act on (a land's conflict)
    throw e;
  }
  return data;
}

function toast(text, bad) {
  const t = $("#toast");
  t.textContent = text;
  t.className = bad ? "err" : "";
  t.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { t.hidden = true; }, bad ? 6000 : 2500);
}

async function act(path, body, done) {
  let ok = false;
  try {
    await api(path, body);
    if (done) toast(done);
    ok = true;
  } catch (e) {
    toast(e.message, true);
  }
  refreshSoon(50);
  return ok;
}

function age(s) {
  if (s === null || s === undefined) return "—";
  s = Math.max(0, Math.round(s));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}
const usd = (v) => (v === null || v === undefined ? "—" : `$${Number(v).toFixed(2)}`);
const usd4 = (v) => `$${Number(v || 0).toFixed(4)}`;  // a skipped beat saves cents

// --- header: pulse, last and next beat ---------------------------------------------------
// the breakers that stop every AI call: their names as the header says them
const BREAKERS = [["budget", "budget spent"], ["unmetered", "cost unreported"], ["decides", "decide cap"]];

function renderState(st) {
  const p = $("#pulse");
  const sp0 = st.spend || {};
  const open = BREAKERS.filter(([k]) => sp0[k] && sp0[k].open);
  const remedy = $("#remedy");
  if (open.length) {
    // no green "pulse ok" while nothing can be decided: which breaker, and how to lift it
    p.textContent = `breaker: ${open.map(([, name]) => name).join(", ")}`;
    p.className = "pill bad";
    remedy.textContent = open.map(([k]) => sp0[k].lift).filter(Boolean).join(" · ");
  } else if (st.paused) {
    p.textContent = "paused";
    p.className = "pill warn";
    remedy.textContent = "Resume starts the pulse again";
  } else {
    p.textContent = st.pulse.running ? `pulse ${st.health}` : st.health === "tick" ? "tick" : "pulse stopped";
    p.className = "pill " + ({ ok: "ok", failing: "warn", stopped: "bad" }[st.health] || "");
    remedy.textContent = "";
  }
  remedy.hidden = !remedy.textContent;
  const lb = st.last_beat;
  const nb = st.next_beat;
  $("#beat").textContent = (lb ? `last beat ${lb.at}: ${lb.outcome}` : "no beat yet")
    + (nb ? ` · next ${nb.at}` : "");
  $("#pause").hidden = !st.pulse.running;
  $("#resume").hidden = st.pulse.running;
  const sp = st.spend || {};
  const spent = sp.spent_today_usd;
  const cap = sp.max_daily_usd;
  $("#spend-line").textContent = spent === undefined
    ? (sp.error || "spend unknown")
    : `today ${usd(spent)}` + (cap ? ` of ${usd(cap)} budget` : " (no daily budget)");
  const frac = cap ? Math.min(1, spent / cap) : 0;
  const bar = $("#spend-bar");
  bar.style.width = `${Math.round(frac * 100)}%`;
  bar.className = frac >= 0.8 ? "high" : "";
  const sv = st.savings;  // hot/savings.savings_view: what the gate saved
  $("#saved-line").textContent = !sv ? "" : `saved ${usd4(sv.today.saved_usd)} today `
    + `(${sv.today.skipped} beats skipped, ${sv.today.decides} decides) · `
    + `${usd4(sv.week.saved_usd)} this week (${sv.week.skipped} skipped, ${sv.week.decides} decides)`;
  renderWindows(st);
}

function renderWindows(st) {
  // accounts at their provider's usage limit (home/usagewindows): held starts go at the reset
  const ul = $("#windows");
  ul.replaceChildren();
  for (const w of st.windows || []) {
    const when = new Date(w.until * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const more = (w.held.length ? ` · held: ${w.held.join(", ")}` : "")
      + (w.stopped.length ? ` · to continue: ${w.stopped.join(", ")}` : "");
    ul.append(el("li", { class: "warn", title: w.said, text: `${w.runner} (${w.who}) at its usage limit until ${when}${more}` }));
  }
  if (st.windows_error) ul.append(el("li", { class: "bad", text: st.windows_error }));
}

// --- fleet ----------------------------------------------------------------------------------
// the fleet is asked with its ETag: an unchanged fleet answers 304 and its ages move on here.
// Rows are kept by worker id and redrawn only where they changed, so a poll of 300 workers
// touches the few that moved, and the rest keep their DOM nodes.
const AGES = ["up_s", "uptime_s", "idle_s", "ask_age_s"];
const fleetRead = { path: null, tag: null, rows: [], at: 0 };

function agedRows() {
  const gone = (Date.now() - fleetRead.at) / 1000;
  return fleetRead.rows.map((row) => {
    const m = { ...row };
    for (const k of AGES) if (typeof m[k] === "number") m[k] += gone;
    return m;
  });
}

const fleetPath = () => (ui.all ? "/sessions?all=1" : "/sessions");

function moveAges() {
  // the fleet's ages and idle times, moved on from its last read without asking the server
  if (fleetRead.path === fleetPath()) renderFleet(agedRows());
}

// null: an answer to a read begun before "show all" changed — a slow host's fleet can arrive
// after the newer read's, and drawn it would hide the ended workers until the next change
async function readFleet(path) {
  const same = fleetRead.path === path && fleetRead.tag;
  const r = await fetch(`/api/v1${path}`, {
    credentials: "same-origin", headers: same ? { "If-None-Match": fleetRead.tag } : {},
  });
  if (r.status === 304) return path === fleetPath() ? agedRows() : null;
  let data = null;
  try { data = await r.json(); } catch (_) { /* an empty or non-JSON answer */ }
  if (!r.ok) throw new Error((data && data.error) || `${r.status} ${r.statusText}`);
  if (path !== fleetPath()) return null;
  Object.assign(fleetRead, { path, tag: r.headers.get("ETag"), rows: data, at: Date.now() });
  return data;
}

function fleetCells(r) {
  const isPulse = r.id === "pulse";
  const kill = isPulse || !r.alive ? "" : el("button", {
    class: "danger", type: "button", text: "Kill", "data-kill": r.id,
    onclick: (ev) => {
      ev.stopPropagation();
      if (confirm(`Kill worker ${r.id}?`)) act(`/sessions/${encodeURIComponent(r.id)}/kill`, { reason: "killed from the dashboard" }, `killed ${r.id}`);
    },
  });
  // a worker on another host says which; it opens and is driven like one here
  const where = r.host ? el("span", { class: "host", text: ` @${r.host}`, title: `runs on host ${r.host}` }) : "";
  const diff = isPulse || !r.branch ? "" : el("button", {
    type: "button", text: "Diff", "data-diff": r.id, title: "its changes (git diff)",
    onclick: (ev) => { ev.stopPropagation(); showDiff(r.id); },
  });
  const review = isPulse || !r.branch ? "" : el("button", {
    type: "button", text: "Review", "data-review": r.id, title: "review its change: comment, send, land",
    onclick: (ev) => { ev.stopPropagation(); showReview(r.id); },
  });
  return [
    el("td", {}, r.id, where, r.note ? ` ⚑ ${r.note}` : ""),
    el("td", { class: `h-${r.health}`, text: r.alive ? r.health : cause(r) }),
    el("td", { text: age(r.idle_s), "data-label": "idle" }),
    el("td", { text: age(r.up_s), "data-label": "up" }),
    el("td", { class: "branch", text: r.branch || "—", title: r.branch || "", "data-label": "branch" }),
    // today's spend, metered from the worker's CLI records; a CLI looop cannot read says so
    el("td", { text: r.id === "pulse" ? "" : r.metered === false ? "unmetered" : usd(r.cost_today_usd), "data-label": "cost" }),
    el("td", { class: "acts" }, review, diff, kill),
  ];
}

function fleetRow(r, tr) {
  // what the row shows but its ages: the cells are made again only when this moved
  const still = JSON.stringify(Object.entries(r).filter(([k]) => !AGES.includes(k)));
  if (!tr) tr = el("tr", { "data-id": r.id, onclick: () => select(r.id) });
  if (tr.still !== still) {
    tr.still = still;
    tr.replaceChildren(...fleetCells(r));
  } else {
    const [idle, up] = [tr.children[2], tr.children[3]];
    if (idle.textContent !== age(r.idle_s)) idle.textContent = age(r.idle_s);
    if (up.textContent !== age(r.up_s)) up.textContent = age(r.up_s);
  }
  const cls = r.id === ui.selected ? "sel" : "";
  if (tr.className !== cls) tr.className = cls;
  return tr;
}

function renderFleet(rows) {
  ui.fleet = rows;
  const body = $("#fleet tbody");
  const had = new Map([...body.children].map((tr) => [tr.dataset.id, tr]));
  let at = body.firstElementChild;
  for (const r of rows) {
    const tr = fleetRow(r, had.get(r.id));
    had.delete(r.id);
    if (tr === at) at = at.nextElementSibling;
    else body.insertBefore(tr, at);
  }
  for (const tr of had.values()) tr.remove();
  if (!ui.selected) {
    const first = rows.find((r) => r.id !== "pulse" && r.alive) || rows.find((r) => r.alive);
    if (first) select(first.id);
  }
}

function cause(r) {
  // how a finished worker ended: its outcome once the beat recorded it, then the session's
  // own words; a held start, until when
  const how = endedHow(r);
  return r.outcome ? `${r.outcome.replaceAll("_", " ")} · ${how}` : how;
}

function endedHow(r) {
  if (r.state === "scheduled") return r.health;
  if (r.state === "dead") return "dead (its supervisor is gone)";
  if (r.exit_code === null || r.exit_code === undefined) return r.state;
  if (r.exit_code > 128 && r.signaled !== false) return `${r.state} · signal ${r.exit_code - 128}`;
  return `${r.state} · exit ${r.exit_code}`;
}

// --- the viewer: a run, a diff --------------------------------------------------------------
function view(title, sections) {
  $("#viewer-title").textContent = title;
  const body = $("#viewer-body");
  body.replaceChildren(...sections.map(([h, text]) => el("section", {},
    el("h3", { text: h }), el("pre", { class: "wrap", text: text || "—" }))));
  const d = $("#viewer");
  if (!d.open) d.showModal();
}

async function showRun(rid) {
  try {
    const r = await api(`/runs/${encodeURIComponent(rid)}`);
    const decision = [r.action && `action: ${r.action}`, r.journal && `journal: ${r.journal}`,
      r.error && `error: ${r.error}`, `status: ${r.status}`].filter(Boolean).join("\n");
    view(`run ${rid}`, [["decision", decision], ["prompt", r.prompt_text], ["output", r.output_text]]);
  } catch (e) { toast(e.message, true); }
}

async function showDiff(id) {
  try {
    const d = await api(`/sessions/${encodeURIComponent(id)}/diff`);
    view(`diff of ${id}`, [[d.cut ? "changes (cut: `looop worker diff` shows all)" : "changes", d.diff || "no changes yet"]]);
  } catch (e) { toast(e.message, true); }
}

// --- the terminal view -------------------------------------------------------------------
const BASE = ["#000000", "#cd3131", "#0dbc79", "#e5e510", "#2472c8", "#bc3fbc", "#11a8cd", "#e5e5e5",
  "#666666", "#f14c4c", "#23d18b", "#f5f543", "#3b8eea", "#d670d6", "#29b8db", "#ffffff"];
function colour(v) {
  if (!v) return null;
  if (v[0] === "#") return v;
  const n = Number(v.slice(3));
  if (n < 16) return BASE[n];
  if (n < 232) {
    const i = n - 16;
    const c = (x) => (x ? 55 + x * 40 : 0);
    return `rgb(${c(Math.floor(i / 36))},${c(Math.floor(i / 6) % 6)},${c(i % 6)})`;
  }
  const g = 8 + (n - 232) * 10;
  return `rgb(${g},${g},${g})`;
}

function renderScreen(shot) {
  const pre = $("#term");
  const follow = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
  const frag = document.createDocumentFragment();
  let last = shot.lines.length;
  while (last > 0 && shot.lines[last - 1].length === 0 && last - 1 > shot.cursor.row) last--;
  shot.lines.slice(0, last).forEach((runs, y) => {
    let col = 0;
    for (const r of runs) {
      let fg = colour(r.fg), bg = colour(r.bg);
      if (r.inverse) [fg, bg] = [bg || "#d0d0d0", fg || "#0b0d10"];
      const s = el("span", { text: r.t });
      if (fg) s.style.color = fg;
      if (bg) s.style.background = bg;
      if (r.bold) s.style.fontWeight = "700";
      if (r.italic) s.style.fontStyle = "italic";
      if (r.underline) s.style.textDecoration = "underline";
      if (y === shot.cursor.row && !shot.cursor.hidden && col <= shot.cursor.col && shot.cursor.col < col + r.t.length) s.classList.add("cur");
      col += r.t.length;
      frag.append(s);
    }
    frag.append("\n");
  });
  pre.replaceChildren(frag);
  pre.dataset.hash = shot.screen_hash;
  if (follow) pre.scrollTop = pre.scrollHeight;
}

function paneNote(text) {
  // a one-line word in place of the screen (a host that does not answer, a refused read)
  $("#term").replaceChildren(el("span", { class: "note", text }));
}

function termTitle(id, extra) {
  const row = ui.fleet.find((r) => r.id === id);
  $("#term-id").textContent = id + (row && row.host ? ` @${row.host}` : "") + (extra ? ` (${extra})` : "");
}

function select(id) {
  if (ui.selected === id && ui.screen) return;
  ui.selected = id;
  if (ui.screen) ui.screen.close();
  clearTimeout(select.retry);
  termTitle(id);
  $("#term").textContent = "";
  for (const tr of document.querySelectorAll("#fleet tbody tr")) tr.className = tr.dataset.id === id ? "sel" : "";
  $("#send").hidden = id === "pulse";
  const es = new EventSource(`/api/v1/sessions/${encodeURIComponent(id)}/screen/stream`);
  es.onmessage = (m) => { termTitle(id); renderScreen(JSON.parse(m.data)); };
  es.addEventListener("ended", () => { es.close(); termTitle(id, "ended"); });
  es.addEventListener("unreachable", (m) => {
    // the server goes on asking the host; the screen comes back by itself
    termTitle(id, "unreachable");
    paneNote(JSON.parse(m.data).error);
  });
  es.onerror = () => {
    if (es.readyState !== EventSource.CLOSED || ui.screen !== es) return;
    // refused before it began (503: its host does not answer): say why, and try again
    // while it is still the one selected
    const again = () => { if (ui.screen === es) { ui.screen = null; select(id); } };
    api(`/sessions/${encodeURIComponent(id)}/screen`).then(() => { select.retry = setTimeout(again, 2000); }, (e) => {
      if (ui.screen !== es) return;
      const far = /unreachable/.test(e.message);
      termTitle(id, far ? "unreachable" : "");
      paneNote(e.message);
      if (far) select.retry = setTimeout(again, 5000);
    });
  };
  ui.screen = es;
}

// --- needs you: the one queue (looop needs), asks first, each with the button answering it --
function renderAsks(asks) { ui.asks = asks; drawNeeds(); }
function renderNeeds(items) { ui.needs = items; drawNeeds(); }

function askCard(a) {
  // always confirmed: an answer cannot be taken back, and a stray tap on "yes" may ship
  const send = (text) => {
    if (!confirm(`Answer ${a.worker}'s ask "${String(a.prompt || "").slice(0, 200)}" with: ${text}?`)) return;
    act(`/asks/${encodeURIComponent(a.id)}/answer`, { answer: text }, `answered ${a.id}`);
  };
  const opts = (a.options || []).map((o) => el("button", { class: "primary", type: "button", text: o, "data-option": o, onclick: () => send(o) }));
  const input = el("input", { placeholder: opts.length ? "or type one of the options" : "your answer", "aria-label": `answer to ${a.id}` });
  const form = el("form", { class: "row", onsubmit: (ev) => { ev.preventDefault(); if (input.value.trim()) send(input.value); } },
    input, el("button", { type: "submit", text: "Answer" }));
  return el("div", { class: "ask" + (ui.highlight === a.id ? " hl" : ""), id: `ask-${a.id}`, "data-ask": a.id },
    el("div", { class: "muted", text: `${a.worker} · ${a.id} · ${a.status}` }),
    el("div", { class: "q", text: a.prompt }),
    a.reference ? el("div", { class: "muted", text: `see: ${a.reference}` }) : "",
    opts.length ? el("div", { class: "row" }, ...opts) : "",
    form);
}

function openScreen(wid) {
  // its screen below, and the line that types into it
  select(wid);
  $("#term-box").scrollIntoView({ block: "start" });
  $("#send-text").focus();
}

function needButton(n) {
  const id = encodeURIComponent(n.worker);
  const b = (cls, text, fn) => el("button", { class: cls, type: "button", text, onclick: fn });
  if (n.kind === "approval" || n.kind === "input") return b("attach", "attach", () => openScreen(n.worker));
  if (n.kind === "idle") return b("attach", "type", () => openScreen(n.worker));
  if (n.kind === "pick") return b("review", "compare", () => showReview(n.worker));
  if (n.kind === "stalled") return b("unstall", "clear", () => act(`/workers/${id}/unstall`, {}, `${n.worker} is no longer stalled`));
  if (n.kind === "budget") {
    return b("continue", "continue", () => {
      const said = prompt(`Let ${n.worker} go on: its new budget in USD (empty: no budget)`, "");
      if (said === null) return;
      const body = said.trim() ? { budget_usd: Number(said) } : {};
      act(`/workers/${id}/continue`, body, `${n.worker} goes on`);
    });
  }
  return b("kill", "kill", () => {
    if (confirm(`Kill ${n.worker}?`)) act(`/sessions/${id}/kill`, { reason: `needs you: ${n.kind}` }, `killed ${n.worker}`);
  });
}

function drawNeeds() {
  const box = $("#needs-box");
  const typing = box.contains(document.activeElement) && document.activeElement.value;
  if (typing) return; // never wipe an answer being typed; the next refresh catches up
  const byId = new Map(ui.asks.map((a) => [a.id, a]));
  const cards = [], rows = [];
  for (const n of ui.needs) {
    const a = n.kind === "ask" ? byId.get(n.ref) : undefined;
    if (a) { cards.push(askCard(a)); continue; }
    const who = n.host ? `${n.worker}@${n.host}` : n.worker;
    rows.push(el("li", { "data-need": n.ref },
      el("b", { text: `${n.kind} ` }), `${who} · ${n.what} `,
      el("code", { text: n.answer }), n.kind === "ask" ? "" : needButton(n)));
  }
  $("#needs-count").textContent = ui.needs.length ? String(ui.needs.length) : "";
  $("#asks").replaceChildren(...cards);
  if (!ui.needs.length) rows.push(el("li", { class: "muted", text: "Nothing waits on you." }));
  $("#needs").replaceChildren(...rows);
  if (ui.highlight) {
    const hl = document.getElementById(`ask-${ui.highlight}`);
    if (hl) { hl.scrollIntoView({ block: "center" }); ui.highlight = null; }
  }
}

// --- spend chart, beats, journal ----------------------------------------------------------
function renderChart(daily) {
  // stacked bars in a stretched viewBox (no text inside it, so nothing distorts): workers
  // below, decides on top; labels below in HTML
  const svg = $("#chart");
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  const max = Math.max(0.01, ...daily.map((d) => d.usd));
  const w = 280 / daily.length;
  const bar = (i, y, h, cls, title) => {
    const r = document.createElementNS(ns, "rect");
    r.setAttribute("x", String(i * w + 1.5)); r.setAttribute("y", String(y));
    r.setAttribute("width", String(w - 3)); r.setAttribute("height", String(h));
    r.setAttribute("class", cls);
    const t = document.createElementNS(ns, "title");
    t.textContent = title;
    r.append(t);
    svg.append(r);
  };
  daily.forEach((d, i) => {
    const today = i === daily.length - 1 ? " today" : "";
    const title = `${d.day}: ${usd(d.usd)} (decides ${usd(d.decides || 0)}, workers ${usd(d.workers || 0)})`;
    const hw = ((d.workers || 0) / max) * 76;
    const hd = ((d.decides || 0) / max) * 76;
    if (hw + hd < 1) { bar(i, 79, 1, `empty${today}`, title); return; }
    bar(i, 80 - hw, hw, `workers${today}`, title);
    bar(i, 80 - hw - hd, hd, `decides${today}`, title);
  });
  const peak = daily.reduce((a, d) => Math.max(a, d.usd), 0);
  const sum = (k) => daily.reduce((a, d) => a + (d[k] || 0), 0);
  $("#chart-from").textContent = daily.length ? daily[0].day.slice(5) : "";
  $("#chart-peak").textContent =
    `${daily.length} days · peak ${usd(peak)} · decides ${usd(sum("decides"))} · workers ${usd(sum("workers"))}`;
  $("#chart-to").textContent = "today";
}

const pad = (n) => String(n).padStart(2, "0");
function localStamp(iso) {
  // events.jsonl stamps are UTC; shown in the browser's zone, as the journal's are local
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  return `${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

function renderBeats(beats) {
  const ol = $("#beats");
  ol.replaceChildren(...beats.map((b) => el("li", {},
    el("span", { class: "at", text: localStamp(b.at) }),
    el("span", { class: `o-${b.outcome}`, text: b.outcome }), ` ${b.why} `,
    b.run_id ? el("a", { href: `#run=${b.run_id}`, class: "run", "data-run": b.run_id, text: "run",
      onclick: (ev) => { ev.preventDefault(); showRun(b.run_id); } }) : "")));
  if (!beats.length) ol.append(el("li", { class: "muted", text: "no beats yet" }));
}

function journalItem(j) {
  return el("li", {}, el("span", { class: "at", text: j.at || "" }), j.text);
}
function renderJournal(rows) {
  const ol = $("#journal");
  ol.replaceChildren(...rows.slice().reverse().map(journalItem));
  if (!rows.length) ol.append(el("li", { class: "muted", text: "no journal yet" }));
}

function renderGoals(goals) {
  $("#goals-count").textContent = goals.length ? String(goals.length) : "";
  const ul = $("#goals");
  ul.replaceChildren(...goals.map((g) => {
    const first = (g.text.split("\n").find((l) => l.trim()) || "").replace(/^#+\s*/, "");
    return el("li", { "data-goal": g.id, title: "show its text",
      onclick: () => view(`goal ${g.id}`, [["goals/" + g.id + ".md", g.text]]) },
    el("b", { text: g.id }), ` ${first}`);
  }));
  if (!goals.length) ul.append(el("li", { class: "muted", text: "no goals — write one below" }));
}

function archivedWhy(g) {
  // why an archived goal went, how the worker serving it ended, and who archived it
  const parts = [g.reason];
  if (g.worker_outcome) parts.push(`its worker ${g.worker_outcome.replaceAll("_", " ")}`);
  if (g.by) parts.push(`by ${g.by}`);
  return parts.join(" · ");
}

function renderArchived(rows) {
  $("#archived-count").textContent = rows.length ? String(rows.length) : "";
  $("#goals-archived").replaceChildren(...rows.map((g) => el("li", { "data-archived": g.id },
    el("b", { text: g.id }), ` ${archivedWhy(g)} `, el("span", { class: "muted", text: g.headline }))));
}

function renderSchedules(rows) {
  const ul = $("#schedules");
  ul.replaceChildren(...rows.map((r) => el("li", {}, el("b", { text: r.name }),
    r.error ? el("span", { class: "o-error", text: ` ${r.error}` })
      : ` ${r.describe || ""}` + (r.next_ts ? ` · next ${localStamp(r.next_ts * 1000)}` : "")
        + (r.note ? ` · ${r.note}` : ""))));
  if (!rows.length) ul.append(el("li", { class: "muted", text: "no schedules" }));
}

// --- refresh and live events --------------------------------------------------------------
async function refresh() {
  ui.refreshTimer = null;
  const parts = [
    ["/state", renderState], [fleetPath(), renderFleet], ["/asks", renderAsks],
    ["/needs", renderNeeds],
    ["/goals", renderGoals], ["/goals/archived", renderArchived], ["/schedules", renderSchedules],
    ["/cost?days=14", (c) => renderChart(c.daily)], ["/beats?limit=12", renderBeats],
    ["/journal?tail=60", renderJournal],
  ];
  await Promise.all(parts.map(async ([path, fn]) => {
    try {
      const got = await (fn === renderFleet ? readFleet(path) : api(path));
      if (got !== null) fn(got);
    } catch (e) { if (/token/.test(e.message)) toast(e.message, true); }
  }));
}
function refreshSoon(ms = 400) {
  if (ui.refreshTimer === null) ui.refreshTimer = setTimeout(refresh, ms);
}

function live() {
  // the views are first read once the stream is open (a change after that is pushed: none
  // falls between the reads and the stream), and again at each reopen; a stream refused at
  // the start does not keep them unread
  const es = new EventSource("/api/v1/events");
  es.onopen = () => { $("#live").className = "dot on"; live.tried = true; refreshSoon(0); };
  es.onerror = () => {
    $("#live").className = "dot";
    if (!live.tried) { live.tried = true; refreshSoon(0); }
  };
  es.onmessage = (m) => {
    // every event (and `changed`: a worker's status, a goal, an ask) may move a view; one
    // refresh a moment later redraws them all (a burst of events costs one round of reads)
    JSON.parse(m.data);
    refreshSoon();
  };
}

function start() {
  const m = /ask=([\w.-]+)/.exec(location.hash);
  if (m) ui.highlight = m[1];
  $("#pause").onclick = () => act("/pulse/pause", {}, "pulse paused");
  $("#resume").onclick = () => act("/pulse/resume", {}, "pulse resumed");
  $("#send").onsubmit = (ev) => {
    ev.preventDefault();
    const t = $("#send-text");
    if (!ui.selected) return;
    act(`/sessions/${encodeURIComponent(ui.selected)}/send`, { text: t.value, enter: true });
    t.value = "";
  };
  for (const b of document.querySelectorAll("#send [data-key]")) {
    b.onclick = () => ui.selected && act(`/sessions/${encodeURIComponent(ui.selected)}/keys`, { keys: [b.dataset.key] });
  }
  $("#show-all").onchange = (ev) => { ui.all = ev.target.checked; refreshSoon(0); };
  $("#viewer-close").onclick = () => $("#viewer").close();
  $("#start").onsubmit = (ev) => {
    ev.preventDefault();
    const id = $("#start-id").value.trim();
    const body = { prompt: $("#start-prompt").value, runner: $("#start-runner").value, repo: $("#start-repo").value };
    act(`/workers/${encodeURIComponent(id)}`, body, `started ${id}`).then((ok) => {
      if (ok) { $("#start").reset(); select(id); }
    });
  };
  $("#goal").onsubmit = (ev) => {
    ev.preventDefault();
    const id = $("#goal-id").value.trim();
    act(`/goals/${encodeURIComponent(id)}`, { body: $("#goal-body").value }, `wrote goal ${id}`).then((ok) => {
      if (ok) $("#goal").reset();
    });
  };
  const held = $("#fleet-read");  // the fleet the page came with: drawn now, not after a read
  if (held) {
    Object.assign(fleetRead, { path: fleetPath(), tag: held.dataset.tag, rows: JSON.parse(held.textContent), at: Date.now() });
    renderFleet(fleetRead.rows);
  }
  live();
  // the server pushes every change (an event, a journal line, or `changed`); between them
  // the ages move on here with no request, and a rare full read is the safety net
  setInterval(moveAges, 5000);
  setInterval(refreshSoon, 60000);
}
start();
