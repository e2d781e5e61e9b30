// The review panel: a worker's change (GET /workers/ID/review) drawn from its JSON — files,
// each with hunks, whichever repository section they come in — with its verify and report;
// a click on a line comments on it, Send delivers the round, Land lands it (confirmed first),
// Decline answers the decider's proposal to land it "no" (confirmed first).
// Every value is set as text; nothing from the server is parsed as HTML.
"use strict";

const rv = { id: null, data: null, drawn: null, landed: null };
const VERIFY = { passed: ["passed", "ok"], failed: ["FAILED", "bad"], pending: ["pending (runs once the worker ends)", "warn"], none: ["none set", ""] };
const wpath = (id) => `/workers/${encodeURIComponent(id)}`;

async function showReview(id) {
  rv.id = id;
  // a worker on another host: its change is read there, and the title says where
  const row = ui.fleet.find((r) => r.id === id);
  const host = row && row.host ? row.host : "";
  $("#review-title").textContent = `review of ${id}${host ? ` @${host}` : ""}`;
  $("#review-conflict").hidden = true;
  if (rv.drawn !== id) {  // another worker's change is not left showing while this one is read
    rv.data = null;
    rv.landed = null;
    actable(false);
    $("#review-head").replaceChildren(el("span", { class: "muted", text: `reading its change${host ? ` on host ${host}` : ""}…` }));
    $("#review-body").replaceChildren();
    rv.drawn = null;
  }
  const d = $("#review");
  if (!d.open) d.showModal();
  await loadReview();
}

// Send and Land act on the change shown: none while it could not be read
function actable(on) {
  for (const b of ["#review-send", "#review-land", "#review-decline"]) $(b).disabled = !on;
}

async function loadReview() {
  const id = rv.id;  // a far host answers late: an answer for a worker no longer shown is dropped
  try {
    const got = await api(`${wpath(id)}/review`);
    if (id !== rv.id) return;
    rv.data = got;
    drawReview(rv.data);
  } catch (e) {
    if (id !== rv.id) return;
    rv.data = null;
    actable(false);
    $("#review-head").replaceChildren(el("span", { class: "bad", text: e.message }));
    $("#review-body").replaceChildren();
    rv.drawn = null;
  }
}

// a review may come as one change or as sections (one per repository): each has its files
const sections = (r) => (Array.isArray(r.repos) && r.repos.length ? r.repos : [r]);
const draftOf = (r) => { const last = (r.rounds || []).at(-1); return last && !last.sent ? last : null; };

function drawHead(r) {
  const [said, cls] = VERIFY[r.verify.state] || [r.verify.state, ""];
  const head = [
    el("span", { text: `branch ${r.branch} · ${String(r.base).slice(0, 12)}..${String(r.tip).slice(0, 12)}` }),
    el("span", { class: cls, "data-verify": r.verify.state, text: `verify: ${said}${r.verify.cmd ? ` (${r.verify.cmd})` : ""}` }),
  ];
  if (r.moved) head.push(el("span", { class: "bad", text: "the branch moved: it is not where the worker's checkout left it" }));
  if (r.uncommitted) head.push(el("span", { class: "warn", text: "its worktree holds uncommitted work (not part of this change)" }));
  // the decider's landing proposal: Land approves it (answered with the commit); Decline answers its ask "no"
  if (r.landed) head.push(el("span", { class: "ok", "data-landed": "", text: `${r.landed} — nothing left to land` }));
  else if (rv.landed && rv.landed.id === rv.id) head.push(el("span", { class: "ok", "data-landed": "", text: rv.landed.said }));
  if (r.proposal) head.push(el("span", { class: "warn", "data-proposal": r.proposal.ask, text: `the decider proposes landing this (ask ${r.proposal.ask})${r.proposal.reason ? `: ${r.proposal.reason}` : ""} — Land approves it; Decline says no` }));
  $("#review-head").replaceChildren(...head);
  actable(true);
  $("#review-land").disabled = !!r.landed;
  $("#review-decline").hidden = !r.proposal;
  const draft = draftOf(r);
  const send = $("#review-send");
  send.textContent = draft ? `Send ${draft.comments.length} comment(s)` : "Send";
  send.disabled = !draft;
}

function details(title, open, ...kids) {
  const d = el("details", {}, el("summary", { text: title }), ...kids);
  d.open = open;
  return d;
}

// several attempts at one task (ID.1…ID.N): one row each, side by side; a row opens that
// attempt's own review, where its change is read, commented on and landed
function drawAttempts(rows) {
  const cell = (label, text, cls) => el("td", { "data-label": label, class: cls || "", text });
  const money = (v) => (typeof v === "number" ? `$${v.toFixed(2)}` : "—");
  const mins = (s) => (typeof s === "number" ? `${Math.round(s / 60)}m` : "—");
  const head = el("tr", {}, ...["attempt", "outcome", "verify", "files", "lines", "commits", "spend", "time"].map((t) => el("th", { text: t })));
  const body = rows.map((a) => {
    const [said, cls] = VERIFY[a.verify] || [a.verify, ""];
    const tr = el("tr", { class: "rv-attempt", "data-attempt": a.id, tabindex: "0" },
      cell("attempt", a.id), cell("outcome", a.error ? a.error : a.outcome), cell("verify", said, cls),
      cell("files", a.files ?? "—"), cell("lines", a.added === undefined ? "—" : `+${a.added} −${a.removed}`),
      cell("commits", a.commits ?? "—"), cell("spend", money(a.spend_usd)), cell("time", mins(a.time_s)));
    tr.addEventListener("click", () => showReview(a.id));
    return tr;
  });
  $("#review-head").replaceChildren(el("span", { text: `${rows.length} attempts: open one to read its change and land it` }));
  actable(false);
  $("#review-body").replaceChildren(el("table", { class: "rv-attempts" }, el("thead", {}, head), el("tbody", {}, ...body)));
  rv.drawn = rv.id;
}

function drawReview(r) {
  if (Array.isArray(r.attempts)) return drawAttempts(r.attempts);
  drawHead(r);
  const body = [];
  if (r.verify.output) body.push(details("verify output", r.verify.state === "failed", el("pre", { class: "wrap", text: r.verify.output })));
  body.push(details(`commits (${r.commits.length})`, false,
    el("ul", { class: "rv-list" }, ...r.commits.map((c) => el("li", { text: `${c.sha.slice(0, 12)} ${c.subject}` })))));
  body.push(details("the worker's report", true, el("pre", { class: "wrap", text: r.summary || "it wrote none" })));
  const rounds = r.rounds || [];
  if (rounds.length) body.push(details(`comment rounds (${rounds.length})`, false, ...rounds.map(drawRound)));
  const parts = sections(r);
  for (const part of parts) {
    if (parts.length > 1) body.push(el("h3", { text: `repository ${part.repo || part.name || ""}` }));
    // a worker of several repos: a path (and a comment's place) names its checkout's folder
    const under = parts.length > 1 && part.name ? `${part.name}/` : "";
    for (const f of part.files || []) body.push(drawFile({ ...f, path: under + f.path }, r));
  }
  if (!parts.some((p) => (p.files || []).length)) body.push(el("p", { class: "muted", text: "no changes yet" }));
  // a comment being written outlives the redraw (a push, a landing's reload) with its text
  const open = rv.drawn === rv.id ? $("#review-body .rv-at") : null;
  const keep = open && { file: open.dataset.file, line: open.dataset.line, text: open.querySelector("textarea").value };
  $("#review-body").replaceChildren(...body);
  rv.drawn = rv.id;
  const row = keep && [...document.querySelectorAll("#review .rv-l")].find((x) => x.dataset.file === keep.file && x.dataset.line === keep.line);
  if (row) {
    lineForm(row, keep.file, Number(keep.line));
    row.nextElementSibling.querySelector("textarea").value = keep.text;
  }
}

function drawRound(rd) {
  const state = rd.sent ? `sent (${rd.sent})` : "draft — Send delivers it";
  return el("div", {}, el("h3", { text: `round ${rd.n} on ${rd.tip.slice(0, 12)}, ${state}` }),
    el("ul", { class: "rv-list" }, ...rd.comments.map((c) => el("li", { text: `${c.file ? `${c.file}:${c.line}` : "the whole change"}: ${c.text}` }))));
}

function drawFile(f, r) {
  const stat = f.binary ? "binary" : `+${f.added} -${f.removed}`;
  const code = el("div", { class: "rv-code" });
  // the comments of the latest round, under the lines they are on
  const last = (r.rounds || []).at(-1);
  const notes = (last ? last.comments : []).filter((c) => c.file === f.path);
  for (const h of f.hunks) {
    code.append(el("div", { class: "rv-hh", text: h.header }));
    let n = h.new_start;
    for (const line of h.lines) {
      const mark = line[0];
      const kind = mark === "+" ? "add" : mark === "-" ? "del" : "ctx";
      const num = mark === "+" || mark === " " ? n++ : null;  // a line at the tip has a number
      const row = el("div", { class: `rv-l ${kind}` }, el("span", { class: "n", text: num ?? "" }), el("span", { class: "t", text: line }));
      if (num !== null) {
        Object.assign(row.dataset, { file: f.path, line: String(num) });
        row.onclick = () => lineForm(row, f.path, num);
      }
      code.append(row);
      for (const c of notes.filter((c) => c.line === num)) {
        code.append(el("div", { class: `rv-note${last.sent ? " sent" : ""}`, text: c.text }));
      }
    }
  }
  if (f.binary) code.append(el("div", { class: "rv-hh", text: "(binary)" }));
  if (f.cut) code.append(el("div", { class: "rv-hh", text: "… cut: a long diff (`looop worker diff` shows it whole)" }));
  return el("section", { class: "rv-file", "data-path": f.path },
    el("h3", {}, f.path, el("span", { class: "stat", text: `${stat} (${f.status})${f.note ? ` · ${f.note}` : ""}` })), code);
}

function lineForm(row, file, line) {
  const open = row.nextElementSibling;
  if (open && open.classList.contains("rv-at")) { open.querySelector("textarea").focus(); return; }
  const text = el("textarea", { rows: "2", placeholder: `a comment on ${file}:${line}`, "aria-label": `comment on ${file}:${line}` });
  const form = el("form", { class: "rv-at stack", "data-file": file, "data-line": String(line) }, text,
    el("div", { class: "row" }, el("button", { type: "submit", class: "primary", text: "Comment" }),
      el("button", { type: "button", text: "Cancel", onclick: () => form.remove() })));
  // drafted: the form goes before the panel is drawn again, or the redraw would keep it open
  // with the comment's text as one still being written (this form, or its redrawn twin)
  const drop = () => {
    for (const f of document.querySelectorAll("#review-body .rv-at")) if (f.dataset.file === file && f.dataset.line === String(line)) f.remove();
  };
  form.onsubmit = async (ev) => {
    ev.preventDefault();
    await comment({ file, line, text: text.value }, drop);
  };
  row.after(form);
  text.focus();
}

async function comment(body, drafted) {
  try {
    const got = await api(`${wpath(rv.id)}/review/comments`, body);
    toast(`comment drafted (round ${got.round}: ${got.comments}) — Send delivers them`);
  } catch (e) { toast(e.message, true); return false; }
  if (drafted) drafted();
  await loadReview();
  return true;
}

async function sendRound() {
  try {
    const got = await api(`${wpath(rv.id)}/review/send`, {});
    toast(`round ${got.round} sent to ${rv.id}: ${got.how}`);
  } catch (e) { toast(e.message, true); }
  await loadReview();
  refreshSoon(50);
}

async function landChange() {
  const mode = $("#review-mode").value;
  const how = $("#review-mode").selectedOptions[0].textContent;
  const draft = draftOf(rv.data || {});
  const unsent = draft ? ` Your ${draft.comments.length} drafted comment(s) stay unsent.` : "";
  if (!confirm(`Land worker ${rv.id}'s change (${how})? It cannot be taken back from here.${unsent}`)) return;
  $("#review-conflict").hidden = true;
  try {
    // the tips this panel shows are what lands: a branch that moved since is refused
    const at = Object.fromEntries(sections(rv.data).map((s) => [s.name || "", s.tip]));
    const got = await api(`${wpath(rv.id)}/land`, mode ? { mode, at } : { at });
    const said = got.mode === "pr" ? `pull request opened: ${got.url}` : `landed ${rv.id} into ${got.into} at ${got.commit.slice(0, 12)}`;
    rv.landed = { id: rv.id, said };  // kept in the head while it is open: a toast goes
    toast(said);
  } catch (e) {
    if (e.data && e.data.conflict) {
      rv.conflict = e.data.conflict;
      $("#review-conflict-text").textContent = e.message;
      $("#review-conflict").hidden = false;
    } else toast(e.message, true);
  }
  await loadReview();
  refreshSoon(50);
}

// declining a proposal is its ask answered "no", as `looop answer ASK no`: nothing lands
async function declineLanding() {
  const p = rv.data && rv.data.proposal;
  if (!p) return;
  if (!confirm(`Decline the proposal to land ${rv.id} (ask ${p.ask})? Nothing lands; the decider is told no.`)) return;
  try {
    await api(`/asks/${encodeURIComponent(p.ask)}/answer`, { answer: "no" });
    toast(`declined: ask ${p.ask} answered no`);
  } catch (e) { toast(e.message, true); }
  await loadReview();
  refreshSoon(50);
}

$("#review-close").onclick = () => $("#review").close();
$("#review-send").onclick = sendRound;
$("#review-land").onclick = landChange;
$("#review-decline").onclick = declineLanding;
$("#review-sendback").onclick = async () => {
  if (await comment({ text: rv.conflict })) {
    $("#review-conflict").hidden = true;
    await sendRound();
  }
};
$("#review-all").onsubmit = async (ev) => {
  ev.preventDefault();
  if (await comment({ text: $("#review-all-text").value })) $("#review-all").reset();
};
