// splitcomp studio: the page calls the same JSON API a script would (see /openapi.json).
// No libraries: the charts are SVG and canvas drawn here, and nothing is fetched from elsewhere.
"use strict";

const state = { status: null, model: null, selected: null, bundle: null, sort: { key: "index", dir: 1 } };
const $ = (id) => document.getElementById(id);
const SVG = "http://www.w3.org/2000/svg";
const fmt = new Intl.NumberFormat("en-US");

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function api(path, options = {}) {
  const response = await fetch(path, options);
  const text = await response.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = { detail: text }; }
  if (!response.ok) {
    const detail = data && data.detail ? data.detail : `${response.status} ${response.statusText}`;
    throw new Error(typeof detail === "string" ? detail : JSON.stringify(detail));
  }
  return data;
}

function busy(button, promise) {
  button.disabled = true;
  showError("");
  return promise.catch((error) => showError(error.message)).finally(() => { button.disabled = false; });
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

const bytes = (n) => (n === null || n === undefined ? "?" : fmt.format(Math.round(n)));
const percent = (x) => `${(100 * x).toFixed(1)}%`;
const ms = (x) => `${x.toFixed(2)} ms`;
const shape = (dims) => (dims ? dims.join("×") : "?");

// ---- 1. model ----

async function loadModels(selectId) {
  const { models } = await api("/api/models");
  const select = $("model-select");
  select.replaceChildren(...models.map((m) => el("option", { value: m.id }, m.shipped ? `${m.name} (shipped)` : m.name)));
  if (selectId) select.value = selectId;
}

function showModel(model) {
  state.model = model;
  state.selected = null;
  const inputs = Object.entries(model.inputs).map(([name, dims]) => `${name} ${shape(dims)}`).join(", ");
  $("model-summary").textContent =
    `${model.name}: ${model.cuts.length} cuts at input ${inputs}; ` +
    `${fmt.format(model.total_params)} parameters, ${fmt.format(model.total_flops)} FLOPs`;
  $("cuts-section").hidden = false;
  $("split-section").hidden = false;
  fillPreprocessing(model.defaults, model.has_labels);
  renderCuts();
  selectCut(null);
}

async function openModel(id) {
  const maxTensors = $("multi-tensor").checked ? 2 : 1;
  showModel(await api(`/api/models/${encodeURIComponent(id)}?max_tensors=${maxTensors}`));
}

async function uploadModel(event) {
  event.preventDefault();
  const file = $("model-file").files[0];
  if (!file) throw new Error("choose an .onnx or TorchScript file first");
  const form = new FormData();
  form.append("file", file);
  const inputShape = $("input-shape").value.trim();
  if (inputShape) form.append("input_shape", inputShape);
  const model = await api("/api/models", { method: "POST", body: form });
  await loadModels(model.id);
  if ($("multi-tensor").checked) await openModel(model.id);
  else showModel(model);
}

// ---- 2. cuts: sortable table and chart ----

function cutValue(cut, key) {
  if (key === "index") return cut.index;
  if (key === "tensors") return cut.tensors.join(",");
  if (key === "shape") return cut.elements ?? -1;
  if (key === "module") return cut.modules.filter(Boolean).join(",");
  return cut[key] ?? -1;
}

function renderCuts() {
  const cuts = state.model.cuts.map((c, i) => ({ ...c, index: i + 1 }));
  const { key, dir } = state.sort;
  cuts.sort((a, b) => {
    const x = cutValue(a, key), y = cutValue(b, key);
    return (x < y ? -1 : x > y ? 1 : 0) * dir;
  });
  const rows = cuts.map((c) => {
    const row = el(
      "tr",
      { "data-index": c.index - 1, "data-tensors": c.tensors.join(",") },
      el("td", { class: "num" }, c.index),
      el("td", {}, c.tensors.join(" + ")),
      el("td", {}, c.shapes.map(shape).join(" + ")),
      el("td", { class: "num" }, bytes(c.fp32_bytes)),
      el("td", { class: "num" }, bytes(c.bytes_8bit)),
      el("td", { class: "num" }, bytes(c.bytes_4bit)),
      el("td", { class: "num" }, bytes(c.bytes_2bit)),
      el("td", { class: "num" }, percent(c.head_params_share)),
      el("td", { class: "num" }, percent(c.head_flops_share)),
      el("td", {}, c.modules.filter(Boolean).join(", ")),
    );
    row.addEventListener("click", () => selectCut(c.index - 1));
    return row;
  });
  $("cut-table").querySelector("tbody").replaceChildren(...rows);
  for (const th of $("cut-table").querySelectorAll("th")) {
    th.classList.toggle("asc", th.dataset.key === key && dir > 0);
    th.classList.toggle("desc", th.dataset.key === key && dir < 0);
  }
  renderChart();
}

function renderChart() {
  const svg = $("cut-chart");
  const field = $("chart-bits").value;
  const width = 520, height = 340, left = 62, right = 14, top = 14, bottom = 38;
  const points = state.model.cuts.map((c, i) => ({ c, i, y: c[field] })).filter((p) => p.y);
  svg.replaceChildren();
  if (!points.length) return;
  const lo = Math.floor(Math.log10(Math.min(...points.map((p) => p.y))));
  const hi = Math.max(lo + 1, Math.ceil(Math.log10(Math.max(...points.map((p) => p.y)))));
  const sx = (share) => left + share * (width - left - right);
  const sy = (value) => height - bottom - ((Math.log10(value) - lo) / (hi - lo)) * (height - top - bottom);
  const add = (tag, attrs, text) => {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    if (text !== undefined) node.textContent = text;
    svg.append(node);
    return node;
  };
  for (let e = lo; e <= hi; e++) {
    const y = sy(10 ** e);
    add("line", { x1: left, x2: width - right, y1: y, y2: y, class: "grid-line" });
    add("text", { x: left - 6, y: y + 4, "text-anchor": "end" }, bytes(10 ** e));
  }
  for (const share of [0, 0.25, 0.5, 0.75, 1]) {
    const x = sx(share);
    add("line", { x1: x, x2: x, y1: top, y2: height - bottom, class: "grid-line" });
    add("text", { x, y: height - bottom + 16, "text-anchor": "middle" }, `${share * 100}%`);
  }
  add("line", { x1: left, x2: width - right, y1: height - bottom, y2: height - bottom, class: "axis" });
  add("line", { x1: left, x2: left, y1: top, y2: height - bottom, class: "axis" });
  add("text", { x: (left + width - right) / 2, y: height - 4, "text-anchor": "middle" }, "head FLOPs (share of the model)");
  add("text", { x: 12, y: (top + height - bottom) / 2, transform: `rotate(-90 12 ${(top + height - bottom) / 2})`,
    "text-anchor": "middle" }, "bytes per frame");
  for (const p of points) {
    const multi = p.c.tensors.length > 1;
    const selected = p.i === state.selected;
    const attrs = { class: `point${multi ? " multi" : ""}${selected ? " selected" : ""}`, "data-index": p.i };
    const node = multi
      ? add("rect", { ...attrs, x: sx(p.c.head_flops_share) - 5, y: sy(p.y) - 5, width: 10, height: 10 })
      : add("circle", { ...attrs, cx: sx(p.c.head_flops_share), cy: sy(p.y), r: selected ? 7 : 5 });
    const title = document.createElementNS(SVG, "title");
    title.textContent = `${p.c.tensors.join(" + ")}\n${bytes(p.y)} B, head ${percent(p.c.head_flops_share)} of FLOPs`;
    node.append(title);
    node.addEventListener("click", () => selectCut(p.i));
  }
}

function selectCut(index) {
  state.selected = index;
  const cut = index === null ? null : state.model.cuts[index];
  for (const row of $("cut-table").querySelectorAll("tbody tr")) {
    row.classList.toggle("selected", Number(row.dataset.index) === index);
  }
  renderChart();
  $("selected-cut").textContent = cut
    ? `${cut.tensors.join(" + ")} (${cut.shapes.map(shape).join(" + ")}; ${bytes(cut.bytes_4bit)} B at 4 bits, head ${percent(cut.head_flops_share)} of FLOPs)`
    : "(choose a cut above)";
  $("split-run").disabled = !cut;
}

// ---- 3. split ----

function fillPreprocessing(defaults, hasLabels) {
  $("prep-height").value = defaults.height ?? "";
  $("prep-width").value = defaults.width ?? "";
  $("prep-resize").value = defaults.resize;
  $("prep-crop").value = defaults.crop_size ?? "";
  $("prep-mean").value = defaults.mean.join(", ");
  $("prep-std").value = defaults.std.join(", ");
  $("prep-color").value = defaults.color_order;
  $("labels-source").value = hasLabels ? "model" : "none";
  $("labels-source").querySelector('option[value="model"]').disabled = !hasLabels;
  $("labels-file-label").hidden = true;
}

function triple(id, what) {
  const values = $(id).value.split(/[ ,]+/).filter(Boolean).map(Number);
  if (values.length !== 3 || values.some((v) => !Number.isFinite(v))) throw new Error(`${what}: three numbers, one per channel`);
  return values;
}

async function splitModel(event) {
  event.preventDefault();
  const cut = state.model.cuts[state.selected];
  const number = (id) => ($(id).value === "" ? null : Number($(id).value));
  const body = {
    at: cut.tensors,
    preprocessing: {
      height: number("prep-height"),
      width: number("prep-width"),
      resize: $("prep-resize").value,
      crop_size: number("prep-crop"),
      mean: triple("prep-mean", "mean"),
      std: triple("prep-std", "std"),
      color_order: $("prep-color").value,
    },
    labels: $("labels-source").value,
  };
  if (body.labels === "file") {
    const file = $("labels-file").files[0];
    if (!file) throw new Error("choose a labels file, or use the model's own labels");
    body.labels = { file: await file.text() };
  }
  const result = await api(`/api/models/${encodeURIComponent(state.model.id)}/split`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const v = result.verification;
  const spec = result.manifest.input;
  $("split-result").textContent =
    `bundle ${result.bundle_id}: input ${spec.height}×${spec.width} ${spec.color_order} (${spec.resize}); ` +
    `verified on ${v.random_samples} random inputs: head∘tail differs from the full model by at most ` +
    `${v.max_abs_diff.toExponential(2)} (${v.relative_diff.toExponential(2)} of the output range)`;
  setBundle(result.bundle_id);
}

function setBundle(id) {
  state.bundle = id;
  for (const section of ["calibrate-section", "classify-section", "download-section"]) $(section).hidden = false;
  $("download-link").href = `/api/bundles/${id}/download`;
  $("download-howto").textContent =
    `tar xzf bundle-${id}.tar.gz\n` +
    `ros2 launch splitcomp_tools robot.launch.py bundle:=$PWD/bundle-${id}   # on the robot\n` +
    `ros2 launch splitcomp_tools edge.launch.py bundle:=$PWD/bundle-${id}    # on the edge server`;
  $("calibrate-result").hidden = true;
  $("calibrate-progress").hidden = true;
  $("calibrate-status").textContent = "";
  $("classify-results").replaceChildren();
}

// ---- 4. calibrate ----

async function calibrateBundle(event) {
  event.preventDefault();
  const source = $("calibrate-source").value;
  const fields = { source, count: $("calibrate-count").value, bits: $("calibrate-bits").value, method: $("calibrate-method").value,
    eval_source: $("calibrate-eval").value.trim(), confidence: $("calibrate-confidence").value };
  let options;
  if (source === "upload") {
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) form.append(k, v);
    const files = $("calibrate-files").files;
    if (!files.length) throw new Error("choose images or a video to calibrate on");
    for (const f of files) form.append("files", f);
    options = { method: "POST", body: form };
  } else {
    const body = { source, count: Number(fields.count), bits: Number(fields.bits), method: fields.method,
      eval_source: fields.eval_source, confidence: Number(fields.confidence) };
    options = { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) };
  }
  const { job_id } = await api(`/api/bundles/${state.bundle}/calibrate`, options);
  $("calibrate-result").hidden = true;
  const bar = $("calibrate-progress");
  bar.hidden = false;
  for (;;) {
    const job = await api(`/api/jobs/${job_id}`);
    bar.value = job.progress.fraction;
    const p = job.progress;
    $("calibrate-status").textContent = job.status === "running" ? `${p.phase} ${p.done}/${p.total}` : job.status;
    if (job.status === "failed") throw new Error(`calibration failed: ${job.error}`);
    if (job.status === "done") return showCalibration(job.result);
    await new Promise((resolve) => setTimeout(resolve, 300));
  }
}

// (a) all frames, (b) confident frames, each with its 95 % Wilson interval, and (c) the mean top-5 overlap.
const AGREEMENT_HEADS = ["top-1 all frames [95 % CI]", "top-1 confident [95 % CI]", "top-5 overlap"];
const interval = ([lo, hi]) => `[${(100 * lo).toFixed(1)}–${(100 * hi).toFixed(1)}]`;
function agreementCells(stats) {
  if (!stats) return AGREEMENT_HEADS.map(() => el("td", { class: "num" }, "-"));
  return [
    el("td", { class: "num" }, `${percent(stats.rate)} ${interval(stats.interval)}`),
    el("td", { class: "num" }, stats.confident_frames ? `${percent(stats.confident_rate)} ${interval(stats.confident_interval)}` : "-"),
    el("td", { class: "num" }, stats.top5_overlap.toFixed(2)),
  ];
}

function showCalibration(result) {
  const split = new Map();
  const jpeg = [];
  for (const r of result.results) {
    if (r.codec === null) { jpeg.push(r); continue; }
    const key = `${r.method}|${r.bits}`;
    if (!split.has(key)) split.set(key, { method: r.method, bits: r.bits, stats: r.stats, codecs: {} });
    split.get(key).codecs[r.codec] = r.bytes_per_frame;
  }
  const codecs = [...state.status.codecs, ...(result.results.some((r) => r.codec === "entropy") ? ["entropy"] : [])];
  const head = el("tr", {}, el("th", {}, "method"), el("th", {}, "bits"), ...AGREEMENT_HEADS.map((h) => el("th", {}, h)),
    ...codecs.map((c) => el("th", {}, `${c} B/frame`)));
  const rows = [...split.values()].map((s) => el("tr", { class: s.method === `per_tensor_${result.method}` && s.bits === result.bits ? "best" : "" },
    el("td", {}, s.method === "clip" ? `clip ${result.clip[0]}..${result.clip[1]}` : s.method), el("td", { class: "num" }, s.bits),
    ...agreementCells(s.stats), ...codecs.map((c) => el("td", { class: "num" }, s.codecs[c] === undefined ? "-" : bytes(s.codecs[c])))));
  const judged = result.eval_images ? `${result.eval_frames} frames from ${result.eval_images} (ranges: ${result.frames} from ${result.images})` : `${result.frames} frames from ${result.images}`;
  $("calibrate-table").replaceChildren(el("caption", {}, `agreement with the unsplit model on ${judged}; confident = its top-1 probability ≥ ${result.confidence} ` +
    `(${result.confident_frames} frames); [..] = 95 % Wilson interval: ${result.dependence_note}`), head, ...rows);
  const jpegHead = el("tr", {}, el("th", {}, "what a robot would send instead"), el("th", {}, "quality/crf"), ...AGREEMENT_HEADS.map((h) => el("th", {}, h)), el("th", {}, "B/frame"));
  const jpegRows = jpeg.map((r) => el("tr", {}, el("td", {}, r.label),
    el("td", { class: "num" }, r.quality), ...agreementCells(r.stats), el("td", { class: "num" }, bytes(r.bytes_per_frame))));
  $("jpeg-table").replaceChildren(jpegHead, ...jpegRows);
  $("calibrate-plot").src = result.plot_url;
  $("calibrate-result").hidden = false;
  $("calibrate-status").textContent = `done: the bundle now defaults to ${result.method} ranges at ${result.bits} bits`;
}

// ---- 5. test images ----

function topTable(title, results) {
  return el("table", {}, el("tr", {}, el("th", { colspan: 2 }, title)),
    ...results.map((r, k) => el("tr", {}, el("td", {}, `${k + 1}. ${r.label || `class ${r.class_id}`}`), el("td", {}, percent(r.score)))));
}

// A detection bundle answers boxes (in the image's pixels): listed beside the overlay that draws them.
const BOX_HEADS = ["box F1", "recall of confident boxes [95 % CI]", "mean IoU"];
function boxCells(stats) {
  return [
    el("td", { class: "num" }, percent(stats.f1)),
    el("td", { class: "num" }, stats.confident_boxes ? `${percent(stats.confident_recall)} ${interval(stats.confident_interval)}` : "-"),
    el("td", { class: "num" }, stats.mean_iou.toFixed(3)),
  ];
}

function boxTable(title, boxes) {
  const rows = boxes.map((b, k) => el("tr", { class: "box" }, el("td", {}, `${k + 1}. ${b.label || `class ${b.class_id}`} ${percent(b.score)}`),
    el("td", {}, `x ${b.x.toFixed(0)}, y ${b.y.toFixed(0)}, ${b.width.toFixed(0)}×${b.height.toFixed(0)}`)));
  return el("table", {}, el("tr", {}, el("th", { colspan: 2 }, title)), ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 2 }, "no boxes"))]));
}

async function classifyImages(event) {
  event.preventDefault();
  const form = new FormData();
  const sample = $("classify-sample").value;
  if (sample) {
    form.append("sample", sample);
    form.append("count", $("classify-count").value);
  } else {
    const files = $("classify-files").files;
    if (!files.length) throw new Error("choose one or more images, or sample frames");
    for (const f of files) form.append("images", f);
  }
  form.append("bits", $("classify-bits").value);
  form.append("quantization", $("classify-quantization").value);
  form.append("codec", $("classify-codec").value);
  const result = await api(`/api/bundles/${state.bundle}/classify`, { method: "POST", body: form });
  const a = result.agreement;
  const boxes = a.task === "detection";
  const [heads, cells, answers] = boxes ? [BOX_HEADS, boxCells, boxTable] : [AGREEMENT_HEADS, agreementCells, topTable];
  const caption = boxes
    ? `box agreement with the unsplit model on these ${result.images.length} images (one-to-one matches at IoU ≥ 0.5); confident = an ` +
      `unsplit box's score ≥ ${a.confidence} (${a.split.confident_boxes} of ${a.split.reference_boxes} boxes); [..] = 95 % Wilson interval: ${a.dependence_note}`
    : `agreement with the unsplit model on these ${a.split.frames} images; confident = its top-1 ` +
      `probability ≥ ${a.confidence} (${a.split.confident_frames}); [..] = 95 % Wilson interval: ${a.dependence_note}`;
  const summary = el("table", {}, el("caption", {}, caption),
    el("tr", {}, el("th", {}, ""), ...heads.map((h) => el("th", {}, h))),
    el("tr", {}, el("td", {}, "split features"), ...cells(a.split)),
    el("tr", {}, el("td", {}, "JPEG-95 of the image"), ...cells(a.jpeg95)));
  $("classify-summary").replaceChildren(summary);
  $("classify-results").replaceChildren(...result.images.map((r) => {
    const ratio = r.jpeg95_bytes / r.feature_bytes;
    return el("div", { class: "result-card" },
      el("img", { src: r.overlay_url, alt: `${r.image} as the overlay node draws it` }),
      el("div", {},
        el("h3", {}, `${r.image} `, el("span", { class: r.agree ? "badge" : "badge differs" },
          `${boxes ? "boxes" : "top-1"} ${r.agree ? (boxes ? "agree" : "agrees") : (boxes ? "differ" : "differs")}`)),
        el("div", { class: "side-by-side" },
          answers(`split (${result.config.bits} bits, ${result.config.quantization}, ${result.config.codec})`, r.split),
          answers("unsplit (float32 features)", r.unsplit)),
        el("ul", { class: "facts" },
          el("li", { class: "wire" }, `on the wire: ${bytes(r.feature_bytes)} B of features; the ${r.width}×${r.height} image as JPEG-95: ` +
            `${bytes(r.jpeg95_bytes)} B (${ratio.toFixed(1)}× more)`),
          el("li", {}, `robot: preprocess ${ms(r.preprocess_ms)}, head ${ms(r.head_ms)}, encode ${ms(r.encode_ms)}; edge: tail ${ms(r.tail_ms)}`),
          ...r.warnings.map((w) => el("li", { class: "muted" }, `note: ${w}`)))));
  }));
}

// ---- 7. live ----

const live = { fps: [], p50: [], p95: [], bytes: [], rejects: [], window: 120, nodes: {} };

function drawChart(canvas, series) {
  const ctx = canvas.getContext("2d");
  const { width, height } = canvas;
  const pad = { left: 44, right: 8, top: 8, bottom: 18 };
  ctx.clearRect(0, 0, width, height);
  const values = series.flatMap((s) => s.values);
  const max = Math.max(1, ...values) * 1.15;  // counts and rates at zero still get an axis
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#5f6b7a";
  ctx.strokeStyle = "#d8dee6";
  for (let k = 0; k <= 4; k++) {
    const y = pad.top + ((height - pad.top - pad.bottom) * k) / 4;
    ctx.beginPath(); ctx.moveTo(pad.left, y); ctx.lineTo(width - pad.right, y); ctx.stroke();
    const label = max * (1 - k / 4);
    ctx.fillText(label >= 100 ? fmt.format(Math.round(label)) : label.toFixed(1), 4, y + 4);
  }
  ctx.fillText(`last ${live.window} s`, width - 70, height - 4);
  for (const s of series) {
    if (!s.values.length) continue;
    ctx.strokeStyle = s.color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    s.values.forEach((v, i) => {
      const x = pad.left + ((width - pad.left - pad.right) * (i + live.window - s.values.length)) / (live.window - 1);
      const y = height - pad.bottom - (v / max) * (height - pad.top - pad.bottom);
      if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
  }
}

function push(list, value) {
  list.push(value);
  if (list.length > live.window) list.shift();
}

function onDiagnostics(d) {
  live.nodes[d.name] = d;
  $("live-state").textContent = `pipeline nodes: ${Object.keys(live.nodes).join(", ")}`;
  $("live-nodes").replaceChildren(el("tr", {}, el("th", {}, "node"), el("th", {}, "state"), el("th", {}, "in fps"), el("th", {}, "out fps"), el("th", {}, "rejected")),
    ...Object.values(live.nodes).map((n) => el("tr", {}, el("td", {}, n.name), el("td", { class: `level-${n.level}` }, n.message),
      el("td", { class: "num" }, n.values.input_fps ?? ""), el("td", { class: "num" }, n.values.output_fps ?? ""),
      el("td", { class: "num" }, n.values.rejected ?? ""))));
  if (!d.name.endsWith("/tail_node")) return;
  const v = d.values;
  push(live.fps, Number(v.output_fps || 0));
  push(live.p50, Number(v["latency_ms.p50"] || 0));
  push(live.p95, Number(v["latency_ms.p95"] || 0));
  push(live.bytes, Number(v["bytes_per_frame.p50"] || 0));
  push(live.rejects, Object.values(live.nodes).reduce((sum, n) => sum + Number(n.values.rejected || 0), 0));
  drawChart($("chart-fps"), [{ values: live.fps, color: "#1f6feb" }]);
  drawChart($("chart-latency"), [{ values: live.p50, color: "#1f6feb" }, { values: live.p95, color: "#c62828" }]);
  drawChart($("chart-bytes"), [{ values: live.bytes, color: "#1a7f37" }]);
  drawChart($("chart-rejects"), [{ values: live.rejects, color: "#c62828" }]);
}

function onClassification(c) {
  const body = $("live-results").querySelector("tbody");
  const top = c.results.slice(0, 3).map((r) => `${r.label || `class ${r.class_id}`} ${percent(r.score)}`).join(", ");
  body.prepend(el("tr", {}, el("td", { class: "num" }, c.sequence), el("td", {}, top), el("td", { class: "num" }, bytes(c.feature_bytes)),
    el("td", { class: "num" }, c.latency_ms.toFixed(1))));
  while (body.children.length > 10) body.lastChild.remove();
}

function startLive() {
  $("live-section").hidden = false;
  $("live-namespace").textContent = `namespace ${state.status.namespace || "/"}`;
  const source = new EventSource("/api/live");
  source.addEventListener("diagnostics", (e) => onDiagnostics(JSON.parse(e.data)));
  source.addEventListener("classification", (e) => onClassification(JSON.parse(e.data)));
}

// ---- start ----

function options(select, values, chosen, label = (v) => v) {
  $(select).replaceChildren(...values.map((v) => el("option", { value: v }, label(v))));
  $(select).value = chosen;
}

async function start() {
  const status = (state.status = await api("/api/status"));
  $("server-status").textContent = status.ros ? `live: ROS namespace ${status.namespace || "/"}` : "offline tools (no ROS)";
  options("calibrate-source", [...status.frame_sources, "upload"], "generator",
    (v) => ({
      generator: "generated frames",
      "photos:train": "photos (training set)",
      "photos:test": "photos (held-out set)",
      photos: "photos (all)",
      upload: "uploaded images or video",
    })[v] || v);
  options("classify-bits", status.bits, "4", (b) => (b > 8 ? `${b} (raw floats)` : b));
  options("classify-quantization", status.quantization, "calibrated");
  options("classify-codec", status.codecs, "none");
  for (const s of status.frame_sources) $("classify-sample").append(el("option", { value: s }, s));
  await loadModels();  // the catalog's order: the model `make demo` runs first
  $("model-open").addEventListener("click", (e) => busy(e.target, openModel($("model-select").value)));
  $("upload-form").addEventListener("submit", (e) => busy($("model-upload"), uploadModel(e)));
  $("multi-tensor").addEventListener("change", () => state.model && busy($("model-open"), openModel(state.model.id)));
  $("chart-bits").addEventListener("change", () => state.model && renderChart());
  for (const th of $("cut-table").querySelectorAll("th")) {
    th.addEventListener("click", () => {
      state.sort = { key: th.dataset.key, dir: state.sort.key === th.dataset.key ? -state.sort.dir : 1 };
      renderCuts();
      selectCut(state.selected);
    });
  }
  $("labels-source").addEventListener("change", () => { $("labels-file-label").hidden = $("labels-source").value !== "file"; });
  $("split-form").addEventListener("submit", (e) => busy($("split-run"), splitModel(e)).finally(() => selectCut(state.selected)));
  $("calibrate-source").addEventListener("change", () => { $("calibrate-files-label").hidden = $("calibrate-source").value !== "upload"; });
  $("calibrate-form").addEventListener("submit", (e) => busy($("calibrate-run"), calibrateBundle(e)));
  $("classify-form").addEventListener("submit", (e) => busy($("classify-run"), classifyImages(e)));
  if (status.ros) startLive();
}

start().catch((error) => showError(error.message));
