// LiMA Lens step player and what-if canvas (a Streamlit components-v2 module).
//
// Everything a step needs travels once: the crop at the source resolution (a JPEG), the rank
// map (which step reveals each model pixel), the curves and the per-step readouts. Stepping,
// playing and clicking the curve then never wait for the server; the server hears the step
// only when the viewer stops (setStateValue("step")), for the side panel and the share link.
//
// Frames are composed on a canvas: the photo, then a model-resolution mask (hidden pixels black
// or dimmed, the added region's outline yellow) scaled up without smoothing. Composing a step
// touches S×S mask pixels only (50,176 at S = 224), whatever the photo's resolution.
//
// Modes: "inline" (the Explain page), "present" (the presenter view: large, PageUp/PageDown
// go through the playlist) and "whatif" (click regions to hide or show them; the server
// re-scores the chosen subset and sends the answer back in data.result).

const SVG = "http://www.w3.org/2000/svg";
const TARGET = "#0072B2";
const OTHER = "#D55E00";
const HIGHLIGHT = [255, 214, 0];

function decode(b64, Type) {
  const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  return new Type(bytes.buffer);
}

function el(tag, attrs = {}, text = null, ns = null) {
  const node = ns ? document.createElementNS(ns, tag) : document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== null) node.textContent = text;
  return node;
}

function fmt(p) {
  return p === null || p === undefined ? "–" : p.toFixed(3);
}

// Edges of the map's cells: a pixel whose 4-neighbourhood holds another value (or the border).
function edgesOf(map, s) {
  const edge = new Uint8Array(s * s);
  for (let y = 0; y < s; y++) {
    for (let x = 0; x < s; x++) {
      const i = y * s + x, v = map[i];
      edge[i] = x === 0 || y === 0 || x === s - 1 || y === s - 1 ||
        map[i - 1] !== v || map[i + 1] !== v || map[i - s] !== v || map[i + s] !== v ? 1 : 0;
    }
  }
  return edge;
}

function editable(target) {
  if (!target || !target.tagName) return false;
  const tag = target.tagName.toLowerCase();
  return tag === "input" || tag === "textarea" || tag === "select" || target.isContentEditable ||
    target.getAttribute("role") === "slider";
}

function timings() {
  // Read by scripts/player_bench.py and the browser tests (never by the app).
  if (!window.__limaPlayer) window.__limaPlayer = { latencies: [], intervals: [], draws: [], whatif: [] };
  return window.__limaPlayer;
}

class Player {
  constructor(root, data, api) {
    this.root = root;
    this.api = api;
    this.data = data;
    this.abort = new AbortController();
    this.s = data.size;
    this.n = data.n;
    this.mode = data.mode;
    this.playing = false;
    this.loop = false;
    this.fps = data.fps || 2;
    this.reportTimer = null;
    this.lastPaint = 0;
    if (this.mode === "whatif") {
      this.labels = decode(data.labels, Uint16Array);
      this.edge = edgesOf(this.labels, this.s);
      this.shown = new Set(data.shown);
      this.pendingSince = null;
      this.nonce = data.nonce;
    } else {
      this.ranks = decode(data.ranks, Uint16Array);
      this.edge = edgesOf(this.ranks, this.s);
      this.step = Math.min(Math.max(data.start, 0), this.n);
    }
    this.build();
    this.image = new Image();
    this.image.onload = () => this.draw();
    this.image.src = data.image;
  }

  // -- DOM -----------------------------------------------------------------------------------
  build() {
    const d = this.data;
    this.el = el("div", {
      class: `lp lp-${this.mode}`,
      tabindex: "0",
      role: "group",
      "aria-label": this.mode === "whatif" ? "What-if: click regions to hide or show them" : "Step-through player",
    });
    const stage = el("div", { class: "lp-stage" });
    const wrap = el("div", { class: "lp-imgwrap" });
    this.canvas = el("canvas", { class: "lp-canvas", "aria-hidden": "true" });
    this.canvas.width = d.image_side;
    this.canvas.height = d.image_side;
    wrap.appendChild(this.canvas);
    this.mask = el("canvas");
    this.mask.width = this.s;
    this.mask.height = this.s;
    this.maskCtx = this.mask.getContext("2d");
    this.maskData = this.maskCtx.createImageData(this.s, this.s);
    stage.appendChild(wrap);
    const side = el("div", { class: "lp-side" });
    if (this.mode !== "whatif") side.appendChild(this.buildCurve());
    this.readout = el("div", { class: "lp-readout" });
    side.appendChild(this.readout);
    stage.appendChild(side);
    this.el.appendChild(stage);
    this.caption = el("div", { class: "lp-caption", "aria-live": "polite" });
    this.el.appendChild(this.caption);
    this.el.appendChild(this.mode === "whatif" ? this.buildWhatifControls() : this.buildControls());
    this.root.appendChild(this.el);
    const on = (target, type, fn) => target.addEventListener(type, fn, { signal: this.abort.signal });
    if (this.mode === "whatif") {
      on(this.canvas, "click", (e) => this.onCanvasClick(e));
      this.canvas.style.cursor = "pointer";
    } else {
      on(document, "keydown", (e) => this.onKey(e));
    }
  }

  button(label, title, fn, cls = "") {
    const b = el("button", { type: "button", class: `lp-btn ${cls}`, title, "aria-label": title }, label);
    b.addEventListener("click", fn, { signal: this.abort.signal });
    return b;
  }

  buildControls() {
    const bar = el("div", { class: "lp-controls" });
    bar.appendChild(this.button("|◀", "First step (Home)", () => this.go(0, "click")));
    this.prevBtn = this.button("◀", "Previous step (←)", () => this.go(this.step - 1, "click"));
    bar.appendChild(this.prevBtn);
    this.playBtn = this.button("▶ Play", "Play or pause (space)", () => this.toggle(), "lp-play");
    bar.appendChild(this.playBtn);
    this.nextBtn = this.button("▶", "Next step (→)", () => this.go(this.step + 1, "click"));
    bar.appendChild(this.nextBtn);
    bar.appendChild(this.button("▶|", "Last step (End)", () => this.go(this.n, "click")));
    this.range = el("input", { type: "range", min: "0", max: String(this.n), step: "1", class: "lp-range",
      "aria-label": "Step: regions revealed" });
    this.range.addEventListener("input", () => this.go(Number(this.range.value), "range"), { signal: this.abort.signal });
    bar.appendChild(this.range);
    const speed = el("select", { class: "lp-speed", "aria-label": "Playback speed", title: "Playback speed" });
    for (const f of [1, 2, 5, 10]) {
      const o = el("option", { value: String(f) }, `${f} steps/s`);
      if (f === this.fps) o.selected = true;
      speed.appendChild(o);
    }
    speed.addEventListener("change", () => { this.fps = Number(speed.value); }, { signal: this.abort.signal });
    bar.appendChild(speed);
    const loopLabel = el("label", { class: "lp-loop" });
    const loop = el("input", { type: "checkbox", "aria-label": "Loop" });
    loop.addEventListener("change", () => { this.loop = loop.checked; }, { signal: this.abort.signal });
    loopLabel.appendChild(loop);
    loopLabel.appendChild(document.createTextNode(" loop"));
    bar.appendChild(loopLabel);
    return bar;
  }

  buildWhatifControls() {
    const bar = el("div", { class: "lp-controls" });
    bar.appendChild(el("span", { class: "lp-muted" }, "Start from:"));
    const d = this.data;
    const presets = [
      ["Minimal subset", () => d.order.slice(0, d.subset)],
      ["Current step", () => d.order.slice(0, d.step)],
      ["All regions", () => d.order.slice()],
      ["None", () => []],
    ];
    for (const [label, make] of presets) {
      bar.appendChild(this.button(label, `Show ${label.toLowerCase()}`, () => this.setShown(make(), "preset")));
    }
    return bar;
  }

  buildCurve() {
    const W = 420, H = 250, m = { l: 42, r: 24, t: 12, b: 34 }; // r: room for the "100%" label at 14 px
    this.geom = { W, H, m };
    const svg = el("svg", { class: "lp-curve", viewBox: `0 0 ${W} ${H}`, role: "img",
      "aria-label": "Insertion curves: probability against revealed area" }, null, SVG);
    const d = this.data;
    const ymax = Math.min(1, Math.max(0.05, ...d.p_target, ...(d.p_other || [0])) * 1.08);
    this.geom.ymax = ymax;
    const x = (a) => m.l + a * (W - m.l - m.r);
    const y = (p) => H - m.b - (p / ymax) * (H - m.t - m.b);
    this.geom.x = x;
    this.geom.y = y;
    const axis = el("g", { class: "lp-axis" }, null, SVG);
    axis.appendChild(el("line", { x1: m.l, y1: H - m.b, x2: W - m.r, y2: H - m.b }, null, SVG));
    axis.appendChild(el("line", { x1: m.l, y1: m.t, x2: m.l, y2: H - m.b }, null, SVG));
    for (const a of [0, 0.25, 0.5, 0.75, 1]) {
      axis.appendChild(el("text", { x: x(a), y: H - m.b + 14, "text-anchor": "middle" }, `${a * 100}%`, SVG));
    }
    for (const f of [0, 0.5, 1]) {
      axis.appendChild(el("text", { x: m.l - 5, y: y(f * ymax) + 4, "text-anchor": "end" }, (f * ymax).toFixed(2), SVG));
    }
    axis.appendChild(el("text", { x: (W + m.l) / 2, y: H - 3, "text-anchor": "middle" }, "revealed area", SVG));
    svg.appendChild(axis);
    const k = d.subset;
    svg.appendChild(el("line", { class: "lp-subset", x1: x(d.area[k]), x2: x(d.area[k]), y1: m.t, y2: H - m.b }, null, SVG));
    const path = (ps) => ps.map((p, i) => `${i ? "L" : "M"}${x(d.area[i]).toFixed(1)},${y(p).toFixed(1)}`).join("");
    if (d.p_other) svg.appendChild(el("path", { d: path(d.p_other), stroke: OTHER, class: "lp-line" }, null, SVG));
    svg.appendChild(el("path", { d: path(d.p_target), stroke: TARGET, class: "lp-line" }, null, SVG));
    this.marker = el("line", { class: "lp-marker", y1: m.t, y2: H - m.b }, null, SVG);
    svg.appendChild(this.marker);
    this.dotT = el("circle", { r: 5, fill: TARGET }, null, SVG);
    svg.appendChild(this.dotT);
    if (d.p_other) {
      this.dotO = el("circle", { r: 5, fill: OTHER }, null, SVG);
      svg.appendChild(this.dotO);
    }
    svg.addEventListener("click", (e) => {
      const box = svg.getBoundingClientRect();
      const a = ((e.clientX - box.left) * (W / box.width) - m.l) / (W - m.l - m.r);
      let best = 0;
      for (let i = 1; i <= this.n; i++) if (Math.abs(d.area[i] - a) < Math.abs(d.area[best] - a)) best = i;
      this.go(best, "curve");
    }, { signal: this.abort.signal });
    return svg;
  }

  // -- stepping ------------------------------------------------------------------------------
  go(k, how, t0 = null) {
    if (how !== "play") this.pause(false);
    const step = Math.min(Math.max(k, 0), this.n);
    if (step === this.step && how !== "init") return;
    this.step = step;
    this.draw(t0);
    if (!this.playing) this.report(how === "init" ? null : 350);
  }

  toggle() {
    if (this.playing) { this.pause(true); return; }
    if (this.step >= this.n) this.go(0, "play");
    this.playing = true;
    this.playBtn.textContent = "⏸ Pause";
    this.el.setAttribute("data-lima-playing", "true");
    const interval = () => 1000 / this.fps;
    let due = performance.now() + interval();
    let last = performance.now();
    const tick = (t) => {
      if (!this.playing) return;
      if (t >= due) {
        timings().intervals.push(t - last);
        last = t;
        if (this.step >= this.n) {
          if (!this.loop) { this.pause(true); return; }
          this.go(0, "play");
        } else {
          this.go(this.step + 1, "play");
        }
        due += interval();
        if (due < t) due = t + interval(); // a stalled tab does not rush through the backlog
      }
      this.raf = requestAnimationFrame(tick);
    };
    this.raf = requestAnimationFrame(tick);
  }

  pause(report) {
    if (!this.playing) return;
    this.playing = false;
    cancelAnimationFrame(this.raf);
    this.playBtn.textContent = "▶ Play";
    this.el.setAttribute("data-lima-playing", "false");
    if (report) this.report(0);
  }

  report(delay) {
    // The server hears the step once the viewer has stopped on it.
    clearTimeout(this.reportTimer);
    if (delay === null) return;
    this.reportTimer = setTimeout(() => {
      if (!this.playing && this.step !== this.reported) {
        this.reported = this.step;
        this.api.setStateValue("step", this.step);
      }
    }, delay);
  }

  onKey(e) {
    const target = e.composedPath ? e.composedPath()[0] : e.target;
    const inside = this.el.contains(target) || target === this.el;
    if (!inside && editable(target)) return; // typing in another widget
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const t0 = e.timeStamp;
    switch (e.key) {
      case "ArrowLeft": this.go(this.step - 1, "key", t0); break;
      case "ArrowRight": this.go(this.step + 1, "key", t0); break;
      case "Home": this.go(0, "key", t0); break;
      case "End": this.go(this.n, "key", t0); break;
      case " ":
        if (target && target.tagName && target.tagName.toLowerCase() === "button" && !inside) return;
        if (target && target.tagName && target.tagName.toLowerCase() === "button" && inside) return; // the button clicks itself
        this.toggle();
        break;
      case "PageUp": case "PageDown":
        if (this.mode !== "present") return;
        this.api.setTriggerValue("goto", e.key === "PageDown" ? "next" : "prev");
        break;
      default: return;
    }
    e.preventDefault();
  }

  // -- what-if --------------------------------------------------------------------------------
  onCanvasClick(e) {
    const box = this.canvas.getBoundingClientRect();
    const px = Math.floor(((e.clientX - box.left) / box.width) * this.s);
    const py = Math.floor(((e.clientY - box.top) / box.height) * this.s);
    if (px < 0 || py < 0 || px >= this.s || py >= this.s) return;
    const region = this.labels[py * this.s + px];
    const next = new Set(this.shown);
    if (next.has(region)) next.delete(region); else next.add(region);
    this.setShown([...next], "click", e.timeStamp);
  }

  setShown(list, how, t0 = null) {
    this.shown = new Set(list);
    this.draw();
    this.pendingSince = t0 === null ? performance.now() : t0;
    this.el.setAttribute("data-lima-pending", "true");
    this.renderWhatif();
    this.api.setStateValue("shown", [...this.shown].sort((a, b) => a - b));
  }

  // -- drawing --------------------------------------------------------------------------------
  composeMask() {
    const s = this.s, px = this.maskData.data, dim = this.data.hidden === "dim";
    const hiddenAlpha = dim ? 190 : 255;
    if (this.mode === "whatif") {
      const labels = this.labels, shown = this.shown, edge = this.edge;
      for (let i = 0, j = 0; i < s * s; i++, j += 4) {
        const visible = shown.has(labels[i]);
        if (edge[i]) { px[j] = 255; px[j + 1] = 255; px[j + 2] = 255; px[j + 3] = visible ? 110 : 70; }
        else { px[j] = 0; px[j + 1] = 0; px[j + 2] = 0; px[j + 3] = visible ? 0 : hiddenAlpha; }
      }
      return;
    }
    const ranks = this.ranks, k = this.step, edge = this.edge;
    for (let i = 0, j = 0; i < s * s; i++, j += 4) {
      const r = ranks[i];
      if (r === k - 1 && edge[i]) {
        px[j] = HIGHLIGHT[0]; px[j + 1] = HIGHLIGHT[1]; px[j + 2] = HIGHLIGHT[2]; px[j + 3] = 255;
      } else if (r < k) {
        px[j + 3] = 0;
      } else {
        px[j] = 0; px[j + 1] = 0; px[j + 2] = 0; px[j + 3] = hiddenAlpha;
      }
    }
  }

  draw(t0 = null) {
    const started = performance.now();
    if (this.mode !== "whatif") this.renderStep();
    if (this.image.complete && this.image.naturalWidth) {
      const ctx = this.canvas.getContext("2d");
      const side = this.canvas.width;
      ctx.imageSmoothingEnabled = true;
      ctx.drawImage(this.image, 0, 0, side, side);
      this.composeMask();
      this.maskCtx.putImageData(this.maskData, 0, 0);
      ctx.imageSmoothingEnabled = false;
      ctx.drawImage(this.mask, 0, 0, side, side);
    }
    const log = timings();
    log.draws.push(performance.now() - started);
    if (t0 !== null) {
      // The new frame is on screen once the browser has painted after this frame's callbacks.
      requestAnimationFrame(() => setTimeout(() => log.latencies.push(performance.now() - t0), 0));
    }
  }

  renderStep() {
    const d = this.data, k = this.step, info = d.steps[k];
    this.el.setAttribute("data-lima-step", String(k));
    this.range.value = String(k);
    this.prevBtn.disabled = k === 0;
    this.nextBtn.disabled = k === this.n;
    this.caption.textContent = `Step ${k} of ${this.n} · ${(100 * info.area).toFixed(1)} % of the image · ${info.caption}`;
    const g = this.geom;
    const xa = g.x(d.area[k]);
    this.marker.setAttribute("x1", xa);
    this.marker.setAttribute("x2", xa);
    this.dotT.setAttribute("cx", xa);
    this.dotT.setAttribute("cy", g.y(d.p_target[k]));
    if (this.dotO) {
      this.dotO.setAttribute("cx", xa);
      this.dotO.setAttribute("cy", g.y(d.p_other[k]));
    }
    const full = d.p_target[this.n];
    const rows = info.top.map(([cls, name, p]) => {
      const role = cls === d.target ? "lp-t" : cls === d.other ? "lp-o" : "";
      return `<li class="${role}"><span class="lp-bar" style="width:${(100 * p).toFixed(1)}%"></span>` +
        `<span class="lp-name"></span><span class="lp-p">${p.toFixed(3)}</span></li>`;
    });
    this.readout.innerHTML =
      `<div class="lp-big lp-t"><span class="lp-label"></span> <b>${fmt(info.p_target)}</b>` +
      ` <span class="lp-delta">${(info.p_target - full >= 0 ? "+" : "") + (info.p_target - full).toFixed(3)} vs full image</span></div>` +
      (info.p_other === null ? "" : `<div class="lp-big lp-o"><span class="lp-label"></span> <b>${fmt(info.p_other)}</b></div>`) +
      `<div class="lp-muted">Top ${this.mode === "present" ? Math.min(3, rows.length) : rows.length} at this step</div><ol class="lp-top">${rows.join("")}</ol>` +
      `<div class="lp-detail"></div>`;
    // Class names and details are text (never HTML): they may come from a user's class list.
    const labels = this.readout.querySelectorAll(".lp-label");
    labels[0].textContent = `p(${d.target_name})`;
    if (labels[1]) labels[1].textContent = `p(${d.other_name})`;
    this.readout.querySelectorAll(".lp-name").forEach((node, i) => { node.textContent = info.top[i][1]; });
    this.readout.querySelector(".lp-detail").textContent = this.mode === "present" ? "" : info.detail;
  }

  renderWhatif() {
    const d = this.data, r = d.result;
    const shown = [...this.shown].sort((a, b) => a - b);
    this.el.setAttribute("data-lima-shown", shown.join("."));
    const fresh = r && r.shown.join(".") === shown.join(".");
    this.el.setAttribute("data-lima-pending", fresh ? "false" : "true");
    this.caption.textContent = `${shown.length} of ${d.n} regions shown` + (fresh ? ` · ${(100 * r.area).toFixed(1)} % of the image` : " · scoring…");
    if (!r) { this.readout.textContent = ""; return; }
    const rows = r.top.map(([cls, name, p]) =>
      `<li class="${cls === d.target ? "lp-t" : cls === d.predicted ? "lp-o" : ""}"><span class="lp-bar" style="width:${(100 * p).toFixed(1)}%"></span>` +
      `<span class="lp-name"></span><span class="lp-p">${p.toFixed(3)}</span></li>`);
    this.readout.innerHTML =
      `<div class="lp-big lp-t"><span class="lp-label"></span> <b>${fmt(r.p_target)}</b> <span class="lp-delta">${(r.p_target - d.full_target >= 0 ? "+" : "") + (r.p_target - d.full_target).toFixed(3)} vs full image</span></div>` +
      `<div class="lp-big lp-o"><span class="lp-label"></span> <b>${fmt(r.p_predicted)}</b> <span class="lp-delta">${(r.p_predicted - d.full_predicted >= 0 ? "+" : "") + (r.p_predicted - d.full_predicted).toFixed(3)} vs full image</span></div>` +
      `<div class="lp-verdict"></div><div class="lp-muted">Top 5 for this subset</div><ol class="lp-top">${rows.join("")}</ol>`;
    const labels = this.readout.querySelectorAll(".lp-label");
    labels[0].textContent = `p(${d.target_name})`;
    labels[1].textContent = `p(${d.predicted_name})`;
    this.readout.querySelectorAll(".lp-name").forEach((node, i) => { node.textContent = r.top[i][1]; });
    this.readout.querySelector(".lp-verdict").textContent = `The model now predicts ${r.top[0][1]}.`;
    this.readout.style.opacity = fresh ? "1" : "0.55";
    if (fresh && this.pendingSince !== null) {
      const t0 = this.pendingSince;
      this.pendingSince = null;
      requestAnimationFrame(() => setTimeout(() => timings().whatif.push(performance.now() - t0), 0));
    }
  }

  // -- updates from the server ------------------------------------------------------------------
  update(data, api) {
    this.api = api;
    const before = this.data;
    this.data = data;
    if (this.mode === "whatif") {
      data.order = data.order || before.order;
      if (data.nonce !== this.nonce) { // the server set the subset (a flip, a link)
        this.nonce = data.nonce;
        this.shown = new Set(data.shown);
        this.draw();
      }
      this.renderWhatif();
    }
  }

  destroy() {
    this.pause(false);
    clearTimeout(this.reportTimer);
    this.abort.abort();
    this.el.remove();
  }
}

export default function (component) {
  const { data, parentElement, setStateValue, setTriggerValue } = component;
  const api = { setStateValue, setTriggerValue };
  let player = parentElement.__limaPlayer;
  if (player && player.data.id === data.id) {
    player.update(data, api); // the same run: the viewer keeps their step and subset
  } else {
    if (player) player.destroy();
    player = new Player(parentElement, data, api);
    parentElement.__limaPlayer = player;
    if (player.mode === "whatif") player.renderWhatif();
    else player.go(player.step, "init");
  }
  return () => {
    if (parentElement.__limaPlayer === player) {
      player.destroy();
      parentElement.__limaPlayer = null;
    }
  };
}
