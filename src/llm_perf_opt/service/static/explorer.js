"use strict";
/* The explorer: pick a setup, run it through the service's own API, show the report.
   Every figure comes from the server (the run, the two report reads, the curve, the formula). */

const API = "/analytic/wan2-1";
const $ = (id) => document.getElementById(id);
let catalogue = null;
let generation = 0;
let current = null;
let timer = null;

function si(value, unit) {
  const prefixes = [[1e15, "P"], [1e12, "T"], [1e9, "G"], [1e6, "M"], [1e3, "k"]];
  for (const [scale, prefix] of prefixes) {
    if (Math.abs(value) >= scale) return (value / scale).toFixed(2) + " " + prefix + unit;
  }
  return value.toFixed(2) + " " + unit;
}

function seconds(ms) {
  return ms >= 1000 ? (ms / 1000).toFixed(2) + " s" : ms.toFixed(1) + " ms";
}

async function getJson(url, options) {
  const response = await fetch(url, options);
  const body = await response.json();
  if (!response.ok && response.status !== 202) {
    const error = new Error(body.detail || response.statusText);
    error.status = response.status;
    throw error;
  }
  return body;
}

function fill(select, values, chosen) {
  select.innerHTML = "";
  for (const [value, text] of values) {
    const option = document.createElement("option");
    option.value = value;
    option.textContent = text;
    if (value === chosen) option.selected = true;
    select.appendChild(option);
  }
}

function profile() {
  return catalogue.profiles.find((p) => p.profile_id === $("profile").value);
}

function applyProfile() {
  const p = profile();
  $("frames").value = p.num_frames;
  $("height").value = p.height;
  $("width").value = p.width;
  $("steps").value = p.num_inference_steps === null ? "" : p.num_inference_steps;
  $("batch").value = p.batch_size;
}

function request() {
  const variant = catalogue.variants.find((v) => v.model_variant === $("variant").value);
  const p = profile();
  const overrides = {};
  const fields = [["num_frames", "frames"], ["height", "height"], ["width", "width"],
                  ["num_inference_steps", "steps"], ["batch_size", "batch"]];
  for (const [field, id] of fields) {
    const text = $(id).value.trim();
    if (text === "") continue;
    const value = Number(text);
    if (value !== p[field]) overrides[field] = value;
  }
  const body = { model_id: variant.model_id, model_variant: variant.model_variant,
                 workload_profile_id: p.profile_id };
  if (Object.keys(overrides).length) body.overrides = overrides;
  const query = new URLSearchParams({ implementation: $("implementation").value,
                                      attention_kernel: $("kernel").value, gpus: $("gpus").value });
  if ($("device").value) query.set("device", $("device").value);
  return { body, query };
}

function schedule() {
  clearTimeout(timer);
  timer = setTimeout(update, 250);
}

async function update() {
  const mine = ++generation;
  const { body, query } = request();
  $("error").textContent = "";
  $("status").textContent = "computing…";
  try {
    const accepted = await getJson(`${API}/run?${query}`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
    let status = accepted.status;
    while (status !== "done") {
      await new Promise((resolve) => setTimeout(resolve, 300));
      if (mine !== generation) return;
      const job = await getJson(`${API}/${accepted.report_id}/status`);
      if (job.status === "failed") throw new Error(job.error);
      status = job.status;
      $("status").textContent = `${accepted.report_id}: ${status}`;
    }
    const [model, summary] = await Promise.all([
      getJson(`${API}/${accepted.report_id}/model`), getJson(`${API}/${accepted.report_id}/summary`)]);
    if (mine !== generation) return;
    current = { model, summary, query };
    render(model, summary);
    $("status").textContent = `report ${accepted.report_id}`;
    if ($("device").value) await curves(model.workload, query, mine);
    else clearCurves();
  } catch (error) {
    if (mine !== generation) return;
    $("error").textContent = error.message;
    $("status").textContent = "error";
  }
}

function metricsById(model) {
  const metrics = new Map();
  for (const m of model.module_metrics) metrics.set(m.module_id, m);
  return metrics;
}

function render(model, summary) {
  const metrics = metricsById(model);
  const root = model.modules.find((m) => m.parent_id === null);
  const rootMetrics = metrics.get(root.module_id);
  $("total-flops").textContent = si(rootMetrics.total_flops_tflops * 1e12, "FLOP");
  $("total-time").textContent = $("device").value ? seconds(summary.predicted_total_time_ms) : "no device";
  $("total-weights").textContent = si(rootMetrics.memory_weights_gb * 1e9, "B");
  $("total-activations").textContent = si(rootMetrics.memory_activations_gb * 1e9, "B");
  const tbody = $("stages").querySelector("tbody");
  tbody.innerHTML = "";
  for (const childId of root.children) {
    const m = metrics.get(childId);
    const flopsShare = rootMetrics.total_flops_tflops ? m.total_flops_tflops / rootMetrics.total_flops_tflops : 0;
    const row = document.createElement("tr");
    row.innerHTML = `<td>${childId}</td>` +
      `<td><span class="bar" style="width:${(flopsShare * 120).toFixed(1)}px"></span>${(flopsShare * 100).toFixed(1)}%</td>` +
      `<td><span class="bar time" style="width:${(m.share_of_model_time * 120).toFixed(1)}px"></span>${(m.share_of_model_time * 100).toFixed(1)}%</td>`;
    tbody.appendChild(row);
  }
  renderTree(model, metrics, rootMetrics);
}

function renderTree(model, metrics, rootMetrics) {
  const nodes = new Map(model.modules.map((m) => [m.module_id, m]));
  const total = rootMetrics.total_flops_tflops || 1;
  const label = (node) => {
    const m = metrics.get(node.module_id);
    const share = m.total_flops_tflops / total;
    const span = document.createElement("span");
    span.dataset.moduleId = node.module_id;
    span.innerHTML = `<span class="share"><span class="bar" style="width:${Math.max(1, share * 60).toFixed(1)}px"></span></span>` +
      `${node.name} <small>${(share * 100).toFixed(2)}% · ${si(m.total_flops_tflops * 1e12, "FLOP")}` +
      (m.total_time_ms ? ` · ${seconds(m.total_time_ms)}` : "") + `</small>`;
    span.addEventListener("click", (event) => { event.preventDefault(); selectModule(node.module_id); });
    return span;
  };
  const build = (node, depth) => {
    if (!node.children.length) {
      const leaf = document.createElement("div");
      leaf.className = "leaf";
      leaf.appendChild(label(node));
      return leaf;
    }
    const details = document.createElement("details");
    if (depth < 1) details.open = true;
    const summary = document.createElement("summary");
    summary.appendChild(label(node));
    details.appendChild(summary);
    let built = false;
    const expand = () => {
      if (built) return;
      built = true;
      for (const childId of node.children) details.appendChild(build(nodes.get(childId), depth + 1));
    };
    if (details.open) expand();
    details.addEventListener("toggle", expand);
    return details;
  };
  const tree = $("tree");
  tree.innerHTML = "";
  tree.appendChild(build(model.modules.find((m) => m.parent_id === null), 0));
}

async function selectModule(moduleId) {
  for (const el of document.querySelectorAll(".tree .selected")) el.classList.remove("selected");
  for (const el of document.querySelectorAll(`[data-module-id="${CSS.escape(moduleId)}"]`)) el.classList.add("selected");
  $("formula-module").textContent = moduleId;
  $("formula").textContent = "…";
  const query = new URLSearchParams({ model_variant: $("variant").value, module_id: moduleId,
                                      metric: $("metric").value, implementation: $("implementation").value });
  try {
    const result = await getJson(`${API}/formula?${query}`);
    if ($("formula-module").textContent !== moduleId) return;
    katex.render(result.latex, $("formula"), { displayMode: true, throwOnError: false });
  } catch (error) {
    $("formula").textContent = moduleId.endsWith(".ops")
      ? "the module's own ops: see its parent's formula" : error.message;
  }
}

function clearCurves() {
  $("curve-frames").innerHTML = "";
  $("curve-height").innerHTML = "";
  $("peak-memory").textContent = "no device";
}

async function curves(workload, runQuery, mine) {
  const query = new URLSearchParams(runQuery);
  query.set("model_variant", $("variant").value);
  query.set("num_frames", workload.num_frames);
  query.set("height", workload.height);
  query.set("width", workload.width);
  query.set("num_inference_steps", workload.num_inference_steps);
  const curve = await getJson(`${API}/curve?${query}`);
  if (mine !== generation) return;
  $("peak-memory").textContent = curve.at.peak_memory_gb.toFixed(1) + " GB";
  plot($("curve-frames"), curve.over_frames.map((p) => [p.frames, p.seconds]), [curve.at.frames, curve.at.seconds], "frames");
  plot($("curve-height"), curve.over_height.map((p) => [p.height, p.seconds]), [curve.at.height, curve.at.seconds], "height");
}

function plot(svg, points, here, axis) {
  const all = points.concat([here]);
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const y1 = Math.max(...ys) || 1;
  const sx = (x) => 40 + ((x - x0) / (x1 - x0 || 1)) * 305;
  const sy = (y) => 180 - (y / y1) * 165;
  const path = points.map((p, i) => `${i ? "L" : "M"}${sx(p[0]).toFixed(1)},${sy(p[1]).toFixed(1)}`).join(" ");
  let content = `<line class="axis" x1="40" y1="180" x2="345" y2="180"/><line class="axis" x1="40" y1="15" x2="40" y2="180"/>` +
    `<path class="line" d="${path}"/>`;
  for (const p of points) content += `<circle class="dot" cx="${sx(p[0]).toFixed(1)}" cy="${sy(p[1]).toFixed(1)}" r="2.5"/>`;
  content += `<circle class="here" cx="${sx(here[0]).toFixed(1)}" cy="${sy(here[1]).toFixed(1)}" r="4"/>`;
  content += `<text x="40" y="195">${x0}</text><text x="345" y="195" text-anchor="end">${x1} ${axis}</text>` +
    `<text x="36" y="20" text-anchor="end">${y1.toFixed(0)} s</text><text x="36" y="180" text-anchor="end">0</text>`;
  svg.innerHTML = content;
}

async function start() {
  catalogue = await getJson(`${API}/options`);
  fill($("variant"), catalogue.variants.map((v) => [v.model_variant, v.model_variant]), "t2v-1.3b");
  fill($("profile"), catalogue.profiles.map((p) => [p.profile_id, p.profile_id]), "wan2-1-ci-tiny");
  fill($("implementation"), catalogue.implementations.map((i) => [i, i]), "official");
  fill($("device"), [["", "none (no times)"]].concat(catalogue.devices.map((d) => [d, d])), "h100-sxm");
  fill($("kernel"), catalogue.attention_kernels.map((k) => [k, k]), "fa2");
  fill($("metric"), catalogue.metrics.map((m) => [m, m]), "flops");
  applyProfile();
  $("profile").addEventListener("change", () => { applyProfile(); schedule(); });
  for (const id of ["variant", "implementation", "frames", "height", "width", "steps", "batch", "device", "gpus", "kernel"]) {
    $(id).addEventListener("change", schedule);
  }
  $("metric").addEventListener("change", () => {
    const moduleId = $("formula-module").textContent;
    if (current && moduleId !== "select a module") selectModule(moduleId);
  });
  $("settings").addEventListener("submit", (event) => { event.preventDefault(); schedule(); });
  update();
}

window.addEventListener("DOMContentLoaded", () => {
  start().catch((error) => { $("error").textContent = error.message; });
});
