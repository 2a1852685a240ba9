// KPI cards, Plotly charts and the per-GPU table of one run, and the compare view.
// Column names follow the output contract (vram_gpu{N}, per_gpu) and fall back to the
// older ones (kv_used_bytes_inst{N}, per_instance) when a run predates them.

/* global Plotly */

export const KPIS = [
  { key: "completion_rate", label: "completion rate", unit: "%", scale: 100, digits: 1 },
  { key: "throughput_tokens_per_sec", label: "throughput", unit: "tok/s", scale: 1, digits: 1 },
  { key: "p50_ttft_ms", label: "p50 TTFT", unit: "ms", scale: 1, digits: 2 },
  { key: "p99_ttft_ms", label: "p99 TTFT", unit: "ms", scale: 1, digits: 2 },
  { key: "p50_tpot_ms", label: "p50 TPOT", unit: "ms", scale: 1, digits: 2 },
  { key: "p99_tpot_ms", label: "p99 TPOT", unit: "ms", scale: 1, digits: 2 },
  { key: "prefix_hit_ratio", label: "hit ratio", unit: "%", scale: 100, digits: 1, alt: ["hit_ratio"] },
  { key: "preemptions", label: "preemptions", unit: "", scale: 1, digits: 0 },
];

const LAYOUT = {
  margin: { l: 60, r: 20, t: 36, b: 44 },
  height: 300,
  legend: { orientation: "h", y: -0.25 },
  font: { size: 11 },
};
const CONFIG = { displaylogo: false, responsive: true };

export function kpiValue(summary, kpi) {
  for (const k of [kpi.key, ...(kpi.alt || [])]) {
    if (typeof summary[k] === "number") return { key: k, value: summary[k] };
  }
  return { key: kpi.key, value: null };
}

export function formatKpi(kpi, value) {
  if (value === null || value === undefined) return "—";
  const v = value * kpi.scale;
  return `${v.toLocaleString("en-US", { minimumFractionDigits: kpi.digits,
    maximumFractionDigits: kpi.digits })}${kpi.unit ? " " + kpi.unit : ""}`;
}

export function renderKpis(root, summary) {
  root.replaceChildren();
  for (const kpi of KPIS) {
    const { key, value } = kpiValue(summary, kpi);
    const card = document.createElement("div");
    card.className = "kpi";
    card.id = `kpi-${kpi.key}`;
    card.dataset.testid = `kpi-${kpi.key}`;
    card.setAttribute("data-testid", `kpi-${kpi.key}`);
    card.dataset.key = key;
    card.dataset.value = value === null ? "" : String(value);
    const label = document.createElement("div");
    label.className = "kpi-label";
    label.textContent = kpi.label;
    const text = document.createElement("div");
    text.className = "kpi-value";
    text.textContent = formatKpi(kpi, value);
    card.append(label, text);
    root.append(card);
  }
}

function seconds(ts) {
  return (ts.data.time_ms || []).map((t) => t / 1000);
}

export function perGpuColumns(ts) {
  for (const re of [/^vram_gpu(\d+)$/, /^kv_used_bytes_inst(\d+)$/]) {
    const cols = ts.columns.filter((c) => re.test(c));
    if (cols.length) return cols.sort((a, b) => Number(a.match(re)[1]) - Number(b.match(re)[1]));
  }
  return ts.columns.filter((c) => c === "vram_used" || c === "kv_used_bytes").slice(0, 1);
}

export function totalKv(ts) {
  const col = ["vram_used", "kv_used_bytes"].find((c) => ts.data[c]);
  if (col) return ts.data[col];
  const cols = perGpuColumns(ts);
  return (ts.data.time_ms || []).map((_, i) => cols.reduce((s, c) => s + (ts.data[c][i] || 0), 0));
}

export function throughput(ts) {
  const t = ts.data.time_ms || [];
  const tok = ts.data.tokens_generated_delta || [];
  return t.map((ms, i) => {
    const dt = (i > 0 ? ms - t[i - 1] : (t.length > 1 ? t[1] - t[0] : ms)) / 1000;
    return dt > 0 ? (tok[i] || 0) / dt : 0;
  });
}

export function cdf(values) {
  const v = values.filter((x) => typeof x === "number" && Number.isFinite(x)).sort((a, b) => a - b);
  return { x: v, y: v.map((_, i) => (i + 1) / v.length) };
}

export function finishedColumn(reqs, col) {
  const state = reqs.data.state || [];
  return (reqs.data[col] || []).filter((_, i) => state[i] === "finished");
}

export function hitRatios(summary) {
  const out = [];
  for (const [k, v] of Object.entries(summary)) {
    if (typeof v === "number" && /hit_ratio/.test(k)) out.push([k, v]);
    if (v && typeof v === "object" && !Array.isArray(v) && /tier|hit/.test(k)) {
      for (const [tier, x] of Object.entries(v)) {
        const r = typeof x === "number" ? x : x && typeof x.hit_ratio === "number" ? x.hit_ratio : null;
        if (r !== null && (typeof x === "object" || /hit/.test(k))) out.push([`${k}.${tier}`, r]);
      }
    }
  }
  return out;
}

function plot(id, traces, title, xTitle, yTitle, extra = {}) {
  const layout = { ...LAYOUT, title: { text: title }, xaxis: { title: { text: xTitle } },
    yaxis: { title: { text: yTitle } }, ...extra };
  return Plotly.react(id, traces, layout, CONFIG);
}

export function renderRunPlots(summary, ts, reqs) {
  const x = seconds(ts);
  const gpuCols = perGpuColumns(ts);
  plot("plot-kv", gpuCols.map((c) => ({ x, y: ts.data[c].map((b) => b / 1e9), name: c,
    mode: "lines", type: "scatter" })), "KV memory per GPU", "time (s)", "GB");
  const qcols = ["queue_depth", "global_queue_depth", "active_prefill", "active_decode"]
    .filter((c) => ts.data[c]);
  plot("plot-queue", qcols.map((c) => ({ x, y: ts.data[c], name: c, mode: "lines",
    type: "scatter" })), "queue depth and active sequences", "time (s)", "requests");
  plot("plot-throughput", [{ x, y: throughput(ts), name: "generated tokens/s", mode: "lines",
    type: "scatter" }], "throughput", "time (s)", "tokens / s");
  const ttft = cdf(finishedColumn(reqs, "ttft_ms"));
  const e2e = cdf(finishedColumn(reqs, "e2e_latency_ms"));
  plot("plot-cdf", [
    { ...ttft, name: "TTFT", mode: "lines", type: "scatter", line: { shape: "hv" } },
    { ...e2e, name: "e2e latency", mode: "lines", type: "scatter", line: { shape: "hv" } },
  ], "TTFT / latency CDF (finished requests)", "ms", "fraction", { xaxis: { type: "log",
    title: { text: "ms (log)" } } });
  const hits = hitRatios(summary);
  const hitDiv = document.getElementById("plot-hit");
  hitDiv.hidden = hits.length === 0;
  if (hits.length) {
    plot("plot-hit", [{ x: hits.map((h) => h[0]), y: hits.map((h) => h[1]), type: "bar" }],
      "hit ratio per tier", "", "hit ratio", { yaxis: { range: [0, 1] } });
  }
}

export function perGpuRows(summary) {
  return Array.isArray(summary.per_gpu) ? summary.per_gpu
    : Array.isArray(summary.per_instance) ? summary.per_instance : [];
}

function cell(v) {
  if (typeof v === "number") {
    if (Number.isInteger(v)) return v.toLocaleString("en-US");
    return Math.abs(v) >= 1000 ? v.toLocaleString("en-US", { maximumFractionDigits: 0 })
      : v.toPrecision(4);
  }
  if (v === null || v === undefined) return "—";
  return typeof v === "object" ? JSON.stringify(v) : String(v);
}

export function renderTable(table, rows, rowTestId) {
  const cols = [];
  for (const r of rows) for (const k of Object.keys(r)) if (!cols.includes(k)) cols.push(k);
  const head = document.createElement("tr");
  for (const c of cols) {
    const th = document.createElement("th");
    th.textContent = c;
    head.append(th);
  }
  const thead = document.createElement("thead");
  thead.append(head);
  const tbody = document.createElement("tbody");
  for (const r of rows) {
    const tr = document.createElement("tr");
    tr.setAttribute("data-testid", rowTestId);
    for (const c of cols) {
      const td = document.createElement("td");
      td.textContent = cell(r[c]);
      tr.append(td);
    }
    tbody.append(tr);
  }
  table.replaceChildren(thead, tbody);
}

// runs: [{info, summary, ts, reqs}]
export function renderCompare(runs) {
  const name = (r) => r.info.label || r.info.id;
  const rows = KPIS.map((k) => {
    const row = { metric: k.label };
    for (const r of runs) row[name(r)] = formatKpi(k, kpiValue(r.summary, k).value);
    return row;
  });
  rows.push(Object.fromEntries([["metric", "GPUs"],
    ...runs.map((r) => [name(r), perGpuRows(r.summary).length])]));
  renderTable(document.getElementById("compare-table"), rows, "compare-row");
  plot("compare-kv", runs.map((r) => ({ x: seconds(r.ts), y: totalKv(r.ts).map((b) => b / 1e9),
    name: name(r), mode: "lines", type: "scatter" })), "KV memory (all GPUs)", "time (s)", "GB");
  plot("compare-throughput", runs.map((r) => ({ x: seconds(r.ts), y: throughput(r.ts),
    name: name(r), mode: "lines", type: "scatter" })), "throughput", "time (s)", "tokens / s");
  plot("compare-queue", runs.map((r) => ({ x: seconds(r.ts), y: r.ts.data.queue_depth || [],
    name: name(r), mode: "lines", type: "scatter" })), "queue depth", "time (s)", "requests");
  plot("compare-cdf", runs.map((r) => ({ ...cdf(finishedColumn(r.reqs, "ttft_ms")), name: name(r),
    mode: "lines", type: "scatter", line: { shape: "hv" } })), "TTFT CDF", "ms", "fraction",
  { xaxis: { type: "log", title: { text: "TTFT ms (log)" } } });
}
