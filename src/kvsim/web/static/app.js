// kvsim dashboard: wires the schema form, the JSON API, live progress (server-sent events),
// the results of one run and the compare view. No framework, no build step.

import { SchemaForm } from "./form.js";
import { perGpuRows, renderCompare, renderKpis, renderRunPlots, renderTable } from "./plots.js";

const $ = (sel) => document.querySelector(sel);
const state = { form: null, validateTimer: null, current: null, runs: [], source: null };

async function api(path, options = {}) {
  const res = await fetch(path, options);
  let body = null;
  const text = await res.text();
  if (text) {
    try { body = JSON.parse(text); } catch { body = { detail: text }; }
  }
  return { ok: res.ok, status: res.status, body };
}

function postJson(path, data) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify(data) });
}

function setStatus(text, kind = "") {
  const node = $("#run-status");
  node.textContent = text;
  node.className = `status ${kind}`;
}

function setProgress(info) {
  const bar = $("#run-progress");
  bar.value = Math.round((info.progress || 0) * 100);
  bar.dataset.status = info.status;
  const counts = info.total ? ` (${info.done}/${info.total} arrivals)` : "";
  setStatus(`${info.id}: ${info.status}${counts}${info.error ? " — " + info.error : ""}`,
    info.status);
}

function showErrors(errors) {
  const unplaced = state.form.showErrors(errors);
  const box = $("#form-errors");
  box.replaceChildren(...unplaced.map((e) => {
    const li = document.createElement("li");
    li.textContent = e.path ? `${e.path}: ${e.message}` : e.message;
    return li;
  }));
  box.hidden = unplaced.length === 0;
}

function scheduleValidate() {
  clearTimeout(state.validateTimer);
  state.validateTimer = setTimeout(validateNow, 350);
}

async function validateNow() {
  const res = await postJson("/api/validate", { config: state.form.value });
  if (!res.ok) return showErrors(res.body?.errors || [{ path: "", message: res.body?.detail }]);
  showErrors(res.body.errors || []);
  $("#validity").textContent = res.body.valid ? "config valid" : "config has errors";
  $("#validity").className = res.body.valid ? "ok" : "bad";
  return res.body.valid;
}

async function uploadTrace(file, path) {
  const data = new FormData();
  data.append("file", file);
  const fmt = state.form.value?.workload?.format;
  if (typeof fmt === "string") data.append("format", fmt);
  const res = await api("/api/traces", { method: "POST", body: data });
  if (!res.ok) {
    showErrors([{ path, message: `upload failed (${res.status}): ${res.body?.detail}` }]);
    return null;
  }
  $("#upload-status").textContent =
    `uploaded ${res.body.filename} as ${res.body.id} (${res.body.num_requests} requests)`;
  return res.body.id;
}

async function loadPreset(name) {
  const res = await api(`/api/presets/${encodeURIComponent(name)}`);
  if (!res.ok) return setStatus(`cannot load preset ${name}: ${res.body?.detail}`, "failed");
  state.form.setValue(res.body);
  $("#run-label").value = name;
  showErrors([]);
  scheduleValidate();
}

async function startRun() {
  const label = $("#run-label").value.trim() || null;
  const res = await postJson("/api/runs", { config: state.form.value, label });
  if (res.status === 422) {
    showErrors(res.body.errors?.length ? res.body.errors : [{ path: "", message: res.body.detail }]);
    return setStatus(`not started: ${res.body.detail}`, "failed");
  }
  if (!res.ok) return setStatus(`not started (${res.status}): ${res.body?.detail}`, "failed");
  showErrors([]);
  watch(res.body);
  refreshRuns();
}

function watch(info) {
  state.source?.close();
  setProgress(info);
  const source = new EventSource(`/api/runs/${info.id}/events`);
  state.source = source;
  const onInfo = (e) => {
    const data = JSON.parse(e.data);
    if (data.id) setProgress(data);
    return data;
  };
  source.addEventListener("progress", onInfo);
  source.addEventListener("end", async (e) => {
    const data = onInfo(e);
    source.close();
    state.source = null;
    refreshRuns();
    if (data.status === "done") await showRun(data.id);
  });
  source.onerror = () => { source.close(); refreshRuns(); };
}

async function fetchResults(id) {
  const [info, summary, ts, reqs] = await Promise.all([
    api(`/api/runs/${id}`),
    api(`/api/runs/${id}/summary`),
    api(`/api/runs/${id}/timeseries`),
    api(`/api/runs/${id}/requests?columns=state,ttft_ms,tpot_ms,e2e_latency_ms`),
  ]);
  if (!summary.ok || !ts.ok || !reqs.ok) return null;
  return { info: info.body, summary: summary.body, ts: ts.body, reqs: reqs.body };
}

async function showRun(id) {
  const run = await fetchResults(id);
  if (!run) return setStatus(`${id}: results not available`, "failed");
  state.current = id;
  showTab("run");
  $("#results").hidden = false;
  $("#results").dataset.runId = id;
  $("#results-title").textContent = `results — ${run.info.label || id}`;
  renderKpis($("#kpis"), run.summary);
  renderRunPlots(run.summary, run.ts, run.reqs);
  renderTable($("#per-gpu-table"), perGpuRows(run.summary), "per-gpu-row");
  const notes = run.info.notes || [];
  $("#run-notes").textContent = notes.length ? `server notes: ${notes.join("; ")}` : "";
  $("#results").dataset.ready = "true";
}

function runRow(info) {
  const tr = document.createElement("tr");
  tr.dataset.runId = info.id;
  const check = document.createElement("input");
  check.type = "checkbox";
  check.className = "compare-check";
  check.dataset.runId = info.id;
  check.disabled = info.status !== "done";
  check.addEventListener("change", updateCompareButton);
  const open = button("open", () => showRun(info.id), info.status !== "done");
  const load = button("edit config", () => loadRunConfig(info.id));
  const del = button("delete", () => deleteRun(info.id));
  const cells = [check, info.label || "", info.id, info.status, info.created_at.slice(0, 19)];
  for (const c of cells) {
    const td = document.createElement("td");
    td.append(c);
    tr.append(td);
  }
  const actions = document.createElement("td");
  actions.append(open, load, del);
  tr.append(actions);
  return tr;
}

function button(text, onclick, disabled = false) {
  const b = document.createElement("button");
  b.type = "button";
  b.className = "small";
  b.textContent = text;
  b.disabled = disabled;
  b.addEventListener("click", onclick);
  return b;
}

async function refreshRuns() {
  const res = await api("/api/runs");
  if (!res.ok) return;
  const checked = new Set([...document.querySelectorAll(".compare-check:checked")]
    .map((c) => c.dataset.runId));
  state.runs = res.body;
  const rows = res.body.map(runRow);
  for (const row of rows) {
    const c = row.querySelector(".compare-check");
    c.checked = checked.has(c.dataset.runId);
  }
  $("#runs-body").replaceChildren(...rows);
  updateCompareButton();
}

function updateCompareButton() {
  const n = document.querySelectorAll(".compare-check:checked").length;
  $("#compare-button").disabled = n < 2;
  $("#compare-button").textContent = `compare selected (${n})`;
}

async function loadRunConfig(id) {
  const res = await api(`/api/runs/${id}/config`);
  if (res.ok) { state.form.setValue(res.body); scheduleValidate(); showTab("run"); }
}

async function deleteRun(id) {
  await api(`/api/runs/${id}`, { method: "DELETE" });
  if (state.current === id) $("#results").hidden = true;
  refreshRuns();
}

async function compareSelected() {
  const ids = [...document.querySelectorAll(".compare-check:checked")].map((c) => c.dataset.runId);
  const runs = (await Promise.all(ids.map(fetchResults))).filter((r) => r);
  showTab("compare");
  renderCompare(runs);
  $("#compare-view").dataset.runs = ids.join(",");
  $("#compare-view").dataset.ready = "true";
}

function showTab(name) {
  for (const t of ["run", "compare"]) {
    $(`#view-${t}`).hidden = t !== name;
    $(`#tab-${t}`).classList.toggle("active", t === name);
  }
}

async function init() {
  const [schema, catalog, presets, info, choices] = await Promise.all(
    ["/api/schema", "/api/catalog", "/api/presets", "/api/info", "/api/choices"]
      .map((p) => api(p)));
  state.form = new SchemaForm($("#config-form"), schema.body, catalog.body, {
    onChange: scheduleValidate,
    onUpload: uploadTrace,
    onLocalError: (path, message) => showErrors([{ path, message }]),
  }, choices.ok ? choices.body : {});
  const select = $("#preset-select");
  for (const p of presets.body) {
    const o = document.createElement("option");
    o.value = p.name;
    o.textContent = p.name;
    o.title = p.description;
    select.append(o);
  }
  select.addEventListener("change", () => loadPreset(select.value));
  $("#config-form").addEventListener("submit", (e) => e.preventDefault());
  $("#run-button").addEventListener("click", startRun);
  $("#compare-button").addEventListener("click", compareSelected);
  $("#tab-run").addEventListener("click", () => showTab("run"));
  $("#tab-compare").addEventListener("click", () => showTab("compare"));
  $("#limits").textContent = `limits: ${info.body.max_requests_per_run} requests and ` +
    `${info.body.max_sim_time_s} simulated s per run; uploads up to ` +
    `${Math.round(info.body.max_upload_bytes / 1048576)} MiB`;
  const start = presets.body.find((p) => p.name === "smoke") ? "smoke" : presets.body[0]?.name;
  if (start) { select.value = start; await loadPreset(start); }
  await refreshRuns();
  document.body.dataset.ready = "true";
}

init();
