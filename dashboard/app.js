// The Flotilla dashboard: every member's admin port serves this page. No build step and no
// library: one EventSource on /dashboard/events brings a snapshot of every Raft group once a
// second (src/server/dashboard.ts describes its fields); the page redraws the member cards,
// one table per group, two charts drawn on canvases, and a timeline of what changed between
// successive snapshots (leaders, terms, members lost and back, quorum).
//
// Everything a member reports is put into the page as text (textContent), never as HTML.

const HISTORY_MS = 5 * 60 * 1000;
const WINDOW_MS_MIN = 60 * 1000;
const EVENTS_MAX = 200;
/** Two snapshots further apart than this are not joined by a line (the stream was down). */
const GAP_MS = 3500;
const GROUPS = {
  kv: { title: 'kv', sub: 'key/value' },
  zk: { title: 'zk', sub: 'ZooKeeper' },
  etcd: { title: 'etcd', sub: 'etcd v3' },
};
const COLORS = { kv: '#2563eb', zk: '#9333ea', etcd: '#0d9488' };

const state = {
  previous: undefined,
  /** {atMs, applied: {kv: n, ...}, rate: {kv: n, ...}}, oldest first, HISTORY_MS long. */
  history: [],
  /** {atMs, kind, group, text}, newest first. */
  events: [],
  /** Each group's last known leader (never 0): a new leader is told as a change from it. */
  lastLeader: {},
  live: 'connecting',
};

// ---- DOM helpers ----

/** An element with attributes (class, data-*, href, title) and children (nodes, strings, null). */
function h(tag, attributes, ...children) {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    element.setAttribute(name, String(value));
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    element.append(typeof child === 'string' || typeof child === 'number' ? String(child) : child);
  }
  return element;
}

function byId(id) {
  return document.getElementById(id);
}

function clockTime(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
}

function ago(ms) {
  if (ms === null || ms === undefined) return 'never';
  if (ms < 1000) return 'just now';
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s ago`;
  if (ms < 3_600_000) return `${Math.floor(ms / 60_000)} min ago`;
  return `${(ms / 3_600_000).toFixed(1)} h ago`;
}

function plural(count, word) {
  return `${count} ${word}${count === 1 ? '' : 's'}`;
}

// ---- The stream ----

function connect() {
  const source = new EventSource('/dashboard/events');
  source.onopen = () => setLive('live');
  source.onmessage = (event) => {
    setLive('live');
    onSnapshot(JSON.parse(event.data), Date.now());
  };
  source.onerror = () => {
    setLive('lost');
    // A refused stream (503: too many pages open) is not retried by the browser; retry it here.
    if (source.readyState === EventSource.CLOSED) setTimeout(connect, 3000);
  };
}

function setLive(live) {
  if (live === state.live) return;
  const before = state.live;
  state.live = live;
  byId('live').dataset.state = live;
  byId('live-text').textContent = live === 'live' ? 'live' : live === 'lost' ? 'reconnecting…' : 'connecting';
  document.querySelector('.layout').classList.toggle('stale', live === 'lost');
  const banner = byId('banner');
  banner.hidden = live !== 'lost';
  const self = state.previous?.self;
  const name = self === undefined ? 'the member' : `member ${self}`;
  if (live === 'lost') {
    addEvent(Date.now(), 'stream-lost', '', `lost the connection to ${name}; retrying every second`);
    banner.textContent = `Lost the connection to ${name} at ${clockTime(Date.now())}: below is what it last reported. Retrying every second; another member's admin port serves the same dashboard.`;
  }
  if (live === 'live' && before === 'lost') addEvent(Date.now(), 'stream-back', '', `connected to ${name} again`);
  renderEvents();
}

function onSnapshot(snapshot, atMs) {
  deriveEvents(state.previous, snapshot, atMs);
  record(snapshot, atMs);
  state.previous = snapshot;
  state.previousAtMs = atMs;
  render(snapshot, atMs);
}

// ---- History and events ----

function record(snapshot, atMs) {
  const applied = {};
  const rate = {};
  const last = state.history.at(-1);
  for (const group of snapshot.groups) {
    applied[group.name] = group.applied;
    const before = last?.applied[group.name];
    const seconds = last === undefined ? 0 : (atMs - last.atMs) / 1000;
    rate[group.name] = before === undefined || seconds <= 0 || atMs - last.atMs > GAP_MS ? null : Math.max(0, group.applied - before) / seconds;
  }
  state.history.push({ atMs, applied, rate });
  while (state.history.length > 0 && state.history[0].atMs < atMs - HISTORY_MS) state.history.shift();
}

function addEvent(atMs, kind, group, text) {
  state.events.unshift({ atMs, kind, group, text });
  if (state.events.length > EVENTS_MAX) state.events.length = EVENTS_MAX;
}

function deriveEvents(previous, snapshot, atMs) {
  deriveEventsFrom(previous, snapshot, atMs);
  for (const group of snapshot.groups) if (group.leader !== 0) state.lastLeader[group.name] = group.leader;
}

function deriveEventsFrom(previous, snapshot, atMs) {
  if (previous === undefined) {
    const leaders = snapshot.groups.map((g) => `${g.name} ${g.leader === 0 ? 'has no leader' : `led by member ${g.leader}`} (term ${g.term})`);
    addEvent(atMs, 'start', '', `watching from member ${snapshot.self}: ${leaders.join(', ')}`);
    return;
  }
  const before = new Map(previous.members.map((m) => [m.id, m]));
  for (const member of snapshot.members) {
    const was = before.get(member.id);
    if (was === undefined) addEvent(atMs, 'join', '', `member ${member.id} is now known`);
    else if (was.up && !member.up) addEvent(atMs, 'down', '', `member ${member.id} stopped answering${member.error === null ? '' : `: ${member.error}`}`);
    else if (!was.up && member.up) addEvent(atMs, 'up', '', `member ${member.id} is back${member.pid === null ? '' : ` (pid ${member.pid})`}`);
  }
  const groupsBefore = new Map(previous.groups.map((g) => [g.name, g]));
  for (const group of snapshot.groups) {
    const was = groupsBefore.get(group.name);
    if (was === undefined) continue;
    if (group.leader !== was.leader) {
      const last = state.lastLeader[group.name];
      if (group.leader === 0) addEvent(atMs, 'leader-lost', group.name, `no leader (member ${was.leader} led term ${was.term})`);
      else if (last === undefined || last === group.leader) addEvent(atMs, 'leader', group.name, `member ${group.leader} leads term ${group.term}`);
      else addEvent(atMs, 'leader', group.name, `member ${group.leader} leads term ${group.term} (was member ${last})`);
    } else if (group.term !== was.term) {
      addEvent(atMs, 'term', group.name, `term ${was.term} → ${group.term}${group.leader === 0 ? '' : `, member ${group.leader} still leads`}`);
    }
    if (was.hasQuorum && !group.hasQuorum) addEvent(atMs, 'quorum-lost', group.name, `lost its quorum: ${group.upVoters} of ${group.voters.length} voters up, ${group.quorum} needed`);
    if (!was.hasQuorum && group.hasQuorum) addEvent(atMs, 'quorum-back', group.name, `has a quorum again (${group.upVoters} of ${group.voters.length} voters up)`);
    const added = group.voters.filter((id) => !was.voters.includes(id));
    const removed = was.voters.filter((id) => !group.voters.includes(id));
    if (added.length > 0 || removed.length > 0) addEvent(atMs, 'membership', group.name, `voters are now ${group.voters.join(', ')}`);
  }
}

// ---- Rendering ----

function render(snapshot, atMs) {
  const self = snapshot.members.find((m) => m.self);
  byId('viewpoint').textContent = `viewed from member ${snapshot.self}${self?.admin ? ` · ${self.admin}` : ''} · updated ${clockTime(atMs)}`;
  byId('members').replaceChildren(...snapshot.members.map((member) => renderMember(member, snapshot)));
  const groups = snapshot.groups.map(renderGroup);
  byId('groups').replaceChildren(...(groups.length > 0 ? groups : [h('div', { class: 'panel empty' }, 'This member hosts no Raft group yet.')]));
  renderCharts(atMs);
  renderEvents();
}

function renderMember(member, snapshot) {
  const leads = snapshot.groups.filter((g) => g.leader === member.id).map((g) => h('span', { class: `pill group-${g.name}`, title: `leader of ${g.name}, term ${g.term}` }, `leads ${g.name}`));
  const href = member.admin === null ? null : `${location.protocol}//${member.admin}/`;
  const name = member.self || href === null ? `member ${member.id}` : h('a', { href, title: "open this member's dashboard" }, `member ${member.id}`);
  const status = member.up ? `answered ${ago(member.lastContactAgoMs)}` : `last answer ${ago(member.lastContactAgoMs)}`;
  return h(
    'div',
    { class: 'member', 'data-member': member.id, 'data-up': member.up },
    h(
      'div',
      { class: 'member-head' },
      h('span', { class: 'member-name' }, name, member.self ? h('span', { class: 'hint' }, ' (this page)') : null),
      h('span', { class: `pill ${member.up ? 'up' : 'down'}` }, member.up ? 'up' : 'down'),
    ),
    h('div', { class: 'member-line' }, 'pid ', h('b', null, member.pid ?? '—'), ' · admin ', h('b', null, member.admin ?? 'unknown')),
    h('div', { class: 'member-line', title: member.error ?? '' }, member.up ? status : `${status} · ${member.error ?? 'no answer'}`),
    member.self
      ? h('div', { class: 'member-line' }, 'the member serving this page')
      : h('div', { class: 'member-line' }, 'peer link from here: ', h('b', null, member.connected ? 'connected' : 'not connected')),
    h('div', { class: 'leads' }, ...leads),
  );
}

function renderGroup(group) {
  const info = GROUPS[group.name] ?? { title: group.name, sub: '' };
  const quorum = group.hasQuorum
    ? h('span', { class: 'pill ok' }, `quorum · ${group.upVoters}/${group.voters.length} voters up · tolerates ${plural(group.tolerated, 'failure')}`)
    : h('span', { class: 'pill bad' }, `no quorum · ${group.upVoters}/${group.voters.length} up, ${group.quorum} needed`);
  const head = h(
    'div',
    { class: 'group-head' },
    h('div', { class: 'group-title' }, info.title, h('span', { class: 'sub' }, `${info.sub} · Raft group ${group.raftGroup}`)),
    h(
      'div',
      { class: 'group-facts' },
      h('span', null, 'leader ', h('b', { class: 'group-leader' }, group.leader === 0 ? 'none' : `member ${group.leader}`)),
      h('span', null, 'term ', h('b', null, group.term)),
      h('span', null, 'commit ', h('b', null, group.commit)),
      quorum,
    ),
  );
  const columns = [
    ['member', ''],
    ['role', ''],
    ['status', 'up: it answered this round; down: the values are the last it reported'],
    ['term', ''],
    ['follows', 'the leader this member follows'],
    ['last', 'last index in its log'],
    ['commit', 'its commit index'],
    ['applied', 'its applied index'],
    ['match', "the leader's match index for it"],
    ['next', 'the next index the leader sends it'],
    ['lag', "the leader's last index minus its match"],
    ['kind', 'voter or learner'],
  ];
  const header = h('tr', null, ...columns.map(([c, title], i) => h('th', { class: i <= 2 ? 'left' : null, title: title || null }, c)));
  const table = h('div', { class: 'table-wrap' }, h('table', null, h('thead', null, header), h('tbody', null, ...group.members.map(renderRow))));
  return h('section', { class: 'panel group', 'data-group': group.name, 'data-leader': group.leader }, head, table);
}

function cell(value, attributes) {
  return h('td', attributes, value === null || value === undefined ? h('span', { class: 'none' }, '—') : value);
}

function renderRow(row) {
  const role = row.up ? (row.role ?? 'unknown') : 'down';
  const lagClass = row.lag === null || row.lag === 0 ? null : row.lag < 100 ? 'lag-some' : 'lag-big';
  return h(
    'tr',
    { 'data-member': row.id, 'data-role': role, 'data-up': row.up },
    cell(`member ${row.id}`, { class: 'left keep' }),
    cell(row.up ? h('span', { class: `role role-${role}` }, role) : null, { class: 'left keep' }),
    cell(h('span', { class: `pill ${row.up ? 'up' : 'down'}`, title: row.up ? null : 'the values are the last it reported' }, row.up ? 'up' : 'down'), { class: 'left keep' }),
    cell(row.term),
    cell(row.leader === null ? null : row.leader === 0 ? 'none' : row.leader),
    cell(row.lastIndex),
    cell(row.commit),
    cell(row.applied),
    cell(row.match),
    cell(row.next),
    cell(row.lag, { class: lagClass }),
    cell(row.voter ? 'voter' : 'learner'),
  );
}

function renderEvents() {
  const items = state.events.map((event) =>
    h(
      'li',
      { 'data-kind': event.kind },
      h('time', null, clockTime(event.atMs)),
      h('span', null, event.group === '' ? '' : h('span', { class: `pill group-${event.group}` }, event.group)),
      h('span', { class: 'what' }, event.text),
    ),
  );
  byId('events').replaceChildren(...items);
}

// ---- Charts (canvas, drawn here) ----

function renderCharts(nowMs) {
  const names = state.previous?.groups.map((g) => g.name) ?? [];
  const windowMs = Math.min(HISTORY_MS, Math.max(WINDOW_MS_MIN, nowMs - (state.history[0]?.atMs ?? nowMs)));
  const series = (field) => names.map((name) => ({ name, color: COLORS[name] ?? '#64748b', points: state.history.map((p) => ({ t: p.atMs, v: p[field][name] ?? null })) }));
  drawChart(byId('chart-rate'), series('rate'), nowMs, windowMs, { zeroBased: true, format: formatTick });
  drawChart(byId('chart-applied'), series('applied'), nowMs, windowMs, { zeroBased: false, format: formatTick });
  byId('legend').replaceChildren(...names.map((name) => h('span', null, h('span', { class: 'swatch', style: `background:${COLORS[name] ?? '#64748b'}` }), name)));
}

function formatTick(value) {
  if (value >= 10_000) return `${Number((value / 1000).toFixed(1))}k`;
  return String(Number(value.toFixed(2)));
}

/** A round number at or above `value` (1, 2, 5 × 10^k). */
function niceCeil(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

/** The y axis: at most five steps of a round size, from 0 (or below the lowest value) to at least the highest. */
function axisRange(values, zeroBased) {
  const max = values.length === 0 ? 1 : Math.max(...values);
  const min = zeroBased || values.length === 0 ? 0 : Math.min(...values);
  let step = niceCeil(Math.max((max - min) / 5, zeroBased ? 0.2 : 1));
  for (let attempt = 0; attempt < 4; attempt++) {
    const low = Math.floor(min / step) * step;
    const steps = Math.max(1, Math.ceil((max - low) / step));
    if (steps <= 5) return { low, high: low + steps * step, steps };
    step = niceCeil(step * 1.01);
  }
  return { low: 0, high: niceCeil(max), steps: 4 };
}

function drawChart(canvas, series, nowMs, windowMs, options) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth;
  const height = canvas.clientHeight;
  if (width === 0 || height === 0) return;
  canvas.width = Math.round(width * ratio);
  canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext('2d');
  ctx.scale(ratio, ratio);
  ctx.clearRect(0, 0, width, height);
  const pad = { left: 52, right: 12, top: 10, bottom: 22 };
  const plotWidth = width - pad.left - pad.right;
  const plotHeight = height - pad.top - pad.bottom;
  const startMs = nowMs - windowMs;
  const values = series.flatMap((s) => s.points.filter((p) => p.v !== null && p.t >= startMs).map((p) => p.v));
  const { low, high, steps } = axisRange(values, options.zeroBased);
  const x = (t) => pad.left + ((t - startMs) / windowMs) * plotWidth;
  const y = (v) => pad.top + plotHeight - ((v - low) / (high - low)) * plotHeight;
  drawAxes(ctx, { pad, width, height, plotWidth, plotHeight, low, high, steps, windowMs, format: options.format, y });
  ctx.save();
  ctx.beginPath();
  ctx.rect(pad.left, pad.top, plotWidth, plotHeight);
  ctx.clip();
  for (const s of series) drawLine(ctx, s, x, y);
  ctx.restore();
  if (values.length === 0) {
    ctx.fillStyle = '#94a3b8';
    ctx.font = '12px system-ui, sans-serif';
    ctx.textAlign = 'center';
    ctx.fillText('collecting…', pad.left + plotWidth / 2, pad.top + plotHeight / 2);
  }
}

function drawAxes(ctx, a) {
  ctx.font = '11px system-ui, sans-serif';
  ctx.lineWidth = 1;
  ctx.textBaseline = 'middle';
  for (let i = 0; i <= a.steps; i++) {
    const v = a.low + ((a.high - a.low) * i) / a.steps;
    const yy = Math.round(a.y(v)) + 0.5;
    ctx.strokeStyle = i === 0 ? '#cbd2de' : '#eef1f6';
    ctx.beginPath();
    ctx.moveTo(a.pad.left, yy);
    ctx.lineTo(a.width - a.pad.right, yy);
    ctx.stroke();
    ctx.fillStyle = '#6b7589';
    ctx.textAlign = 'right';
    ctx.fillText(a.format(v), a.pad.left - 8, yy);
  }
  ctx.textBaseline = 'alphabetic';
  const minutes = a.windowMs / 60_000;
  const ticks = minutes <= 1 ? [1, 0.75, 0.5, 0.25, 0] : Array.from({ length: Math.floor(minutes) + 1 }, (_, i) => Math.floor(minutes) - i);
  for (const tick of ticks) {
    const xx = a.pad.left + a.plotWidth * (1 - (tick * 60_000) / a.windowMs);
    ctx.fillStyle = '#6b7589';
    ctx.textAlign = tick === 0 ? 'right' : 'center';
    const label = tick === 0 ? 'now' : tick < 1 ? `-${Math.round(tick * 60)} s` : `-${tick} min`;
    ctx.fillText(label, Math.min(xx, a.width - a.pad.right), a.height - 6);
  }
}

function drawLine(ctx, s, x, y) {
  ctx.strokeStyle = s.color;
  ctx.lineWidth = 2;
  ctx.lineJoin = 'round';
  ctx.beginPath();
  let previous;
  for (const p of s.points) {
    if (p.v === null) {
      previous = undefined;
      continue;
    }
    if (previous === undefined || p.t - previous.t > GAP_MS) ctx.moveTo(x(p.t), y(p.v));
    else ctx.lineTo(x(p.t), y(p.v));
    previous = p;
  }
  ctx.stroke();
}

window.addEventListener('resize', () => renderCharts(Date.now()));
connect();
