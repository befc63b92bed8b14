// handgrad explore: the page. Plain JavaScript, no libraries; every number it shows comes
// from the server, which computes it with the run's own model.
"use strict";

const CLASS_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
const POLL_MS = 1000;
let poll = null;

// ---- small helpers -------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

async function api(path, body) {
  const init = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const r = await fetch(path, init);
  const data = await r.json();
  if (!r.ok) throw new Error(data.error || r.statusText);
  return data;
}

function problem(e) {
  const p = document.getElementById("problem");
  if (e) { p.textContent = String(e.message || e); p.hidden = false; } else p.hidden = true;
}

function fmt(x, digits = 4) {
  if (x === null || x === undefined || !Number.isFinite(x)) return "–";
  return Math.abs(x) >= 100 ? x.toFixed(1) : x.toPrecision(digits);
}

const runUrl = (name) => "/api/runs/" + encodeURIComponent(name);

// Draws `pixels` (values in [0, 1], `side`×`side`) on a canvas of that size, grey.
function paint(canvas, pixels, side) {
  canvas.width = side; canvas.height = side;
  const ctx = canvas.getContext("2d");
  const img = ctx.createImageData(side, side);
  for (let i = 0; i < side * side; i++) {
    const g = Math.round(255 * Math.min(1, Math.max(0, pixels[i])));
    img.data[4 * i] = g; img.data[4 * i + 1] = g; img.data[4 * i + 2] = g; img.data[4 * i + 3] = 255;
  }
  ctx.putImageData(img, 0, 0);
}

// ---- routing ---------------------------------------------------------------------------

function route() {
  clearInterval(poll);
  problem(null);
  const m = location.hash.match(/^#\/run\/(.+)$/);
  if (m) runPage(decodeURIComponent(m[1])).catch(problem);
  else runsPage().catch(problem);
}
window.addEventListener("hashchange", route);

// ---- the runs ------------------------------------------------------------------------

async function runsPage() {
  document.getElementById("where").textContent = "";
  const app = document.getElementById("app");
  const body = el("tbody");
  app.replaceChildren(
    el("h1", { text: "Runs" }),
    el("p", { class: "hint", text: "Every run folder under the runs folder. Losses are per pixel on the test images; the mean image and PCA (with as many components as the code has numbers) are what the autoencoder should beat. A run being trained elsewhere grows here as it goes." }),
    el("table", { class: "runs" },
      el("thead", {}, el("tr", {}, ...["run", "model", "dataset", "epochs", "test loss", "mean image", "PCA", "state"].map((h) => el("th", { text: h })))),
      body));
  const fill = async () => {
    const runs = await api("/api/runs");
    body.replaceChildren(...runs.map((r) => el("tr", { class: "run" },
      el("td", {}, el("a", { href: "#/run/" + encodeURIComponent(r.name), text: r.name })),
      el("td", { text: `${r.label}, ${r.parameters.toLocaleString("en")} parameters${r.variational ? ", VAE" : ""}${r.corrupt ? ", denoiser (" + r.corrupt + ")" : ""}` }),
      el("td", { text: r.dataset }),
      el("td", { class: "num", text: `${r.epochs_done} / ${r.epochs}` }),
      el("td", { class: "num", text: fmt(r.clean_pixel_loss ?? r.test_loss) }),
      el("td", { class: "num", text: fmt(r.mean_image) }),
      el("td", { class: "num", text: fmt(r.pca) }),
      el("td", {}, el("span", { class: "state " + r.state, text: r.state.replace("-", " ") })))));
    if (runs.length === 0) body.replaceChildren(el("tr", {}, el("td", { colspan: 8, text: "No runs yet: train one (handgrad train --out runs/NAME)." })));
  };
  await fill();
  poll = setInterval(() => fill().catch(problem), POLL_MS);
}

// ---- one run -------------------------------------------------------------------------

async function runPage(name) {
  document.getElementById("where").textContent = "› " + name;
  const app = document.getElementById("app");
  let detail = await api(runUrl(name));
  const info = detail.info;
  const title = el("h1", { text: `${name}: ${info.label}` });
  const status = el("p", { class: "hint", id: "status" });
  const chart = el("canvas", { id: "loss", width: 640, height: 280 });
  const snapImg = el("img", { id: "snapshot", alt: "reconstructions after an epoch" });
  const snapLabel = el("div", { class: "caption" });
  const snapSlider = el("input", { type: "range", min: 0, max: 0, value: 0, id: "snapshot-epoch" });
  app.replaceChildren(title, status,
    el("h2", { text: "Training" }),
    el("div", { class: "row" },
      el("div", { class: "panel" }, el("h3", { text: "Loss per epoch" }), chart,
        el("div", { class: "caption", text: "Blue: training loss (mean over the epoch); red: validation loss after the epoch; dashed: the mean-image and PCA baselines on the test images (not drawn for a VAE, whose objective is in another unit)." })),
      el("div", { class: "panel" }, el("h3", { text: "Reconstructions after an epoch" }), snapSlider, snapLabel, snapImg)));

  const showDetail = () => {
    const i = detail.info;
    status.textContent = `${i.objective}. ${i.epochs_done} of ${i.epochs} epochs, ${i.state.replace("-", " ")}; ` +
      `test loss ${fmt(i.clean_pixel_loss ?? i.test_loss)} per pixel (mean image ${fmt(i.mean_image)}, PCA ${fmt(i.pca)}). Code: ${i.latent} numbers.`;
    drawLoss(chart, detail);
    const snaps = detail.snapshots;
    snapSlider.max = Math.max(0, snaps.length - 1);
    if (snaps.length > 0) {
      if (snapSlider.dataset.touched !== "1") snapSlider.value = snaps.length - 1;
      showSnapshot();
    } else snapLabel.textContent = "No snapshot yet.";
  };
  const showSnapshot = () => {
    const e = detail.snapshots[Number(snapSlider.value)];
    if (e === undefined) return;
    snapLabel.textContent = `After epoch ${e} (slide to see other epochs). Top: test images; bottom: their reconstructions.`;
    const src = runUrl(name) + `/files/reconstructions/epoch_${String(e).padStart(3, "0")}.png`;
    if (snapImg.getAttribute("src") !== src) snapImg.src = src;
  };
  snapSlider.addEventListener("input", () => { snapSlider.dataset.touched = "1"; showSnapshot(); });
  showDetail();

  const explorer = el("div", { id: "explorer" });
  app.append(explorer);
  let opened = false;
  const openExplorer = async () => {
    if (opened || !detail.info.has_model) {
      if (!detail.info.has_model) explorer.replaceChildren(el("p", { class: "hint", text: "The code map opens once the run has finished its first epoch." }));
      return;
    }
    opened = true;
    await codeSpace(explorer, name, detail.info);
  };
  await openExplorer();
  poll = setInterval(async () => {
    try {
      const fresh = await api(runUrl(name));
      if (fresh.history.length !== detail.history.length || fresh.info.state !== detail.info.state) {
        detail = fresh;
        showDetail();
        await openExplorer();
      }
    } catch (e) { problem(e); }
  }, POLL_MS);
}

// The loss chart, drawn from the run's metrics.
function drawLoss(canvas, detail) {
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, L = 70, R = 20, T = 16, B = 44;
  ctx.clearRect(0, 0, W, H);
  ctx.fillStyle = "#fff"; ctx.fillRect(0, 0, W, H);
  const h = detail.history, info = detail.info;
  if (h.length === 0) { ctx.fillStyle = "#555"; ctx.font = "14px sans-serif"; ctx.fillText("No epoch finished yet.", L, H / 2); return; }
  const levels = info.variational ? [] : [["mean image", "#7f7f7f", info.mean_image], ["PCA", "#2ca02c", info.pca]].filter((l) => l[2] != null);
  const ys = h.flatMap((m) => [m.train_loss, m.val_loss]).concat(levels.map((l) => l[2])).filter(Number.isFinite);
  let lo = Math.min(...ys), hi = Math.max(...ys);
  const pad = (hi - lo) * 0.08 || Math.abs(hi) * 0.1 || 1; lo -= pad; hi += pad;
  const xmax = Math.max(info.epochs, h.length, 2);
  const X = (e) => L + (W - L - R) * (e - 1) / (xmax - 1);
  const Y = (v) => T + (H - T - B) * (hi - v) / (hi - lo);
  ctx.strokeStyle = "#333"; ctx.lineWidth = 1;
  ctx.beginPath(); ctx.moveTo(L, T); ctx.lineTo(L, H - B); ctx.lineTo(W - R, H - B); ctx.stroke();
  ctx.fillStyle = "#333"; ctx.font = "12px sans-serif"; ctx.textAlign = "right";
  for (let k = 0; k <= 4; k++) {
    const v = lo + (hi - lo) * k / 4;
    ctx.fillText(fmt(v, 3), L - 6, Y(v) + 4);
  }
  ctx.textAlign = "center";
  const step = Math.max(1, Math.ceil(xmax / 10));
  for (let e = 1; e <= xmax; e += step) ctx.fillText(String(e), X(e), H - B + 16);
  ctx.fillText("epoch", (L + W - R) / 2, H - 8);
  ctx.save(); ctx.translate(16, (T + H - B) / 2); ctx.rotate(-Math.PI / 2);
  ctx.fillText(`loss (${info.objective.split(",")[0]})`.slice(0, 48), 0, 0); ctx.restore();
  for (const [label, color, v] of levels) {
    ctx.strokeStyle = color; ctx.setLineDash([7, 5]); ctx.lineWidth = 2;
    ctx.beginPath(); ctx.moveTo(L, Y(v)); ctx.lineTo(W - R, Y(v)); ctx.stroke();
    ctx.setLineDash([]); ctx.fillStyle = color; ctx.textAlign = "right";
    ctx.fillText(`${label} ${fmt(v)}`, W - R - 4, Y(v) - 5);
  }
  for (const [key, color] of [["train_loss", "#1f77b4"], ["val_loss", "#d62728"]]) {
    ctx.strokeStyle = color; ctx.fillStyle = color; ctx.lineWidth = 2; ctx.beginPath();
    h.forEach((m, i) => { const x = X(m.epoch), y = Y(m[key]); if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y); });
    ctx.stroke();
    for (const m of h) { ctx.beginPath(); ctx.arc(X(m.epoch), Y(m[key]), 3, 0, 2 * Math.PI); ctx.fill(); }
  }
}

// ---- the code space ------------------------------------------------------------------

async function codeSpace(root, name, info) {
  const map = await api(runUrl(name) + "/map");
  const n = map.labels.length, d = map.latent;
  const dot = (a, b) => a.reduce((s, v, i) => s + v * b[i], 0);
  const codeOf = (i) => map.codes.slice(i * d, (i + 1) * d);
  const project = (code) => {
    const c = code.map((v, i) => v - map.mean[i]);
    return [dot(c, map.axes[0]), dot(c, map.axes[1])];
  };
  // The other components are held at `base`: the codes' mean, or one test image's code.
  let base = map.mean.slice();
  const codeAt = (x, y) => {
    const [bx, by] = project(base);
    return base.map((v, i) => v + (x - bx) * map.axes[0][i] + (y - by) * map.axes[1][i]);
  };

  // Map geometry.
  const S = 520, M = 46;
  const xs = [], ys = [];
  for (let i = 0; i < n; i++) { xs.push(map.points[2 * i]); ys.push(map.points[2 * i + 1]); }
  const span = (v) => { const lo = Math.min(...v), hi = Math.max(...v), p = (hi - lo) * 0.06 || 1; return [lo - p, hi + p]; };
  let [x0, x1] = span(xs), [y0, y1] = span(ys);
  if (info.variational) { x0 = Math.min(x0, -3.2); x1 = Math.max(x1, 3.2); y0 = Math.min(y0, -3.2); y1 = Math.max(y1, 3.2); }
  const toPx = (x, y) => [M + (S - 2 * M) * (x - x0) / (x1 - x0), S - M - (S - 2 * M) * (y - y0) / (y1 - y0)];
  const fromPx = (px, py) => [x0 + (x1 - x0) * (px - M) / (S - 2 * M), y0 + (y1 - y0) * (S - M - py) / (S - 2 * M)];

  const canvas = el("canvas", { id: "map", width: S, height: S });
  const decoded = el("canvas", { id: "decoded", class: "pixels", width: 28, height: 28 });
  const codeText = el("div", { class: "caption", id: "code-text" });
  const sliders = el("div", { class: "sliders", id: "sliders" });
  const strip = el("canvas", { id: "strip", class: "strip", width: 280, height: 28 });
  const stripText = el("div", { class: "caption", text: "Click two points of the map: the codes on the straight line between them, decoded from left to right." });
  const holdSelect = el("select", { id: "hold" }, el("option", { value: "mean", text: "the codes' mean" }), el("option", { value: "image", text: "test image number…" }));
  const holdIndex = el("input", { type: "number", min: 0, max: n - 1, value: 0, id: "hold-index", style: "width: 70px" });
  const legend = el("div", { class: "legend" }, ...map.class_names.map((c, k) => el("span", {}, el("i", { style: `background:${CLASS_COLORS[k]}` }), c)));
  const priorToggle = el("input", { type: "checkbox", id: "prior", checked: "" });
  const sampleButton = el("button", { id: "sample", text: "sample a code from the prior" });

  const holdRow = d > 2 ? el("p", { class: "caption" }, "The map shows two directions of a code of " + d + " numbers; the other directions are held at ", holdSelect, " ", holdIndex) : el("span");
  const vaeRow = info.variational ? el("p", { class: "caption" }, el("label", {}, priorToggle, " draw the prior N(0, I): circles at 1, 2 and 3 standard deviations"), " ", sampleButton) : el("span");

  root.replaceChildren(
    el("h2", { text: "The code map" }),
    el("p", { class: "hint", text: `The ${n} test images' codes, ${d <= 2 ? "as they are" : "on their first two principal components"}, coloured by class. Move the mouse over the map (or drag): the point under it is decoded live on the right. Each slider is one number of the code.` }),
    el("div", { class: "row" },
      el("div", { class: "panel" }, canvas, legend, holdRow, vaeRow),
      el("div", { class: "panel" }, el("h3", { text: "The decoder's image of the code" }), decoded, codeText),
      el("div", { class: "panel" }, el("h3", { text: "The code, number by number" }), sliders)),
    el("div", { class: "panel" }, el("h3", { text: "Interpolation" }), strip, stripText));

  // The points, drawn once into a layer of their own.
  const layer = document.createElement("canvas");
  layer.width = S; layer.height = S;
  {
    const g = layer.getContext("2d");
    g.fillStyle = "#fff"; g.fillRect(0, 0, S, S);
    g.strokeStyle = "#999"; g.strokeRect(M, M, S - 2 * M, S - 2 * M);
    g.globalAlpha = 0.7;
    for (let i = 0; i < n; i++) {
      const [px, py] = toPx(xs[i], ys[i]);
      g.fillStyle = CLASS_COLORS[map.labels[i] % 10];
      g.beginPath(); g.arc(px, py, 2.2, 0, 2 * Math.PI); g.fill();
    }
    g.globalAlpha = 1; g.fillStyle = "#333"; g.font = "12px sans-serif"; g.textAlign = "center";
    g.fillText(map.axis_names[0], S / 2, S - 12);
    for (const [v, side] of [[x0, M], [x1, S - M]]) g.fillText(fmt(v, 2), side, S - M + 15);
    g.save(); g.translate(14, S / 2); g.rotate(-Math.PI / 2); g.fillText(map.axis_names[1], 0, 0); g.restore();
    g.textAlign = "right";
    for (const [v, side] of [[y0, S - M], [y1, M]]) g.fillText(fmt(v, 2), M - 4, side + 4);
    g.textAlign = "center"; g.font = "bold 14px sans-serif";
    g.fillText(`${name}: test codes by class`, S / 2, 20);
  }

  let current = codeAt(0.5 * (x0 + x1), 0.5 * (y0 + y1));
  let picks = [];      // up to two map points clicked, for the interpolation
  let drawnPoint = null; // where the last drawing's code lies
  const overlay = () => {
    const g = canvas.getContext("2d");
    g.drawImage(layer, 0, 0);
    if (info.variational && priorToggle.checked) {
      const [cx, cy] = project(new Array(d).fill(0));
      g.strokeStyle = "rgba(0,0,0,0.7)"; g.fillStyle = "rgba(0,0,0,0.8)"; g.lineWidth = 1.5;
      g.setLineDash([5, 4]); g.font = "12px sans-serif"; g.textAlign = "left";
      for (const r of [1, 2, 3]) {
        const [ax, ay] = toPx(cx, cy), [bx] = toPx(cx + r, cy), [, by] = toPx(cx, cy + r);
        g.beginPath(); g.ellipse(ax, ay, Math.abs(bx - ax), Math.abs(ay - by), 0, 0, 2 * Math.PI); g.stroke();
        g.fillText(r + "σ", bx + 3, ay - 3);
      }
      g.setLineDash([]); g.lineWidth = 1;
      canvas.dataset.prior = "drawn";
    }
    if (picks.length > 0) {
      g.strokeStyle = "#000"; g.lineWidth = 2;
      const pts = picks.map((p) => toPx(p[0], p[1]));
      g.beginPath(); pts.forEach(([px, py], i) => (i ? g.lineTo(px, py) : g.moveTo(px, py))); g.stroke();
      for (const [px, py] of pts) { g.fillStyle = "#000"; g.fillRect(px - 4, py - 4, 8, 8); }
      g.lineWidth = 1;
    }
    if (drawnPoint) {
      const [px, py] = toPx(drawnPoint[0], drawnPoint[1]);
      canvas.dataset.drawn = `${px.toFixed(1)},${py.toFixed(1)}`;
      g.fillStyle = "#000"; g.font = "22px sans-serif"; g.textAlign = "center"; g.fillText("★", px, py + 8);
    }
    const [px, py] = toPx(...project(current));
    g.strokeStyle = "#000"; g.lineWidth = 2; g.beginPath(); g.arc(px, py, 7, 0, 2 * Math.PI); g.stroke(); g.lineWidth = 1;
  };

  // Decoding: one request at a time; while one is out, only the newest code waits.
  let busy = false, waiting = null, shown = 0;
  const decode = async (code) => {
    decoded.dataset.pending = "1";
    if (busy) { waiting = code; return; }
    busy = true;
    try {
      const r = await api(runUrl(name) + "/decode", { code });
      paint(decoded, r.pixels, 28);
      shown += 1;
      decoded.dataset.code = JSON.stringify(code);
      decoded.dataset.shown = String(shown);
      codeText.textContent = "code: (" + code.map((v) => v.toFixed(2)).join(", ") + ")";
    } catch (e) { problem(e); }
    busy = false;
    if (waiting) { const c = waiting; waiting = null; decode(c); } else decoded.dataset.pending = "0";
  };
  const setCode = (code, fromSlider = -1) => {
    current = code;
    inputs.forEach((inp, i) => { if (i !== fromSlider) inp.value = code[i]; });
    overlay();
    decode(code);
  };

  // One slider per code number, over the test codes' spread.
  const SHOWN = Math.min(d, 64);
  const inputs = [];
  for (let i = 0; i < SHOWN; i++) {
    const [lo, hi] = map.ranges[i];
    const inp = el("input", { type: "range", min: lo, max: hi, step: (hi - lo) / 400, value: current[i] });
    const out = el("span", { text: current[i].toFixed(2) });
    inp.addEventListener("input", () => {
      const code = current.slice(); code[i] = Number(inp.value); out.textContent = code[i].toFixed(2);
      setCode(code, i);
    });
    inputs.push(inp);
    sliders.append(el("label", {}, el("span", { text: "z" + (i + 1) }), inp, out));
  }
  if (d > SHOWN) sliders.append(el("p", { text: `(the first ${SHOWN} of ${d} numbers)` }));

  const mouse = (ev) => {
    const r = canvas.getBoundingClientRect();
    return [(ev.clientX - r.left) * S / r.width, (ev.clientY - r.top) * S / r.height];
  };
  let down = null;
  canvas.addEventListener("pointerdown", (ev) => { down = mouse(ev); });
  canvas.addEventListener("pointermove", (ev) => setCode(codeAt(...fromPx(...mouse(ev)))));
  canvas.addEventListener("pointerup", async (ev) => {
    const up = mouse(ev);
    const moved = down ? Math.hypot(up[0] - down[0], up[1] - down[1]) : 99;
    down = null;
    if (moved > 4) return;
    const p = fromPx(...up);
    picks = picks.length >= 2 ? [p] : picks.concat([p]);
    overlay();
    if (picks.length === 2) await interpolate();
  });
  const interpolate = async () => {
    const [a, b] = picks.map((p) => codeAt(p[0], p[1]));
    const steps = 10, side = 28;
    strip.width = steps * side; strip.height = side;
    const g = strip.getContext("2d");
    for (let k = 0; k < steps; k++) {
      const t = k / (steps - 1);
      const r = await api(runUrl(name) + "/decode", { code: a.map((v, i) => v + t * (b[i] - v)) });
      const tile = document.createElement("canvas");
      paint(tile, r.pixels, side);
      g.drawImage(tile, k * side, 0);
    }
    strip.style.width = steps * 56 + "px";
    strip.dataset.tiles = String(steps);
  };
  const updateBase = async () => {
    if (holdSelect.value === "mean") base = map.mean.slice();
    else base = codeOf(Math.max(0, Math.min(n - 1, Number(holdIndex.value) || 0)));
    setCode(codeAt(...project(current)));
  };
  holdSelect.addEventListener("change", updateBase);
  holdIndex.addEventListener("change", () => { holdSelect.value = "image"; updateBase(); });
  priorToggle.addEventListener("change", overlay);
  sampleButton.addEventListener("click", () => {
    const gauss = () => Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
    setCode(Array.from({ length: d }, gauss));
  });

  setCode(current);
  drawSection(root, name, (code) => { drawnPoint = project(code); overlay(); });
  if (info.corrupt) denoiseSection(root, name, n, info.corrupt);
}

// ---- draw a digit ----------------------------------------------------------------------

// A 28×28 canvas to draw on: white ink on black, as the datasets are.
function inkPad(id, onDone) {
  const pixels = new Float32Array(28 * 28);
  const pad = el("canvas", { id, class: "pixels draw", width: 28, height: 28 });
  paint(pad, pixels, 28);
  let last = null; // the previous point of the stroke: the ink follows the line between them
  const stamp = (ev) => {
    const r = pad.getBoundingClientRect();
    const x = (ev.clientX - r.left) * 28 / r.width, y = (ev.clientY - r.top) * 28 / r.height;
    const [fx, fy] = last || [x, y];
    const steps = Math.max(1, Math.ceil(2 * Math.hypot(x - fx, y - fy)));
    for (let k = 1; k <= steps; k++) dab(fx + (x - fx) * k / steps, fy + (y - fy) * k / steps);
    last = [x, y];
    paint(pad, pixels, 28);
  };
  const dab = (x, y) => {
    for (let yy = Math.floor(y - 2); yy <= y + 2; yy++) {
      for (let xx = Math.floor(x - 2); xx <= x + 2; xx++) {
        if (xx < 0 || yy < 0 || xx >= 28 || yy >= 28) continue;
        const ink = Math.min(1, Math.max(0, 1.6 - Math.hypot(xx + 0.5 - x, yy + 0.5 - y)));
        pixels[yy * 28 + xx] = Math.max(pixels[yy * 28 + xx], ink);
      }
    }
  };
  let drawing = false;
  pad.addEventListener("pointerdown", (ev) => { drawing = true; last = null; pad.setPointerCapture(ev.pointerId); stamp(ev); });
  pad.addEventListener("pointermove", (ev) => { if (drawing) stamp(ev); });
  pad.addEventListener("pointerup", () => { if (drawing) { drawing = false; last = null; onDone(pixels); } });
  const clear = () => { pixels.fill(0); paint(pad, pixels, 28); };
  return { pad, pixels, clear };
}

function drawSection(root, name, mark) {
  const out = el("canvas", { id: "drawn-reconstruction", class: "pixels", width: 28, height: 28 });
  const text = el("div", { class: "caption", id: "drawn-text", text: "Draw a digit (or a garment) on the left; when you let go, the model encodes it, marks its code on the map with a ★ and shows its reconstruction." });
  const ink = inkPad("draw", async (pixels) => {
    try {
      const r = await api(runUrl(name) + "/encode", { pixels: Array.from(pixels) });
      paint(out, r.pixels, 28);
      out.dataset.done = String(Number(out.dataset.done || 0) + 1);
      text.textContent = "Its code: (" + r.code.map((v) => v.toFixed(2)).join(", ") + "). A drawing unlike the training images lands far from their codes and comes back as the nearest thing the model knows.";
      mark(r.code);
    } catch (e) { problem(e); }
  });
  root.append(el("h2", { text: "Draw" }),
    el("div", { class: "row" },
      el("div", { class: "panel" }, el("h3", { text: "Your drawing" }), ink.pad, el("div", {}, el("button", { id: "clear", text: "clear", onclick: ink.clear }))),
      el("div", { class: "panel" }, el("h3", { text: "Its reconstruction" }), out, text)));
}

// ---- a denoiser at work ----------------------------------------------------------------

function denoiseSection(root, name, n, corrupt) {
  const index = el("input", { type: "number", min: 0, max: n - 1, value: 0, style: "width: 70px" });
  const sigma = el("input", { type: "range", min: 0, max: 1, step: 0.05, value: 0.3 });
  const sigmaText = el("span", { text: "0.30" });
  const damaged = el("canvas", { class: "pixels draw", id: "damaged", width: 28, height: 28 });
  const output = el("canvas", { class: "pixels", id: "denoised", width: 28, height: 28 });
  let clean = null, holes = new Uint8Array(784), noise = new Float32Array(784);
  const gauss = () => Math.sqrt(-2 * Math.log(1 - Math.random())) * Math.cos(2 * Math.PI * Math.random());
  const render = async () => {
    if (!clean) return;
    const s = Number(sigma.value);
    sigmaText.textContent = s.toFixed(2);
    const x = clean.map((v, i) => (holes[i] ? 0 : Math.min(1, Math.max(0, v + s * noise[i]))));
    paint(damaged, x, 28);
    try {
      const r = await api(runUrl(name) + "/encode", { pixels: Array.from(x) });
      paint(output, r.pixels, 28);
    } catch (e) { problem(e); }
  };
  const load = async () => {
    const r = await api(runUrl(name) + "/images/" + (Number(index.value) || 0));
    clean = Float32Array.from(r.pixels);
    holes = new Uint8Array(784);
    noise = Float32Array.from({ length: 784 }, gauss);
    await render();
  };
  let brushing = false;
  const brush = (ev) => {
    const r = damaged.getBoundingClientRect();
    const x = Math.floor((ev.clientX - r.left) * 28 / r.width), y = Math.floor((ev.clientY - r.top) * 28 / r.height);
    for (let yy = y - 2; yy <= y + 2; yy++) for (let xx = x - 2; xx <= x + 2; xx++) if (xx >= 0 && yy >= 0 && xx < 28 && yy < 28) holes[yy * 28 + xx] = 1;
  };
  damaged.addEventListener("pointerdown", (ev) => { brushing = true; damaged.setPointerCapture(ev.pointerId); brush(ev); });
  damaged.addEventListener("pointermove", (ev) => { if (brushing) { brush(ev); render(); } });
  damaged.addEventListener("pointerup", () => { brushing = false; render(); });
  sigma.addEventListener("input", render);
  index.addEventListener("change", () => load().catch(problem));
  root.append(el("h2", { text: "A denoiser at work" }),
    el("p", { class: "hint", text: `This model was trained to undo ${corrupt}. Add Gaussian noise with the slider and paint occlusions on the damaged image with the mouse; on the right, what the model makes of it.` }),
    el("div", { class: "row" },
      el("div", { class: "panel" }, el("h3", {}, "Test image ", index), el("label", {}, "noise σ ", sigma, " ", sigmaText), el("div", {}, damaged),
        el("button", { text: "new noise", onclick: () => { noise = Float32Array.from({ length: 784 }, gauss); holes = new Uint8Array(784); render(); } })),
      el("div", { class: "panel" }, el("h3", { text: "The model's output" }), output)));
  load().catch(problem);
}

route();
