// emollama web page: pick or record a clip, stream its analysis from POST /v1/analyze/stream,
// then show the label, the scores, the reasoning (time cues seek the player), the action units
// over time and the evidence per modality. Plain DOM code, no framework, nothing loaded from
// outside the server. Server text is only ever inserted with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const KEY_STORAGE = "emollama.apiKey";

// FACS names of the AUs the face stage measures, for the plot's legend.
const AU_NAMES = {
  AU01: "inner brow raiser", AU02: "outer brow raiser", AU04: "brow lowerer", AU05: "upper lid raiser",
  AU06: "cheek raiser", AU07: "lid tightener", AU09: "nose wrinkler", AU10: "upper lip raiser",
  AU12: "lip corner puller", AU14: "dimpler", AU15: "lip corner depressor", AU17: "chin raiser",
  AU20: "lip stretcher", AU23: "lip tightener", AU25: "lips part", AU26: "jaw drop", AU45: "blink",
};
const AU_COLORS = ["#d9480f", "#1c7ed6", "#2f9e44", "#ae3ec9"];
const AU_FAINT = "#c9ced6";
const SPEECH_BAND = "#e6effa";
const PLACEHOLDER = "Choose a file or record a clip, then press Analyze.";
const PLOT_PAD = { left: 30, right: 10, top: 10, bottom: 24 }; // px around the AU plot's axes
const AU_STRONG_MIN = 0.3; // an AU weaker than this at the peak is not worth a colour

const state = {
  media: null,      // the File (picked or recorded) that Analyze uploads
  mediaEl: null,    // the <video>, <audio> or <img> showing it
  objectUrl: null,
  limits: null,     // {max_upload_mb, max_duration_s} from /v1/models
  controller: null, // AbortController of the running analysis
  recorder: null,
  result: null,
};

// ---------------------------------------------------------------- server info

function authHeaders() {
  const key = sessionStorage.getItem(KEY_STORAGE);
  return key ? { Authorization: `Bearer ${key}` } : {};
}

// The server answers errors as {"error": "one line", "status": N}; anything else (a proxy's
// HTML page, say) is reduced to its status line rather than dumped on the page.
async function errorLine(response) {
  let message = response.statusText || "request failed";
  try {
    const body = await response.json();
    if (body && body.error) message = body.error;
  } catch (_) { /* not JSON */ }
  if (response.status === 429) {
    const wait = response.headers.get("Retry-After");
    if (wait) message += ` (try again in ${wait} s)`;
  }
  if (response.status === 401) $("key-box").open = true;
  return `Error ${response.status}: ${message}`;
}

async function loadServerInfo() {
  try {
    const response = await fetch("/v1/models", { headers: authHeaders() });
    if (!response.ok) {
      showError(await errorLine(response));
      return;
    }
    const info = await response.json();
    if (!state.controller) $("error").hidden = true; // e.g. a 401 fixed by entering the key
    fillSelect($("labels"), info.label_sets || [], $("labels").value || info.default_label_set);
    // Tier names are the keys of "tiers"; the choice only matters when there is more than one.
    const tiers = Array.isArray(info.tiers) ? info.tiers : Object.keys(info.tiers || {});
    if (tiers.length > 1) fillSelect($("tier"), tiers, $("tier").value || info.default_tier || tiers[0]);
    $("tier-field").hidden = tiers.length <= 1;
    state.limits = info.limits || null;
    if (state.limits) {
      const parts = [];
      if (state.limits.max_upload_mb) parts.push(`${state.limits.max_upload_mb} MB`);
      if (state.limits.max_duration_s) parts.push(`${state.limits.max_duration_s} s`);
      $("limits").textContent = parts.length ? `Up to ${parts.join(" and ")}.` : "";
    }
    $("version").textContent = `emollama ${info.emollama_version || "?"} · result schema ${info.schema_version || "?"}`;
  } catch (err) {
    showError(`Cannot reach the server: ${err.message}`);
  }
}

function fillSelect(select, values, selected) {
  select.replaceChildren(...values.map((value) => {
    const option = new Option(value, value);
    option.selected = value === selected;
    return option;
  }));
}

// Models load after the server starts listening; say so instead of letting Analyze fail with 503.
async function pollHealth(wasLoading = false) {
  const status = $("server-status");
  try {
    const response = await fetch("/v1/health", { headers: authHeaders() });
    const health = await response.json();
    if (health.status === "ready") {
      status.textContent = "Server ready.";
      if (wasLoading) loadServerInfo(); // the tiers are known once the models have loaded
      return;
    }
    status.textContent = "The server is loading its models…";
  } catch (_) {
    status.textContent = "The server does not answer; retrying…";
  }
  setTimeout(() => pollHealth(true), 2000);
}

// ---------------------------------------------------------------- media

function mediaKind(file) {
  const type = file.type || "";
  if (type.startsWith("image/")) return "image";
  if (type.startsWith("audio/")) return "audio";
  if (/\.(png|jpe?g|bmp|gif|webp)$/i.test(file.name)) return "image";
  if (/\.(wav|mp3|flac|ogg|m4a|aac|opus)$/i.test(file.name)) return "audio";
  return "video"; // a <video> element also plays most containers the browser labels oddly
}

function setMedia(file) {
  if (state.objectUrl) URL.revokeObjectURL(state.objectUrl);
  state.media = file;
  state.objectUrl = URL.createObjectURL(file);
  const kind = mediaKind(file);
  const el = document.createElement(kind === "image" ? "img" : kind);
  el.src = state.objectUrl;
  if (kind === "image") {
    el.alt = `Selected image ${file.name}`;
  } else {
    el.controls = true;
    el.preload = "auto"; // load it all so that a cue can seek anywhere at once
    if (kind === "video") el.playsInline = true;
    el.addEventListener("timeupdate", () => drawAU());
  }
  el.id = "player";
  const caption = document.createElement("p");
  caption.className = "hint";
  caption.textContent = `${file.name} · ${formatBytes(file.size)}`;
  $("media").replaceChildren(el, caption);
  state.mediaEl = el;
  clearOutput();
  $("placeholder").hidden = false;

  const maxMb = state.limits && state.limits.max_upload_mb;
  if (maxMb && file.size > maxMb * 1e6) {
    showError(`This file is ${formatBytes(file.size)}; the server accepts up to ${maxMb} MB.`);
  }
  updateButtons();
}

// Decimal units, as the server counts its --max-upload-mb.
function formatBytes(n) {
  if (n < 1e3) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  return `${(n / 1e6).toFixed(1)} MB`;
}

// Webcam + microphone through MediaRecorder; the recorded webm blob becomes the media to upload.
async function toggleRecording() {
  if (state.recorder) {
    if (state.recorder.state === "recording") state.recorder.stop();
    return;
  }
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    // Browsers only expose the camera to secure pages: https, or plain http on localhost.
    showError("Recording needs a browser with camera access on https or localhost; upload a file instead.");
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  } catch (err) {
    showError(`Camera or microphone not available: ${err.message}`);
    return;
  }
  const mimeType = ["video/webm;codecs=vp8,opus", "video/webm"].find((t) => MediaRecorder.isTypeSupported(t));
  const recorder = new MediaRecorder(stream, mimeType ? { mimeType } : undefined);
  const chunks = [];
  const started = Date.now();
  const maxS = (state.limits && state.limits.max_duration_s) || 0;
  const tick = setInterval(() => {
    const elapsed = (Date.now() - started) / 1000;
    $("record-status").textContent = `Recording… ${elapsed.toFixed(0)} s`;
    // Stay under the server's duration limit.
    if (maxS && elapsed >= maxS - 0.5 && recorder.state === "recording") recorder.stop();
  }, 250);
  recorder.ondataavailable = (e) => { if (e.data.size) chunks.push(e.data); };
  recorder.onstop = () => {
    clearInterval(tick);
    stream.getTracks().forEach((track) => track.stop());
    state.recorder = null;
    $("record").textContent = "Record from camera";
    $("record-status").textContent = "";
    // Chrome and Firefox record WebM, Safari MP4; the server sniffs the content either way.
    const type = recorder.mimeType || "video/webm";
    const file = new File(chunks, `recording.${type.includes("mp4") ? "mp4" : "webm"}`, { type });
    $("file").value = "";
    setMedia(file);
  };

  const live = document.createElement("video");
  live.muted = true; // no echo of the microphone
  live.playsInline = true;
  live.autoplay = true;
  live.srcObject = stream;
  $("media").replaceChildren(live);
  state.mediaEl = null;
  state.media = null;
  recorder.start(1000);
  state.recorder = recorder;
  $("record").textContent = "Stop recording";
  updateButtons();
}

// ---------------------------------------------------------------- analysis

async function analyze(event) {
  event.preventDefault();
  if (!state.media) return;
  const form = new FormData();
  form.append("file", state.media, state.media.name);
  const subtitle = $("subtitle").value.trim();
  if (subtitle) form.append("subtitle", subtitle);
  if ($("labels").value) form.append("labels", $("labels").value);
  if (!$("tier-field").hidden && $("tier").value) form.append("tier", $("tier").value);

  clearOutput();
  setRunning(true);
  $("progress-text").textContent = "Uploading…"; // fetch() reports no upload progress
  const controller = new AbortController();
  state.controller = controller;
  let finished = false;
  try {
    const response = await fetch("/v1/analyze/stream", {
      method: "POST", body: form, headers: authHeaders(), signal: controller.signal,
    });
    if (!response.ok) throw new Error(await errorLine(response));
    await readEvents(response, (name, data) => {
      if (name === "result" || name === "error") finished = true;
      handleEvent(name, data);
    });
    if (!finished) showError("The server closed the connection before sending a result.");
  } catch (err) {
    if (err.name === "AbortError") {
      $("placeholder").textContent = "Analysis cancelled.";
    } else {
      showError(err.message);
    }
  } finally {
    state.controller = null;
    setRunning(false);
    // For people and for the browser test alike: how the run ended.
    document.body.dataset.state = state.result ? "done" : $("error").hidden ? "idle" : "error";
  }
}

// Server-Sent Events over fetch(): EventSource cannot POST a file. Events are separated by a
// blank line; a chunk may end mid-event, so the unfinished tail waits for the next chunk.
async function readEvents(response, onEvent) {
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const blocks = buffer.split(/\r?\n\r?\n/);
    buffer = blocks.pop();
    blocks.forEach((block) => parseEvent(block, onEvent));
  }
  if (buffer.trim()) parseEvent(buffer, onEvent);
}

function parseEvent(block, onEvent) {
  let name = "message";
  const data = [];
  for (const line of block.split(/\r?\n/)) {
    if (!line || line.startsWith(":")) continue; // ":" lines are keep-alive comments
    const colon = line.indexOf(":");
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "event") name = value;
    else if (field === "data") data.push(value);
  }
  if (data.length) onEvent(name, JSON.parse(data.join("\n")));
}

function handleEvent(name, data) {
  const text = $("progress-text");
  switch (name) {
    case "queued":
      text.textContent = `Waiting for a free worker (position ${data.position} in the queue)…`;
      break;
    case "stage":
      // The face stage's last progress event is its last frame, short of the end: a later stage fills the bar.
      if ($("media-progress").value > 0) $("media-progress").value = $("media-progress").max;
      addStage(data.stage);
      text.textContent = `Running: ${data.stage}…`;
      break;
    case "media": {
      const bar = $("media-progress");
      bar.max = data.total_s || 1;
      bar.value = Math.min(data.done_s, bar.max);
      text.textContent = `Face: ${data.done_s.toFixed(1)} of ${data.total_s.toFixed(1)} s`;
      break;
    }
    case "token": {
      const pre = $("tokens");
      // A new task (label, reasoning, …) starts on its own line with its name.
      if (pre.dataset.task !== data.task) {
        pre.textContent += `${pre.textContent ? "\n" : ""}[${data.task}] `;
        pre.dataset.task = data.task;
      }
      pre.textContent += data.text;
      pre.hidden = false;
      pre.scrollTop = pre.scrollHeight;
      break;
    }
    case "result":
      finishStages();
      $("progress").hidden = true;
      renderResult(data);
      break;
    case "error":
      showError(`Error ${data.status}: ${data.error}${data.error_id ? ` (error id ${data.error_id})` : ""}`);
      break;
    default:
      break; // unknown events are for newer pages
  }
}

function addStage(stage) {
  finishStages();
  const li = document.createElement("li");
  li.textContent = stage;
  li.className = "current";
  li.setAttribute("aria-current", "step");
  $("stages").append(li);
}

function finishStages() {
  for (const li of $("stages").children) {
    li.className = "done";
    li.removeAttribute("aria-current");
  }
}

// ---------------------------------------------------------------- result

function renderResult(result) {
  state.result = result;
  $("placeholder").hidden = true;
  $("result").hidden = false;
  $("label").textContent = result.label ?? "no label";
  $("tier-used").textContent = `${result.tier} tier · ${result.label_set}`;

  const scores = Object.entries(result.scores || {}).sort((a, b) => b[1] - a[1]);
  $("scores").replaceChildren(...scores.map(([label, p], i) => {
    const li = document.createElement("li");
    if (i === 0) li.className = "best";
    const name = span("name", label);
    const bar = span("bar", "");
    bar.setAttribute("aria-hidden", "true");
    const fill = span("fill", "");
    fill.style.width = `${(p * 100).toFixed(1)}%`;
    bar.append(fill);
    li.append(name, bar, span("value", `${(p * 100).toFixed(1)}%`));
    return li;
  }));

  renderReasoning(result.reasoning || "", result.media || {});

  const warnings = result.warnings || [];
  $("warnings").replaceChildren(...warnings.map((w) => {
    const li = document.createElement("li");
    li.textContent = w;
    return li;
  }));
  $("warnings").hidden = warnings.length === 0;

  renderAULegend(result);
  drawAU();

  const evidence = result.modality_scores || [];
  $("evidence-wrap").hidden = evidence.length === 0;
  $("evidence-none").hidden = evidence.length > 0;
  $("evidence").tBodies[0].replaceChildren(...evidence.map((m) => {
    const row = document.createElement("tr");
    const [top, p] = Object.entries(m.scores).sort((a, b) => b[1] - a[1])[0] || ["–", 0];
    const cells = [m.modality.replace("_", " "), m.weight.toFixed(2), `${top} ${p.toFixed(2)}`, m.source];
    cells.forEach((value, i) => {
      const cell = document.createElement(i === 0 ? "th" : "td");
      if (i === 0) cell.scope = "row";
      cell.textContent = value;
      row.append(cell);
    });
    return row;
  }));

  const up = result.upload;
  $("upload-info").textContent = up
    ? `Analyzed ${up.name} (${formatBytes(up.bytes)}, sha256 ${up.sha256.slice(0, 12)}…)` : "";
}

function span(className, text) {
  const el = document.createElement("span");
  el.className = className;
  el.textContent = text;
  return el;
}

// "At 2.9 s, ..." becomes a button that seeks the player. "4.8 s of speech" is a duration, not a
// moment, and times past the end of the clip cannot be moments of it either.
const TIME_CUE = /(\d+(?:\.\d+)?)\s?s\b(?!\s+of\b)/g;

function renderReasoning(text, media) {
  const box = $("reasoning");
  box.replaceChildren();
  const seekable = state.mediaEl && state.mediaEl.tagName !== "IMG";
  const duration = media.duration_s ?? Infinity;
  let last = 0;
  for (const match of text.matchAll(TIME_CUE)) {
    const t = parseFloat(match[1]);
    if (!seekable || t > duration + 0.05) continue;
    box.append(text.slice(last, match.index), cueButton(t, match[0]));
    last = match.index + match[0].length;
  }
  box.append(text.slice(last));
}

function cueButton(t, caption) {
  const button = document.createElement("button");
  button.type = "button";
  button.className = "cue";
  button.dataset.time = String(t);
  button.textContent = caption;
  button.title = `Show the moment at ${t} s`;
  button.addEventListener("click", () => seek(t));
  return button;
}

function seek(t) {
  const player = state.mediaEl;
  if (!player || player.tagName === "IMG") return;
  player.pause();
  player.currentTime = t;
  // On a narrow screen the player is far above the reasoning; bring it into view.
  const box = player.getBoundingClientRect();
  if (box.bottom < 0 || box.top > window.innerHeight) player.scrollIntoView({ behavior: "smooth", block: "center" });
}

// ---------------------------------------------------------------- action units over time

// The AUs worth a colour: the strongest at the peak frame (what the reasoning cites).
function strongAUs(face) {
  const atPeak = (face.peak && face.peak.au) || {};
  return Object.entries(atPeak)
    .filter(([, v]) => v >= AU_STRONG_MIN)
    .sort((a, b) => b[1] - a[1])
    .slice(0, AU_COLORS.length)
    .map(([name]) => name);
}

function renderAULegend(result) {
  const face = result.clues && result.clues.face;
  const box = $("au-box");
  box.hidden = !face || !face.times || face.times.length === 0 || !face.au_names.length;
  if (box.hidden) return;
  const strong = strongAUs(face);
  const items = strong.map((au, i) => legendItem(AU_COLORS[i], `${au} ${AU_NAMES[au] || ""}`.trim(),
    face.peak ? ` ${face.peak.au[au].toFixed(1)} at the peak` : ""));
  items.push(legendItem(AU_FAINT, "other AUs", ""));
  if ((result.clues.voice.speech_segments || []).length) items.push(legendItem(SPEECH_BAND, "speech", ""));
  if (face.peak) {
    const li = document.createElement("li");
    li.append("Peak frame: ", cueButton(face.peak.time_s, `${face.peak.time_s.toFixed(2)} s`));
    items.push(li);
  }
  $("au-legend").replaceChildren(...items);
  const described = strong.map((au) => `${au} ${face.peak.au[au].toFixed(1)}`).join(", ");
  $("au-plot").setAttribute("aria-label", `Action-unit intensity (0 to 5) over time.` +
    (face.peak ? ` Peak at ${face.peak.time_s.toFixed(1)} s${described ? `: ${described}` : ""}.` : ""));
}

function legendItem(color, name, detail) {
  const li = document.createElement("li");
  const swatch = span("swatch", "");
  swatch.style.background = color;
  swatch.setAttribute("aria-hidden", "true");
  const strong = document.createElement("strong");
  strong.textContent = name;
  li.append(swatch, strong, detail);
  return li;
}

function drawAU() {
  const result = state.result;
  const canvas = $("au-plot");
  if (!result || $("au-box").hidden) return;
  const face = result.clues.face;
  const voice = result.clues.voice;

  // Draw at the screen's pixel density so lines stay sharp; size follows the layout.
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (!width || !height) return;
  if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
  }
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);

  const pad = PLOT_PAD;
  const plotW = width - pad.left - pad.right;
  const plotH = height - pad.top - pad.bottom;
  const tMax = Math.max(result.media.duration_s || 0, face.times[face.times.length - 1] || 0) || 1;
  let yMax = 5; // AU intensities are on the 0-5 FACS scale; go higher only if a value does
  face.au_intensity.forEach((row) => row.forEach((v) => { if (v !== null && v > yMax) yMax = v; }));
  const x = (t) => pad.left + (t / tMax) * plotW;
  const y = (v) => pad.top + plotH - (v / yMax) * plotH;

  ctx.font = "11px system-ui, sans-serif";
  ctx.fillStyle = "#5c6370";
  ctx.strokeStyle = "#eceef2";
  ctx.lineWidth = 1;

  // Speech segments as a pale band behind the lines.
  ctx.fillStyle = SPEECH_BAND;
  for (const seg of voice.speech_segments || []) ctx.fillRect(x(seg.start_s), pad.top, x(seg.end_s) - x(seg.start_s), plotH);

  // Grid and axes.
  ctx.fillStyle = "#5c6370";
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let v = 0; v <= yMax; v += 1) {
    ctx.beginPath();
    ctx.moveTo(pad.left, y(v) + 0.5);
    ctx.lineTo(pad.left + plotW, y(v) + 0.5);
    ctx.stroke();
    ctx.fillText(String(v), pad.left - 6, y(v));
  }
  const step = niceStep(tMax, Math.max(2, Math.floor(plotW / 60)));
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  for (let t = 0; t <= tMax + 1e-9; t += step) ctx.fillText(`${+t.toFixed(2)} s`, x(t), pad.top + plotH + 6);

  // One line per AU, faint ones first so the strong ones stay on top; null (no face) breaks the line.
  const strong = strongAUs(face);
  const order = face.au_names.map((_, j) => j)
    .sort((a, b) => strong.indexOf(face.au_names[a]) - strong.indexOf(face.au_names[b]));
  const drawLine = (j, color, widthPx) => {
    ctx.strokeStyle = color;
    ctx.lineWidth = widthPx;
    ctx.beginPath();
    let pen = false;
    face.times.forEach((t, i) => {
      const v = face.au_intensity[i][j];
      if (v === null || v === undefined) { pen = false; return; }
      if (pen) ctx.lineTo(x(t), y(v)); else ctx.moveTo(x(t), y(v));
      pen = true;
    });
    ctx.stroke();
  };
  ctx.lineJoin = "round";
  for (const j of order) {
    const rank = strong.indexOf(face.au_names[j]);
    if (rank < 0) drawLine(j, AU_FAINT, 1);
  }
  for (const j of order) {
    const rank = strong.indexOf(face.au_names[j]);
    if (rank >= 0) drawLine(j, AU_COLORS[rank], 2.25);
  }

  // The peak frame: a dashed line with its time.
  if (face.peak) {
    const px = Math.round(x(face.peak.time_s)) + 0.5;
    ctx.strokeStyle = "#212529";
    ctx.lineWidth = 1;
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    ctx.moveTo(px, pad.top);
    ctx.lineTo(px, pad.top + plotH);
    ctx.stroke();
    ctx.setLineDash([]);
    ctx.fillStyle = "#212529";
    ctx.textAlign = px > pad.left + plotW - 70 ? "right" : "left";
    ctx.textBaseline = "top";
    ctx.fillText(`peak ${face.peak.time_s.toFixed(1)} s`, px + (ctx.textAlign === "left" ? 4 : -4), pad.top + 2);
  }

  // Where the player is now.
  const player = state.mediaEl;
  if (player && player.tagName !== "IMG" && player.currentTime > 0) {
    ctx.strokeStyle = "#e03131";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.moveTo(x(player.currentTime), pad.top);
    ctx.lineTo(x(player.currentTime), pad.top + plotH);
    ctx.stroke();
  }
  canvas.dataset.drawn = "true"; // for the browser test: the plot was painted
  canvas.dataset.tMax = String(tMax);
}

function niceStep(range, maxTicks) {
  const raw = range / maxTicks;
  const power = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 5, 10].map((m) => m * power).find((s) => s >= raw);
}

// A click on the plot seeks the player to that time.
function seekFromPlot(event) {
  const canvas = $("au-plot");
  const rect = canvas.getBoundingClientRect();
  const tMax = parseFloat(canvas.dataset.tMax || "0");
  const frac = (event.clientX - rect.left - PLOT_PAD.left) / (rect.width - PLOT_PAD.left - PLOT_PAD.right);
  if (tMax && frac >= 0 && frac <= 1) seek(frac * tMax);
}

// ---------------------------------------------------------------- page state

function showError(message) {
  const el = $("error");
  el.textContent = message;
  el.hidden = false;
  $("placeholder").hidden = true;
  document.body.dataset.state = "error";
}

function clearOutput() {
  state.result = null;
  $("placeholder").textContent = PLACEHOLDER;
  $("error").hidden = true;
  $("result").hidden = true;
  $("progress").hidden = true;
  $("stages").replaceChildren();
  $("tokens").textContent = "";
  $("tokens").hidden = true;
  delete $("tokens").dataset.task;
  $("media-progress").value = 0;
  $("progress-text").textContent = "";
  delete $("au-plot").dataset.drawn;
}

function setRunning(running) {
  document.body.dataset.state = running ? "running" : "idle";
  $("progress").hidden = !running;
  $("placeholder").hidden = running || Boolean(state.result) || !$("error").hidden;
  $("cancel").hidden = !running;
  updateButtons();
}

function updateButtons() {
  const running = Boolean(state.controller);
  $("analyze").disabled = running || !state.media || Boolean(state.recorder);
  $("file").disabled = running || Boolean(state.recorder);
  $("record").disabled = running;
}

function init() {
  const keyInput = $("api-key");
  keyInput.value = sessionStorage.getItem(KEY_STORAGE) || "";
  keyInput.addEventListener("change", () => {
    const key = keyInput.value.trim();
    if (key) sessionStorage.setItem(KEY_STORAGE, key); else sessionStorage.removeItem(KEY_STORAGE);
    loadServerInfo(); // the label sets may have been refused without the key
  });
  $("file").addEventListener("change", () => { if ($("file").files[0]) setMedia($("file").files[0]); });
  $("record").addEventListener("click", toggleRecording);
  $("analyze-form").addEventListener("submit", analyze);
  $("cancel").addEventListener("click", () => state.controller && state.controller.abort());
  $("au-plot").addEventListener("click", seekFromPlot);
  new ResizeObserver(() => drawAU()).observe($("au-plot"));
  loadServerInfo();
  pollHealth();
}

init();
