// One self-contained HTML page that replays a recorded simulator run (sim-recorder.ts), step
// by step: the servers on a ring coloured by term (the leader ringed, a crashed server grey,
// a cut one dashed), each server's log with committed and uncommitted entries, the messages
// in flight between them, the faults as they happen, and a slider to move through the steps
// forward and back. A failing run opens at the step where the checker complained, with its
// message. RaftScope's picture (raft.github.io), drawn from the real code's recorded run.
//
// No build step and nothing fetched: the recording is embedded as JSON, the viewer is plain
// JavaScript and SVG.

import type { Recording } from './sim-recorder.js';

/** The recording as JSON safe inside a <script> element. */
function embedded(recording: Recording): string {
  return JSON.stringify(recording)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

function escapeHtml(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

export function renderReplayHtml(recording: Recording): string {
  const verdict = recording.failure === undefined ? '<span class="ok">passed</span>' : `<span class="bad">failed</span>`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Flotilla simulator — seed ${recording.seed}</title>
<style>
  :root { --bg: #0f1419; --panel: #182029; --text: #d8dee6; --muted: #8a96a3; --line: #2a3441; --accent: #5cb3ff; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; background: var(--bg); color: var(--text); }
  header { padding: 14px 20px; border-bottom: 1px solid var(--line); display: flex; gap: 18px; align-items: baseline; flex-wrap: wrap; }
  header h1 { font-size: 18px; margin: 0; font-weight: 600; }
  header .settings { color: var(--muted); font-size: 12px; }
  .ok { color: #6fd18b; font-weight: 600; } .bad { color: #ff6b6b; font-weight: 600; }
  main { display: grid; grid-template-columns: 400px minmax(0, 1fr); gap: 16px; padding: 16px 20px; }
  .panel { background: var(--panel); border: 1px solid var(--line); border-radius: 8px; padding: 12px; }
  .panel h2 { margin: 0 0 8px; font-size: 13px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); font-weight: 600; }
  #ring { width: 100%; height: auto; display: block; }
  #logs { font: 12px/1 ui-monospace, SFMono-Regular, Menlo, monospace; overflow-x: auto; }
  .logrow { display: flex; align-items: center; gap: 3px; margin: 6px 0; white-space: nowrap; }
  .logrow .name { width: 96px; flex: none; color: var(--muted); }
  .entry { flex: none; width: 18px; height: 22px; display: inline-flex; align-items: center; justify-content: center; border-radius: 3px; color: #0b0f14; font-weight: 600; font-size: 11px; }
  .entry.uncommitted { opacity: .45; outline: 1px dashed #fff6; outline-offset: -2px; }
  .gap { color: var(--muted); padding: 0 4px; }
  #controls { grid-column: 1 / span 2; display: flex; gap: 10px; align-items: center; flex-wrap: wrap; }
  #controls input[type=range] { flex: 1; min-width: 260px; accent-color: var(--accent); }
  button { background: #243042; color: var(--text); border: 1px solid var(--line); border-radius: 6px; padding: 5px 10px; cursor: pointer; font-size: 13px; }
  button:hover { background: #2d3c52; }
  #clock { font-variant-numeric: tabular-nums; color: var(--muted); min-width: 230px; }
  #timeline { grid-column: 1 / span 2; position: relative; height: 14px; background: #121a22; border-radius: 4px; }
  #timeline span { position: absolute; top: 2px; width: 2px; height: 10px; }
  #events { grid-column: 1 / span 2; font: 12px/1.5 ui-monospace, SFMono-Regular, Menlo, monospace; max-height: 220px; overflow-y: auto; }
  #events div.now { background: #243042; }
  #events .t { color: var(--muted); display: inline-block; width: 80px; }
  #failure { grid-column: 1 / span 2; border-color: #ff6b6b66; color: #ffb3b3; display: none; white-space: pre-wrap; }
  .legend { color: var(--muted); font-size: 12px; margin-top: 6px; }
  .legend i { display: inline-block; width: 10px; height: 2px; vertical-align: middle; margin: 0 4px 0 10px; }
</style>
</head>
<body>
<header>
  <h1>Flotilla simulator — seed ${recording.seed}</h1>
  <div>${verdict}</div>
  <div class="settings">${escapeHtml(recording.settings)}${recording.truncated ? ' · recording truncated' : ''}</div>
</header>
<main>
  <section class="panel"><h2>Servers</h2><svg id="ring" viewBox="0 0 400 400" aria-label="servers on a ring"></svg>
    <div class="legend">messages:<i style="background:#5cb3ff"></i>append<i style="background:#6b7785"></i>heartbeat<i style="background:#ffb84d"></i>vote<i style="background:#c58cff"></i>other</div>
  </section>
  <section class="panel"><h2>Logs <span id="logsnote" style="text-transform:none;letter-spacing:0"></span></h2><div id="logs"></div></section>
  <div id="controls">
    <button id="back" title="one step back (←)">◀</button>
    <button id="play" title="play / pause (space)">▶ play</button>
    <button id="fwd" title="one step forward (→)">▶</button>
    <input id="slider" type="range" min="0" value="0" aria-label="step">
    <span id="clock"></span>
  </div>
  <div id="timeline" title="faults (red: crash, orange: cut, blue: pause, white: violation)"></div>
  <section id="failure" class="panel"></section>
  <section id="events" class="panel"></section>
</main>
<script id="recording" type="application/json">${embedded(recording)}</script>
<script>
'use strict';
const rec = JSON.parse(document.getElementById('recording').textContent);
const events = rec.events;
const N = rec.servers;
const termColor = (term) => term === 0 ? '#55606c' : 'hsl(' + ((term * 47) % 360) + ' 70% 62%)';
const msgColor = (type) => type === 'App' || type === 'AppResp' ? '#5cb3ff' : type.startsWith('Heartbeat') ? '#6b7785' : type.includes('Vote') ? '#ffb84d' : '#c58cff';
// Per step: each server's state and status (references, cheap), and the messages in flight.
const stepStates = [], stepStatus = [];
let states = new Array(N + 1).fill(undefined);
let status = Array.from({ length: N + 1 }, () => ({ up: false, cut: false, paused: 0 }));
let failStep = -1;
for (let k = 0; k < events.length; k++) {
  const e = events[k];
  if (e.kind === 'state') { states = states.slice(); states[e.node] = e.state; }
  else if (e.kind === 'down' || e.kind === 'up' || e.kind === 'cut' || e.kind === 'heal' || e.kind === 'pause') {
    status = status.slice();
    const s = { ...status[e.node] };
    if (e.kind === 'down') { s.up = false; } else if (e.kind === 'up') { s.up = true; }
    else if (e.kind === 'cut') { s.cut = true; } else if (e.kind === 'heal') { s.cut = false; }
    else { s.paused = e.t + parseInt(e.detail, 10); }
    status[e.node] = s;
  } else if (e.kind === 'violation' && failStep < 0) failStep = k;
  stepStates.push(states); stepStatus.push(status);
}
const slider = document.getElementById('slider');
slider.max = String(Math.max(0, events.length - 1));
const pos = (i) => { const a = (2 * Math.PI * (i - 1)) / N - Math.PI / 2; return [200 + 150 * Math.cos(a), 200 + 150 * Math.sin(a)]; };
const svg = document.getElementById('ring');
const NS = 'http://www.w3.org/2000/svg';
const el = (name, attrs, text) => { const n = document.createElementNS(NS, name); for (const k in attrs) n.setAttribute(k, attrs[k]); if (text !== undefined) n.textContent = text; return n; };
/** Messages sent before step k and not yet delivered at it (matched by from, to, type, term, in order), at most 40 ms old. */
function inFlight(k) {
  const t = events[k].t, out = [];
  for (let j = k; j >= 0 && events[j].t >= t - 40; j--) {
    const e = events[j];
    if (e.kind !== 'send') continue;
    let delivered = false;
    for (let m = j + 1; m <= k; m++) { const d = events[m]; if (d.kind === 'deliver' && d.from === e.from && d.to === e.to && d.type === e.type && d.term === e.term) { delivered = true; break; } }
    if (!delivered) out.push(e);
  }
  return out;
}
function drawRing(k) {
  svg.replaceChildren();
  const st = stepStates[k], ss = stepStatus[k], t = events[k].t;
  for (const m of inFlight(k)) {
    if (m.from > N || m.to > N) continue;
    const [x1, y1] = pos(m.from), [x2, y2] = pos(m.to);
    const age = Math.min(1, (t - m.t) / 20);
    svg.append(el('line', { x1, y1, x2, y2, stroke: msgColor(m.type), 'stroke-opacity': 0.25, 'stroke-width': 1.5 }));
    svg.append(el('circle', { cx: x1 + (x2 - x1) * (0.15 + 0.7 * age), cy: y1 + (y2 - y1) * (0.15 + 0.7 * age), r: m.entries > 0 ? 6 : 4, fill: msgColor(m.type) }));
  }
  for (let i = 1; i <= N; i++) {
    const [x, y] = pos(i), s = st[i], stat = ss[i];
    if (s === undefined && !stat.up) continue;
    const up = stat.up, paused = stat.paused > t;
    const fill = up ? termColor(s ? s.term : 0) : '#3a424c';
    const g = el('g', {});
    if (up && s && s.role === 'leader') g.append(el('circle', { cx: x, cy: y, r: 38, fill: 'none', stroke: '#ffffff', 'stroke-width': 3 }));
    g.append(el('circle', { cx: x, cy: y, r: 32, fill, stroke: stat.cut ? '#ff9f43' : '#0b0f14', 'stroke-width': stat.cut ? 3 : 2, 'stroke-dasharray': stat.cut ? '6 4' : '' }));
    g.append(el('text', { x, y: y - 4, 'text-anchor': 'middle', 'font-size': 15, 'font-weight': 700, fill: '#0b0f14' }, 'S' + i));
    const spare = s !== undefined && s.last === 0 && s.term === 0;
    const role = !up ? 'down' : paused ? 'paused' : spare ? 'spare' : s ? s.role : '';
    g.append(el('text', { x, y: y + 13, 'text-anchor': 'middle', 'font-size': 10, fill: '#0b0f14' }, role + (up && s ? ' T' + s.term : '')));
    svg.append(g);
  }
  const leaders = [];
  for (let i = 1; i <= N; i++) if (ss[i].up && st[i] && st[i].role === 'leader') leaders.push('S' + i + ' (term ' + st[i].term + ')');
  svg.append(el('text', { x: 200, y: 204, 'text-anchor': 'middle', 'font-size': 12, fill: '#8a96a3' }, leaders.length ? 'leader ' + leaders.join(', ') : 'no leader'));
}
function drawLogs(k) {
  const box = document.getElementById('logs');
  box.replaceChildren();
  const st = stepStates[k], ss = stepStatus[k];
  for (let i = 1; i <= N; i++) {
    const s = st[i];
    if (s === undefined || (s.last === 0 && s.term === 0)) continue; // an empty slot, not (yet) a member
    const row = document.createElement('div'); row.className = 'logrow';
    const name = document.createElement('span'); name.className = 'name';
    name.textContent = 'S' + i + (ss[i].up ? '' : ' (down)') + ' c' + s.commit;
    row.append(name);
    if (s.first > 1) { const gap = document.createElement('span'); gap.className = 'gap'; gap.textContent = '… ' + (s.first - 1); row.append(gap); }
    s.logTerms.forEach((term, j) => {
      const index = s.first + j;
      const b = document.createElement('span');
      b.className = 'entry' + (index > s.commit ? ' uncommitted' : '');
      b.style.background = termColor(term);
      b.title = 'index ' + index + ', term ' + term + (index > s.commit ? ', not committed' : ', committed');
      b.textContent = String(term);
      row.append(b);
    });
    box.append(row);
  }
  document.getElementById('logsnote').textContent = '(the last entries of each; the number is the term; faded: not yet committed)';
}
function describe(e) {
  switch (e.kind) {
    case 'state': return 'S' + e.node + ' ' + e.state.role + ' term ' + e.state.term + ' commit ' + e.state.commit + ' last ' + e.state.last;
    case 'send': return 'S' + e.from + ' → S' + e.to + ' ' + e.type + ' (term ' + e.term + (e.entries ? ', ' + e.entries + ' entries' : '') + ')';
    case 'deliver': return 'S' + e.to + ' ← S' + e.from + ' ' + e.type + ' (term ' + e.term + ')';
    case 'violation': return 'CHECKER: ' + e.text;
    default: return e.kind.toUpperCase() + ' S' + e.node + (e.detail ? ' ' + e.detail : '');
  }
}
function drawEvents(k) {
  const box = document.getElementById('events');
  box.replaceChildren();
  for (let j = Math.max(0, k - 14); j <= Math.min(events.length - 1, k + 6); j++) {
    const d = document.createElement('div');
    if (j === k) d.className = 'now';
    const t = document.createElement('span'); t.className = 't'; t.textContent = events[j].t + ' ms';
    d.append(t, document.createTextNode(describe(events[j])));
    box.append(d);
  }
}
function show(k) {
  k = Math.max(0, Math.min(events.length - 1, k));
  slider.value = String(k);
  drawRing(k); drawLogs(k); drawEvents(k);
  document.getElementById('clock').textContent = 't = ' + events[k].t + ' ms · step ' + (k + 1) + ' of ' + events.length;
}
const timeline = document.getElementById('timeline');
events.forEach((e, k) => {
  const color = e.kind === 'down' ? '#ff6b6b' : e.kind === 'cut' ? '#ff9f43' : e.kind === 'pause' ? '#5cb3ff' : e.kind === 'violation' ? '#ffffff' : undefined;
  if (color === undefined || (e.kind === 'down' && k > events.length - N - 2 && rec.failure === undefined)) return;
  const mark = document.createElement('span'); mark.style.left = (100 * k / Math.max(1, events.length - 1)) + '%'; mark.style.background = color; timeline.append(mark);
});
if (rec.failure !== undefined) { const f = document.getElementById('failure'); f.style.display = 'block'; f.textContent = 'The checker failed this run: ' + rec.failure; }
let timer;
const play = document.getElementById('play');
play.onclick = () => {
  if (timer) { clearInterval(timer); timer = undefined; play.textContent = '▶ play'; return; }
  play.textContent = '❚❚ pause';
  timer = setInterval(() => { const k = Number(slider.value) + 1; if (k >= events.length) { play.onclick(); return; } show(k); }, 40);
};
document.getElementById('back').onclick = () => show(Number(slider.value) - 1);
document.getElementById('fwd').onclick = () => show(Number(slider.value) + 1);
slider.oninput = () => show(Number(slider.value));
document.addEventListener('keydown', (e) => { if (e.key === 'ArrowLeft') show(Number(slider.value) - 1); if (e.key === 'ArrowRight') show(Number(slider.value) + 1); if (e.key === ' ') { e.preventDefault(); play.onclick(); } });
show(failStep >= 0 ? failStep : 0);
</script>
</body>
</html>
`;
}
