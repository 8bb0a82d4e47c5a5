// The VoxelPrompt page: upload scans into a session, ask, stream each answer's steps, draw every
// mask over its scan (niivue when /vendor/niivue.js is installed, else the server's PNGs). Each
// mask has a checkbox in the legend; the evidence masks (kept by a program but not shown: what a
// "yes" or a volume rests on) start unticked, so the view shows what the program showed.
"use strict";

const $ = (id) => document.getElementById(id);
const COLOURS = [
  ["red", "#ff2020"], ["green", "#20e020"], ["blue", "#3060ff"],
  ["violet", "#c040ff"], ["gold", "#ffc020"], ["winter", "#20d0d0"],
];
const state = {
  files: [], session: null, viewer: null, nv: null, masks: [], measurements: [],
  current: null, busy: false,
};

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

function fileUrl(name) {
  return `/api/sessions/${state.session.id}/files/${name}`;
}

async function api(path, options) {
  const r = await fetch(path, options);
  let body = null;
  try { body = await r.json(); } catch (_) { body = { error: `HTTP ${r.status}` }; }
  if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
  return body;
}

// ---- health and viewer ----
async function start() {
  try {
    const h = await api("/api/health");
    $("health").textContent = `model ${h.model} · v${h.version}`;
    if (h.viewer === "niivue") await loadNiivue(); else viewerFallback();
  } catch (e) {
    $("health").textContent = `server unreachable: ${e.message}`;
  }
}

function loadNiivue() {
  return new Promise((resolve) => {
    const s = el("script", { src: "/vendor/niivue.js" });
    s.onload = () => {
      try {
        state.nv = new niivue.Niivue({ backColor: [0, 0, 0, 1], show3Dcrosshair: true });
        state.nv.attachToCanvas($("gl"));
        state.viewer = "niivue";
        $("viewer-note").textContent = "3-D viewer: niivue (click to move the crosshair, scroll to change slice).";
      } catch (e) { viewerFallback(`niivue failed to start (${e.message}); `); }
      resolve();
    };
    s.onerror = () => { viewerFallback(); resolve(); };
    document.body.append(s);
  });
}

function viewerFallback(why = "") {
  state.viewer = "png";
  $("viewer").classList.add("hidden");
  $("opacity").parentElement.style.display = "none";
  $("viewer-note").textContent = why + "The 3-D viewer is not installed on this server " +
    "(run scripts/fetch_web.sh); showing the server-rendered overlay pictures instead.";
}

async function refreshViewer() {
  if (!state.session) return;
  const bg = $("background").value;
  const onScan = state.masks.filter((m) => !m.scan || m.scan === bg);
  const legend = $("legend");
  legend.replaceChildren();
  onScan.forEach((m, i) => {
    const colour = COLOURS[i % COLOURS.length];
    m.colour = colour;
    const box = el("input", { type: "checkbox" });
    box.checked = m.visible;
    box.onchange = () => { m.visible = box.checked; refreshViewer(); };
    legend.append(el("li", m.evidence ? { class: "evidence" } : {}, box,
      el("span", { class: "swatch", style: `background:${colour[1]}` }),
      `${m.output} (turn ${m.turn})`));
  });
  const masks = onScan.filter((m) => m.visible);
  if (state.viewer === "niivue") {
    const input = state.session.inputs.find((s) => s.name === bg);
    const opacity = parseFloat($("opacity").value);
    const volumes = [{ url: fileUrl(input.view), name: `${input.name}.nii.gz` }];
    for (const m of masks) {
      volumes.push({ url: fileUrl(m.name), name: m.name.replaceAll("/", "_"),
        colormap: m.colour[0], opacity, cal_min: 0.5, cal_max: 1 });
    }
    try { await state.nv.loadVolumes(volumes); } catch (e) {
      $("viewer-note").textContent = `viewer: ${e.message}`;
    }
  } else {
    const pngs = $("pngs");
    pngs.replaceChildren();
    for (const m of masks) {
      if (m.png) pngs.append(el("div", {}, `${m.output} (turn ${m.turn})`, el("img", { src: fileUrl(m.png), alt: m.output })));
    }
  }
}

$("background").onchange = refreshViewer;
$("opacity").oninput = () => {
  if (state.viewer !== "niivue") return;
  const v = parseFloat($("opacity").value);
  for (let i = 1; i < state.nv.volumes.length; i++) state.nv.setOpacity(i, v);
};

// ---- choosing and uploading scans ----
function defaultName(file, i) {
  let n = file.name.replace(/\.(nii\.gz|nii|mgz|mgh|zip|dcm)$/i, "").replace(/[^A-Za-z0-9_]/g, "_");
  if (!/^[A-Za-z_]/.test(n)) n = `scan_${i + 1}`;
  return n.slice(0, 64);
}

function choose(files) {
  state.files = Array.from(files);
  const body = $("chosen").tBodies[0];
  body.replaceChildren();
  state.files.forEach((f, i) => {
    body.append(el("tr", {}, el("td", {}, f.name),
      el("td", {}, el("input", { class: "name", value: defaultName(f, i) })),
      el("td", {}, el("input", { class: "date", type: "date" }))));
  });
  $("start").disabled = state.files.length === 0;
}

$("files").onchange = (e) => choose(e.target.files);
const drop = $("drop");
drop.ondragover = (e) => { e.preventDefault(); drop.classList.add("over"); };
drop.ondragleave = () => drop.classList.remove("over");
drop.ondrop = (e) => { e.preventDefault(); drop.classList.remove("over"); choose(e.dataTransfer.files); };

$("start").onclick = async () => {
  const form = new FormData();
  const rows = $("chosen").tBodies[0].rows;
  state.files.forEach((f, i) => {
    form.append("scan", f, f.name);
    form.append("name", rows[i].querySelector(".name").value.trim());
    form.append("date", rows[i].querySelector(".date").value);
  });
  const status = $("upload-status");
  status.className = "status";
  status.textContent = "uploading…";
  $("start").disabled = true;
  try {
    state.session = await api("/api/sessions", { method: "POST", body: form });
    status.textContent = `session with ${state.session.inputs.map((s) =>
      `${s.name} (${s.shape.join("×")}, ${s.spacing_mm.map((x) => x.toFixed(1)).join("×")} mm)`).join(", ")}`;
    const bg = $("background");
    bg.replaceChildren(...state.session.inputs.map((s) => el("option", { value: s.name }, s.name)));
    state.masks = [];
    state.measurements = [];
    $("measurements").tBodies[0].replaceChildren();
    $("downloads").replaceChildren();
    $("messages").replaceChildren();
    $("prompt").disabled = false;
    $("send").disabled = false;
    listen();
    refreshViewer();
  } catch (e) {
    status.className = "status error";
    status.textContent = e.message;
  }
  $("start").disabled = false;
};

// ---- the conversation ----
function listen() {
  if (state.events) state.events.close();
  const es = new EventSource(`/api/sessions/${state.session.id}/events`);
  state.events = es;
  es.addEventListener("step", (e) => {
    const d = JSON.parse(e.data);
    if (state.current) addStep(state.current, d.index, d.step);
  });
  es.addEventListener("start", (e) => {
    const d = JSON.parse(e.data);
    if (state.current) state.current.querySelector(".head").textContent = `answer ${d.turn} — running…`;
  });
}

function addStep(card, index, s) {
  const steps = card.querySelector(".steps");
  const secs = (s.decode_seconds + s.run_seconds).toFixed(2);
  const det = el("details", { open: "" }, el("summary", {}, `step ${index} · ${secs} s (writing ${s.decode_seconds.toFixed(2)} s, running ${s.run_seconds.toFixed(2)} s)`),
    el("pre", {}, s.code));
  if (s.feedback) det.append(el("pre", { class: "feedback" }, s.feedback));
  if (s.error) det.append(el("div", { class: "err" }, s.error));
  steps.append(det);
  $("messages").scrollTop = $("messages").scrollHeight;
}

$("ask").onsubmit = async (e) => {
  e.preventDefault();
  const prompt = $("prompt").value.trim();
  if (!prompt || !state.session) return;
  $("prompt").value = "";
  $("messages").append(el("div", { class: "msg user" }, prompt));
  const card = el("div", { class: "msg answer" }, el("div", { class: "head" }, "waiting for the model…"),
    el("div", { class: "steps" }), el("div", { class: "text" }));
  $("messages").append(card);
  state.current = card;
  $("send").disabled = true;
  try {
    // ":code CODE" runs hand-written code in the session, as in `voxelprompt chat`.
    const code = prompt.startsWith(":code ") ? prompt.slice(6) : null;
    const r = await api(`/api/sessions/${state.session.id}/${code ? "code" : "ask"}`, {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(code ? { code } : { prompt }),
    });
    showAnswer(card, r);
  } catch (err) {
    card.querySelector(".head").textContent = "no answer";
    card.querySelector(".text").append(el("span", { class: "error" }, err.message));
  }
  state.current = null;
  $("send").disabled = false;
};

function showAnswer(card, r) {
  card.querySelector(".head").textContent = `answer ${r.turn} · ${r.seconds.answer_s.toFixed(1)} s · ${r.ending}`;
  const steps = card.querySelector(".steps");
  if (steps.children.length === 0) r.steps.forEach((s, i) => addStep(card, i + 1, s));
  for (const d of steps.querySelectorAll("details")) d.open = false;
  const text = card.querySelector(".text");
  text.textContent = r.answer || "(no answer)";
  if (r.error) text.append(el("div", { class: "error" }, r.error));
  const body = $("measurements").tBodies[0];
  for (const m of r.measurements) {
    state.measurements.push({ turn: r.turn, ...m });
    body.append(el("tr", {}, el("td", {}, String(r.turn)), el("td", {}, String(m.value)), el("td", {}, m.unit)));
  }
  const downloads = $("downloads");
  for (const f of r.files) {
    if (f.kind === "png" || f.kind === "trace") continue;
    downloads.append(el("li", {}, el("a", { href: fileUrl(f.name), download: f.name.replaceAll("/", "_") }, f.name), ` (${f.kind})`));
    if (f.kind === "mask") {
      const png = r.files.find((g) => g.kind === "png" && g.output === f.output);
      state.masks.push({ name: f.name, output: f.output, scan: f.scan, turn: r.turn, png: png && png.name,
        evidence: f.evidence === true, visible: f.evidence !== true });
    }
  }
  updateCsv();
  refreshViewer();
}

function updateCsv() {
  const old = $("csv");
  if (old) old.remove();
  if (state.measurements.length === 0) return;
  const csv = "turn,value,unit\n" + state.measurements.map((m) => `${m.turn},${m.value},${m.unit}`).join("\n") + "\n";
  const url = URL.createObjectURL(new Blob([csv], { type: "text/csv" }));
  $("downloads").append(el("li", { id: "csv" }, el("a", { href: url, download: "measurements.csv" }, "measurements.csv")));
}

start();
