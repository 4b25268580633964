// melsynth's page: plays the engine over the socket of the server that served it (see docs/OSC.md, "WebSocket").
// Every control becomes one message of the engine's own vocabulary, {"address": "/synth/...", "args": [...]},
// checked by the engine exactly as OSC is; the engine answers errors and sends its status ten times a second
// and a picture of the sound whenever the sound changes.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const token = new URLSearchParams(location.search).get("token") || "";

  // ------------------------------------------------------------------ state
  const state = {
    hello: {}, presets: [], status: {}, octave: 4, velocity: 100, sustain: false, spaceSustain: false,
    noteLow: 0, noteHigh: 127, macros: 0, write: false, midi: false, errors: 0, pictures: 0,
    cornersSent: false, dragging: null,
  };
  const holders = new Map();   // note -> how many fingers / keys hold it down
  const sustained = new Set(); // notes released while sustain is on, still sounding
  const computerKeys = new Map(); // KeyboardEvent.code -> the note it started
  const pointers = new Map();  // pointerId -> the note it holds on the on-screen keyboard

  // ------------------------------------------------------------------ the socket
  let socket = null;
  let retry = 500;
  const outbox = []; // messages sent before the socket opened

  function connect() {
    setLink("connecting", "connecting");
    socket = new WebSocket(`ws://${location.host}/ws?token=${encodeURIComponent(token)}`);
    socket.onopen = () => {
      retry = 500;
      setLink("open", "connected");
      send("/synth/info", []);
      while (outbox.length) socket.send(outbox.shift());
    };
    socket.onmessage = (event) => {
      let message;
      try { message = JSON.parse(event.data); } catch (e) { return; }
      receive(message);
    };
    socket.onclose = (event) => {
      setLink("closed", event.code === 1001 ? "the engine stopped" :
        event.code === 1006 && !state.everOpen ? "refused: open the address serve printed" : "disconnected");
      releaseEverything(false);
      setTimeout(connect, retry);
      retry = Math.min(retry * 2, 8000);
    };
    socket.addEventListener("open", () => { state.everOpen = true; });
  }

  function send(address, args) {
    const text = JSON.stringify({ address, args });
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(text);
    else if (outbox.length < 64) outbox.push(text);
  }

  function setLink(kind, text) {
    $("link").dataset.state = kind;
    $("link-text").textContent = text;
  }

  // Controls that move continuously (sliders, the pad) send at most once a display frame: the newest value.
  const pending = new Map();
  let frameAsked = false;
  function sendSoon(key, address, args) {
    pending.set(key, [address, args]);
    if (!frameAsked) {
      frameAsked = true;
      requestAnimationFrame(() => {
        frameAsked = false;
        for (const [address, args] of pending.values()) send(address, args);
        pending.clear();
      });
    }
  }

  // ------------------------------------------------------------------ what the engine says
  function pairs(args) {
    const out = {};
    for (let i = 0; i + 1 < args.length; i += 2) out[args[i]] = args[i + 1];
    return out;
  }

  function receive(message) {
    const { address, args } = message;
    if (!Array.isArray(args)) return;
    if (address === "/web/hello") hello(pairs(args));
    else if (address === "/synth/info") info(args);
    else if (address === "/synth/status") status(pairs(args));
    else if (address === "/web/timbre") picture(args[0], args[1], args[2]);
    else if (address === "/synth/error") showError(args[0], args[1]);
    else if (address === "/web/preset/kept") $("keep-note").textContent = `kept as ${args[0]}: in the list from serve's next start`;
  }

  function hello(h) {
    state.hello = h;
    state.write = !!h.write;
    state.midi = !!h.midi;
    state.macros = h.macros | 0;
    state.noteLow = h.note_low | 0;
    state.noteHigh = h.note_high | 0;
    $("write-tools").hidden = !state.write;
    const methods = String(h.methods || "").split(",").filter(Boolean);
    fillSelect($("method"), methods, (m) => m);
    buildMacros();
    buildLearnTargets();
    $("learn").disabled = !state.midi;
    $("learn-note").textContent = state.midi ? "" : "serve was started without --midi";
    buildKeyboard();
  }

  function info(args) {
    const i = args.indexOf("presets");
    state.presets = i >= 0 ? args.slice(i + 1).map(String) : [];
    buildPresets();
    const corners = defaultCorners(state.presets);
    const name = (n) => n;
    ["a", "b", "c", "d"].forEach((k, n) => fillSelect($(`corner-${k}`), state.presets, name, corners[n]));
    fillSelect($("morph-a"), state.presets, name, state.presets[0]);
    fillSelect($("morph-b"), state.presets, name, state.presets[Math.min(1, state.presets.length - 1)]);
  }

  function status(s) {
    state.status = s;
    $("fig-voices").textContent = s.voices;
    $("fig-latency").textContent = fixed(s.latency_ms, 1);
    $("fig-decode").textContent = fixed(s.decode_ms, 2);
    const u = $("fig-underflows");
    u.textContent = `${s.underflows_startup} · ${s.underflows_idle} · ${s.underflows_playing}`;
    u.classList.toggle("bad", s.underflows_playing > 0);
    $("fig-errors").textContent = s.errors;
    $("fig-errors").classList.toggle("bad", s.errors > 0);
    $("now-preset").textContent = describe(String(s.preset));
    for (const b of document.querySelectorAll(".preset")) b.classList.toggle("current", b.dataset.name === s.preset);
    if (document.activeElement !== $("method") && s.method) $("method").value = s.method;
    if (state.dragging !== "gain" && typeof s.gain === "number") setGainShown(s.gain);
    if (state.dragging !== "xy" && typeof s.x === "number") placePuck(s.x, s.y);
    meter(s.output_peak, s.output_rms);
  }

  function describe(preset) {
    if (preset.startsWith("morph:")) {
      const [a, b, t] = preset.slice(6).split(",");
      return `${short(a)} → ${short(b)} ${Math.round(parseFloat(t) * 100)}%`;
    }
    return preset;
  }

  function fixed(x, digits) { return typeof x === "number" ? x.toFixed(digits) : "–"; }

  function showError(address, reason) {
    state.errors += 1;
    const li = document.createElement("li");
    const code = document.createElement("code");
    code.textContent = address || "(frame)";
    li.append(code, document.createTextNode(reason));
    const list = $("errors");
    list.prepend(li);
    while (list.children.length > 8) list.lastChild.remove();
  }

  // ------------------------------------------------------------------ the output meter
  let shownPeak = 0;
  let meterTime = performance.now();
  function db(x) { return x > 0 ? 20 * Math.log10(x) : -Infinity; }
  function meterPosition(level) { return Math.max(0, Math.min(1, (db(level) + 60) / 60)); }
  function meter(peak, rms) {
    if (typeof peak !== "number") return;
    const now = performance.now();
    // The peak line falls back by 20 dB a second, as meters do.
    shownPeak = Math.max(peak, shownPeak * Math.pow(10, -20 * (now - meterTime) / 1000 / 20));
    meterTime = now;
    $("meter-rms").style.width = `${meterPosition(rms) * 100}%`;
    $("meter-peak").style.left = `calc(${meterPosition(shownPeak) * 100}% - 2px)`;
    $("meter-db").textContent = shownPeak > 1e-6 ? `${db(shownPeak).toFixed(1)}` : "-∞";
  }

  // ------------------------------------------------------------------ the sound as a picture
  // A colour map from silence (-100 dB, black) through violet and orange to +30 dB (pale yellow).
  const STOPS = [[0, 0, 0, 4], [0.3, 40, 11, 84], [0.5, 120, 28, 109], [0.68, 201, 62, 71], [0.83, 246, 128, 26], [1, 252, 254, 164]];
  const PALETTE = new Uint8ClampedArray(256 * 3);
  for (let v = 0; v < 256; v++) {
    const u = v / 255;
    let k = 1;
    while (k < STOPS.length - 1 && STOPS[k][0] < u) k++;
    const [u0, ...c0] = STOPS[k - 1];
    const [u1, ...c1] = STOPS[k];
    const w = (u - u0) / (u1 - u0);
    for (let c = 0; c < 3; c++) PALETTE[v * 3 + c] = c0[c] + (c1[c] - c0[c]) * w;
  }

  function picture(mels, frames, b64) {
    const bytes = Uint8Array.from(atob(String(b64)), (ch) => ch.charCodeAt(0));
    if (!(mels > 0 && frames > 0) || bytes.length !== mels * frames) return;
    const canvas = $("timbre");
    canvas.width = frames;
    canvas.height = mels;
    const ctx = canvas.getContext("2d");
    const image = ctx.createImageData(frames, mels);
    let sum = 0;
    for (let m = 0; m < mels; m++) {
      const row = mels - 1 - m; // the lowest band at the bottom
      for (let f = 0; f < frames; f++) {
        const v = bytes[m * frames + f];
        sum = (sum * 31 + v) >>> 0;
        const o = (row * frames + f) * 4;
        image.data[o] = PALETTE[v * 3];
        image.data[o + 1] = PALETTE[v * 3 + 1];
        image.data[o + 2] = PALETTE[v * 3 + 2];
        image.data[o + 3] = 255;
      }
    }
    ctx.putImageData(image, 0, 0);
    state.pictures += 1;
    canvas.dataset.version = String(state.pictures);
    canvas.dataset.checksum = String(sum);
  }

  // ------------------------------------------------------------------ presets
  function family(name) { const i = name.indexOf("_"); return i > 0 ? name.slice(0, i) : name; }
  function short(name) { const f = family(name); return name.length > f.length ? name.slice(f.length + 1) : name; }

  function buildPresets() {
    const box = $("families");
    box.textContent = "";
    const groups = new Map();
    for (const name of state.presets) {
      if (!groups.has(family(name))) groups.set(family(name), []);
      groups.get(family(name)).push(name);
    }
    for (const [fam, names] of groups) {
      const details = document.createElement("details");
      details.className = "family";
      details.open = true;
      details.dataset.family = fam;
      const summary = document.createElement("summary");
      summary.innerHTML = "<b></b> <span></span>";
      summary.firstChild.textContent = fam;
      summary.lastChild.textContent = names.length > 1 ? `(${names.length})` : "";
      const list = document.createElement("div");
      list.className = "preset-list";
      for (const name of names) {
        const b = document.createElement("button");
        b.className = "preset";
        b.dataset.name = name;
        b.title = name;
        b.textContent = names.length > 1 || name !== fam ? short(name) : name;
        b.addEventListener("click", () => send("/synth/preset", [name]));
        list.append(b);
      }
      details.append(summary, list);
      box.append(details);
    }
    filterPresets();
  }

  function filterPresets() {
    const words = $("search").value.toLowerCase().split(/\s+/).filter(Boolean);
    for (const details of document.querySelectorAll(".family")) {
      let shown = 0;
      for (const b of details.querySelectorAll(".preset")) {
        const hit = words.every((w) => b.dataset.name.toLowerCase().includes(w));
        b.hidden = !hit;
        shown += hit;
      }
      details.hidden = shown === 0;
      if (words.length) details.open = true;
    }
  }

  function defaultCorners(names) {
    // One preset of each of the first four families: four sounds that differ.
    const picked = [];
    for (const name of names) if (!picked.some((p) => family(p) === family(name))) picked.push(name);
    for (const name of names) if (picked.length < 4 && !picked.includes(name)) picked.push(name);
    while (picked.length < 4 && names.length) picked.push(names[0]);
    return picked.slice(0, 4);
  }

  function fillSelect(select, values, label, chosen) {
    select.textContent = "";
    for (const v of values) {
      const o = document.createElement("option");
      o.value = v;
      o.textContent = label(v);
      o.title = v;
      select.append(o);
    }
    if (chosen !== undefined) select.value = chosen;
  }

  // ------------------------------------------------------------------ morph, XY, macros, method, gain
  function sendMorph() {
    sendSoon("morph", "/synth/morph", [$("morph-a").value, $("morph-b").value, parseFloat($("morph").value)]);
  }

  function corners() { return ["a", "b", "c", "d"].map((k) => $(`corner-${k}`).value); }

  function sendCorners() {
    if (corners().some((c) => !c)) return;
    send("/synth/corners", corners());
    state.cornersSent = true;
  }

  function placePuck(x, y) {
    $("puck").style.left = `${x * 100}%`;
    $("puck").style.top = `${(1 - y) * 100}%`;
  }

  function xyFromEvent(event) {
    const r = $("xy").getBoundingClientRect();
    const x = Math.max(0, Math.min(1, (event.clientX - r.left) / r.width));
    const y = Math.max(0, Math.min(1, 1 - (event.clientY - r.top) / r.height));
    return [x, y];
  }

  function moveXY(event) {
    const [x, y] = xyFromEvent(event);
    placePuck(x, y);
    sendSoon("xy", "/synth/xy", [x, y]);
  }

  function buildMacros() {
    const box = $("macros");
    box.textContent = "";
    for (let k = 0; k < state.macros; k++) {
      const row = document.createElement("label");
      row.className = "macro";
      const name = document.createElement("span");
      name.textContent = `M${k + 1}`;
      const slider = document.createElement("input");
      Object.assign(slider, { type: "range", min: -4, max: 4, step: 0.01, value: 0 });
      slider.setAttribute("aria-label", `macro ${k + 1}`);
      slider.dataset.macro = String(k);
      const value = document.createElement("span");
      value.className = "num";
      value.textContent = "0.00";
      const update = () => {
        value.textContent = parseFloat(slider.value).toFixed(2);
        sendSoon(`macro${k}`, "/synth/macro", [k, parseFloat(slider.value)]);
      };
      slider.addEventListener("input", update);
      slider.addEventListener("dblclick", () => { slider.value = 0; update(); });
      row.append(name, slider, value);
      box.append(row);
    }
  }

  function buildLearnTargets() {
    const targets = [];
    for (let k = 0; k < state.macros; k++) targets.push(`macro:${k}`);
    targets.push("x", "y", "morph", "gain", "sustain", "panic");
    fillSelect($("learn-target"), targets, (t) => t);
  }

  function setGainShown(g) {
    $("gain").value = g;
    $("gain-value").textContent = Number(g).toFixed(2);
  }

  // ------------------------------------------------------------------ notes
  function noteOn(note) {
    if (note < 0 || note > 127) return;
    const n = holders.get(note) || 0;
    holders.set(note, n + 1);
    if (n === 0) {
      sustained.delete(note);
      send("/synth/note/on", [note, state.velocity]);
    }
    shade(note);
  }

  function noteOff(note) {
    const n = holders.get(note) || 0;
    if (n <= 0) return;
    if (n > 1) { holders.set(note, n - 1); return; }
    holders.delete(note);
    if (sustainOn()) sustained.add(note);
    else send("/synth/note/off", [note]);
    shade(note);
  }

  function sustainOn() { return state.sustain || state.spaceSustain; }

  function sustainChanged() {
    $("sustain").setAttribute("aria-pressed", String(state.sustain));
    if (!sustainOn()) {
      for (const note of sustained) {
        if (!holders.has(note)) send("/synth/note/off", [note]);
        sustained.delete(note);
        shade(note);
      }
    }
  }

  function releaseEverything(panic) {
    holders.clear();
    sustained.clear();
    computerKeys.clear();
    pointers.clear();
    if (panic) send("/synth/panic", []);
    for (const k of document.querySelectorAll(".key")) k.classList.remove("down", "held");
  }

  function shade(note) {
    const key = document.querySelector(`.key[data-note="${note}"]`);
    if (!key) return;
    key.classList.toggle("down", holders.has(note));
    key.classList.toggle("held", !holders.has(note) && sustained.has(note));
  }

  // The computer keyboard, as DAWs lay it out: the home row plays white keys, the row above the black ones.
  const KEY_OFFSETS = { KeyA: 0, KeyW: 1, KeyS: 2, KeyE: 3, KeyD: 4, KeyF: 5, KeyT: 6, KeyG: 7, KeyY: 8, KeyH: 9, KeyU: 10, KeyJ: 11, KeyK: 12 };
  const LETTERS = Object.fromEntries(Object.entries(KEY_OFFSETS).map(([code, n]) => [n, code.slice(3)]));

  function codeOf(event) {
    if (event.code) return event.code;
    const k = (event.key || "").toUpperCase();
    return k.length === 1 && k >= "A" && k <= "Z" ? `Key${k}` : event.key === " " ? "Space" : "";
  }

  function typing(event) {
    const t = event.target;
    return t && (t.tagName === "INPUT" && (t.type === "text" || t.type === "search") || t.tagName === "SELECT" || t.isContentEditable);
  }

  function rootNote() { return 12 * (state.octave + 1); }

  function setOctave(octave) {
    state.octave = Math.max(-1, Math.min(8, octave));
    $("octave").textContent = `C${state.octave}`;
    buildKeyboard();
  }

  function setVelocity(v) {
    state.velocity = Math.max(1, Math.min(127, Math.round(v)));
    $("velocity").value = state.velocity;
    $("velocity-value").textContent = state.velocity;
  }

  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || typing(event)) return;
    const code = codeOf(event);
    if (code === "Escape") { releaseEverything(true); return; }
    if (code === "Space") {
      event.preventDefault();
      if (!state.spaceSustain) { state.spaceSustain = true; sustainChanged(); }
      return;
    }
    if (event.repeat) { if (code in KEY_OFFSETS) event.preventDefault(); return; }
    if (code in KEY_OFFSETS) {
      event.preventDefault();
      if (computerKeys.has(code)) return;
      const note = rootNote() + KEY_OFFSETS[code];
      computerKeys.set(code, note);
      noteOn(note);
    } else if (code === "KeyZ") setOctave(state.octave - 1);
    else if (code === "KeyX") setOctave(state.octave + 1);
    else if (code === "KeyC") setVelocity(state.velocity - 10);
    else if (code === "KeyV") setVelocity(state.velocity + 10);
  });

  document.addEventListener("keyup", (event) => {
    const code = codeOf(event);
    if (code === "Space") { state.spaceSustain = false; sustainChanged(); return; }
    const note = computerKeys.get(code);
    if (note !== undefined) {
      computerKeys.delete(code);
      noteOff(note);
    }
  });

  // A page that loses the focus never hears the key-ups: let go of what the computer keyboard holds.
  window.addEventListener("blur", () => {
    for (const [code, note] of computerKeys) { computerKeys.delete(code); noteOff(note); }
    if (state.spaceSustain) { state.spaceSustain = false; sustainChanged(); }
  });

  // ------------------------------------------------------------------ the on-screen keyboard
  const BLACK = new Set([1, 3, 6, 8, 10]);

  function keyboardSpan() {
    // As many octaves as leave each white key at least ~44 px (a fingertip), 1 to 4.
    const width = $("keyboard").clientWidth || window.innerWidth;
    const octaves = Math.max(1, Math.min(4, Math.floor(width / (7 * 44))));
    const lowC = Math.floor(state.noteLow / 12) * 12;
    const highC = Math.ceil(state.noteHigh / 12) * 12;
    let start = rootNote() - 12 * Math.floor((octaves - 1) / 2);
    start = Math.max(lowC, Math.min(start, highC - 12 * octaves));
    return [start, start + 12 * octaves];
  }

  function buildKeyboard() {
    const board = $("keyboard");
    const [lo, hi] = keyboardSpan();
    board.textContent = "";
    const whites = [];
    for (let n = lo; n <= hi; n++) if (!BLACK.has(n % 12)) whites.push(n);
    const whiteWidth = 100 / whites.length;
    let w = 0;
    for (let n = lo; n <= hi; n++) {
      const key = document.createElement("div");
      const black = BLACK.has(n % 12);
      key.className = `key ${black ? "black" : "white"}`;
      key.dataset.note = String(n);
      if (n < state.noteLow || n > state.noteHigh) key.classList.add("off");
      const offset = n - rootNote();
      const letter = offset >= 0 && offset <= 12 ? LETTERS[offset] : "";
      key.innerHTML = `<span class="pc"></span><span class="name"></span>`;
      key.firstChild.textContent = letter || "";
      key.lastChild.textContent = n % 12 === 0 ? `C${n / 12 - 1}` : "";
      if (black) {
        key.style.left = `calc(${w * whiteWidth}% - ${whiteWidth * 0.32}%)`;
        key.style.width = `${whiteWidth * 0.64}%`;
      } else {
        w += 1;
      }
      board.append(key);
    }
    for (const note of new Set([...holders.keys(), ...sustained])) shade(note);
  }

  function keyAt(x, y) {
    const el = document.elementFromPoint(x, y);
    const key = el && el.closest(".key");
    return key && $("keyboard").contains(key) ? parseInt(key.dataset.note, 10) : null;
  }

  const board = $("keyboard");
  board.addEventListener("pointerdown", (event) => {
    const note = keyAt(event.clientX, event.clientY);
    if (note === null) return;
    event.preventDefault();
    board.setPointerCapture(event.pointerId);
    pointers.set(event.pointerId, note);
    noteOn(note);
  });
  board.addEventListener("pointermove", (event) => {
    if (!pointers.has(event.pointerId)) return;
    const note = keyAt(event.clientX, event.clientY);
    const was = pointers.get(event.pointerId);
    if (note !== null && note !== was) { // a glissando: the finger slid onto the next key
      pointers.set(event.pointerId, note);
      noteOn(note);
      noteOff(was);
    }
  });
  const lift = (event) => {
    const note = pointers.get(event.pointerId);
    if (note === undefined) return;
    pointers.delete(event.pointerId);
    noteOff(note);
  };
  board.addEventListener("pointerup", lift);
  board.addEventListener("pointercancel", lift);
  board.addEventListener("contextmenu", (event) => event.preventDefault());

  // ------------------------------------------------------------------ wiring
  $("search").addEventListener("input", filterPresets);
  $("morph").addEventListener("input", sendMorph);
  $("morph-a").addEventListener("change", sendMorph);
  $("morph-b").addEventListener("change", sendMorph);
  for (const k of ["a", "b", "c", "d"]) $(`corner-${k}`).addEventListener("change", sendCorners);
  const pad = $("xy");
  pad.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    state.dragging = "xy";
    if (!state.cornersSent) sendCorners();
    moveXY(event);
  });
  pad.addEventListener("pointermove", (event) => { if (state.dragging === "xy" && pad.hasPointerCapture(event.pointerId)) moveXY(event); });
  const endDrag = () => { state.dragging = null; };
  pad.addEventListener("pointerup", endDrag);
  pad.addEventListener("pointercancel", endDrag);
  $("method").addEventListener("change", () => send("/synth/method", [$("method").value]));
  $("gain").addEventListener("input", () => {
    state.dragging = "gain";
    $("gain-value").textContent = parseFloat($("gain").value).toFixed(2);
    sendSoon("gain", "/synth/gain", [parseFloat($("gain").value)]);
  });
  $("gain").addEventListener("change", endDrag);
  $("panic").addEventListener("click", () => releaseEverything(true));
  $("oct-down").addEventListener("click", () => setOctave(state.octave - 1));
  $("oct-up").addEventListener("click", () => setOctave(state.octave + 1));
  $("velocity").addEventListener("input", () => setVelocity(parseFloat($("velocity").value)));
  $("sustain").addEventListener("click", () => { state.sustain = !state.sustain; sustainChanged(); });
  $("learn").addEventListener("click", () => {
    send("/synth/midi/learn", [$("learn-target").value]);
    $("learn-note").textContent = `move a knob: it will move ${$("learn-target").value}`;
  });
  $("keep").addEventListener("click", () => {
    const name = $("keep-name").value.trim();
    if (name) send("/web/preset/keep", [name]);
  });
  // Buttons and menus keep no focus once used, so Space and the letters go on playing after a click.
  document.addEventListener("pointerup", (event) => {
    const b = event.target instanceof Element && event.target.closest("button");
    if (b) b.blur();
  });
  document.addEventListener("change", (event) => { if (event.target.tagName === "SELECT") event.target.blur(); });
  let resizeTimer = 0;
  window.addEventListener("resize", () => { clearTimeout(resizeTimer); resizeTimer = setTimeout(buildKeyboard, 150); });

  setOctave(4);
  setVelocity(100);
  connect();

  // For scripts and the tests: the page's own send, and what it knows.
  window.melsynth = { send, state };
})();
