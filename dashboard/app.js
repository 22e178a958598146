// The Flotilla dashboard: every member's admin port serves this page. No build step and no
// library: one EventSource on /dashboard/events brings a snapshot of every Raft group once a
// second (src/server/dashboard.ts describes its fields); the page redraws the member cards,
// one table per group, two charts drawn on canvases, and a timeline of what changed between
// successive snapshots (leaders, terms, members lost and back, quorum).
//
// Everything a member reports is put into the page as text (textContent), never as HTML.
//
// Fault buttons (stop, restart, pause, resume, force an election; cut and heal links) appear
// only when the member serving the page allows them (snapshot.faults is not null: it was
// started with --allow-faults, as `npm start` does). Each press is a POST /faults/<action>;
// its answer goes to the timeline. The buttons live in elements that are kept across
// redraws, so a click is never lost to the once-a-second refresh.

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
  /** Member cards by id, each {card, info, controls, buttons}: kept across redraws. */
  cards: new Map(),
  /** The links list's last content, to redraw it only when it changes. */
  linksKey: '',
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
  renderMembers(snapshot);
  renderFaults(snapshot);
  const groups = snapshot.groups.map(renderGroup);
  byId('groups').replaceChildren(...(groups.length > 0 ? groups : [h('div', { class: 'panel empty' }, 'This member hosts no Raft group yet.')]));
  renderCharts(atMs);
  renderEvents();
}

function renderMembers(snapshot) {
  const ids = snapshot.members.map((m) => m.id);
  for (const id of [...state.cards.keys()]) if (!ids.includes(id)) state.cards.delete(id);
  for (const member of snapshot.members) {
    let entry = state.cards.get(member.id);
    if (entry === undefined) {
      entry = { card: h('div', { class: 'member' }), info: h('div', { class: 'member-info' }), controls: h('div', { class: 'member-faults' }), buttons: {} };
      entry.card.append(entry.info, entry.controls);
      for (const [action, label, title] of FAULT_BUTTONS) {
        const button = h('button', { type: 'button', class: `fault fault-${action}`, 'data-fault': action, 'data-member': member.id, title }, label);
        button.addEventListener('click', () => pressFault(action, { member: member.id }, button));
        entry.buttons[action] = button;
        entry.controls.append(button);
      }
      state.cards.set(member.id, entry);
    }
    const paused = snapshot.faults?.paused.includes(member.id) === true;
    entry.card.dataset.member = String(member.id);
    entry.card.dataset.up = String(member.up);
    entry.card.dataset.paused = String(paused);
    entry.info.replaceChildren(...renderMember(member, snapshot, paused));
    entry.controls.hidden = snapshot.faults === null;
    const b = entry.buttons;
    b.pause.hidden = paused;
    b.resume.hidden = !paused;
    b.pause.disabled = member.self || !member.up;
    b.pause.title = member.self ? 'this member serves the page: pause it from another member’s dashboard' : FAULT_TITLES.pause;
    b.stop.disabled = !member.up && !paused;
    b.restart.disabled = !member.up && !paused;
    b.campaign.disabled = !member.up;
  }
  const container = byId('members');
  const cards = snapshot.members.map((m) => state.cards.get(m.id).card);
  if (cards.length !== container.children.length || cards.some((card, i) => container.children[i] !== card)) container.replaceChildren(...cards);
}

const FAULT_BUTTONS = [
  ['stop', 'stop', 'kill -9 (SIGKILL): npm start restarts it after its back-off (1 s, doubling)'],
  ['restart', 'restart', 'a clean stop (SIGTERM); npm start starts it again'],
  ['pause', 'pause', 'SIGSTOP: alive but silent until resumed'],
  ['resume', 'resume', 'SIGCONT: it runs again'],
  ['campaign', 'force election', 'its election timeout fires now in every group: it campaigns (pre-vote first: it wins only if a majority lost the leader)'],
];
const FAULT_TITLES = Object.fromEntries(FAULT_BUTTONS.map(([action, , title]) => [action, title]));
const FAULT_VERBS = { stop: 'stop', restart: 'restart', pause: 'pause', resume: 'resume', campaign: 'force an election on', link: 'change the link', 'link-end': 'change the link' };

/** POSTs a fault; the answer (or refusal) goes to the timeline and the status line. */
async function pressFault(action, body, button) {
  if (button !== undefined) button.disabled = true;
  const what = action === 'link' ? `${body.cut ? 'cut' : 'heal'} ${body.from} ${body.both ? '↔' : '→'} ${body.to}` : `${FAULT_VERBS[action]} member ${body.member}`;
  let text;
  let ok = false;
  try {
    const response = await fetch(`/faults/${action}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const answer = await response.json().catch(() => ({}));
    ok = response.ok;
    if (!ok) text = `${what}: refused (HTTP ${response.status}): ${answer.error ?? 'no reason given'}`;
    else if (action === 'campaign') text = `${what}: ${describeOutcomes(answer.outcomes ?? [])}`;
    else if (action === 'link')
      text = `${what}: done ${answer.applied.length === 2 ? 'at both ends' : `at member ${answer.applied[0]} only`}${answer.failed.length > 0 ? `; member ${answer.failed.map((f) => `${f.member} (${f.error})`).join(', ')} not reached` : ''}`;
    else text = answer.done ?? `${what}: done`;
  } catch (error) {
    text = `${what}: no answer from the member serving this page (${error.message})`;
  }
  addEvent(Date.now(), ok ? 'fault' : 'fault-refused', '', text);
  const status = byId('fault-status');
  status.textContent = text;
  status.dataset.ok = String(ok);
  renderEvents();
  if (button !== undefined) setTimeout(() => (button.disabled = false), 500);
}

/** ["kv: x", "zk: x", "etcd: y"] → "kv, zk: x; etcd: y". */
function describeOutcomes(outcomes) {
  const byText = new Map();
  for (const outcome of outcomes) {
    const at = outcome.indexOf(': ');
    const text = outcome.slice(at + 2);
    byText.set(text, [...(byText.get(text) ?? []), outcome.slice(0, at)]);
  }
  return [...byText].map(([text, groups]) => `${groups.join(', ')}: ${text}`).join('; ');
}

/** The network panel: choose two members and a direction; the cut links, each with a heal button. */
function renderFaults(snapshot) {
  const panel = byId('faults');
  panel.hidden = snapshot.faults === null;
  if (snapshot.faults === null) return;
  for (const select of [byId('link-from'), byId('link-to')]) {
    const ids = snapshot.members.map((m) => String(m.id));
    const have = [...select.options].map((o) => o.value);
    if (have.join() === ids.join()) continue;
    const chosen = select.value;
    select.replaceChildren(...ids.map((id) => h('option', { value: id }, `member ${id}`)));
    if (ids.includes(chosen)) select.value = chosen;
    else if (select.id === 'link-to' && ids.length > 1) select.value = ids[1];
  }
  const key = JSON.stringify(snapshot.links);
  if (key === state.linksKey) return;
  state.linksKey = key;
  const list = byId('links');
  if (snapshot.links.length === 0) {
    list.replaceChildren(h('li', { class: 'link-none' }, 'every link delivers'));
    return;
  }
  list.replaceChildren(
    ...snapshot.links.map((link) => {
      const heal = h('button', { type: 'button', class: 'fault', 'data-heal': `${link.from}-${link.to}` }, 'heal');
      heal.addEventListener('click', () => pressFault('link', { from: link.from, to: link.to, cut: false }, heal));
      return h('li', { class: 'link-item', 'data-link': `${link.from}-${link.to}` }, h('span', { class: 'pill bad' }, 'cut'), ` member ${link.from} → member ${link.to}`, heal);
    }),
  );
}

function linkRequest(cut) {
  const from = Number(byId('link-from').value);
  const to = Number(byId('link-to').value);
  if (from === to) {
    byId('fault-status').textContent = 'choose two different members';
    byId('fault-status').dataset.ok = 'false';
    return;
  }
  void pressFault('link', { from, to, cut, both: byId('link-direction').value === 'both' }, byId(cut ? 'link-cut' : 'link-heal'));
}

function renderMember(member, snapshot, paused) {
  const leads = snapshot.groups.filter((g) => g.leader === member.id).map((g) => h('span', { class: `pill group-${g.name}`, title: `leader of ${g.name}, term ${g.term}` }, `leads ${g.name}`));
  const href = member.admin === null ? null : `${location.protocol}//${member.admin}/`;
  const name = member.self || href === null ? `member ${member.id}` : h('a', { href, title: "open this member's dashboard" }, `member ${member.id}`);
  const status = member.up ? `answered ${ago(member.lastContactAgoMs)}` : `last answer ${ago(member.lastContactAgoMs)}`;
  const cuts = snapshot.links.filter((l) => l.from === member.id || l.to === member.id).map((l) => (l.from === member.id ? `to ${l.to}` : `from ${l.from}`));
  return [
    h(
      'div',
      { class: 'member-head' },
      h('span', { class: 'member-name' }, name, member.self ? h('span', { class: 'hint' }, ' (this page)') : null),
      h(
        'span',
        null,
        paused ? h('span', { class: 'pill warn', title: 'stopped with SIGSTOP from this page' }, 'paused') : null,
        ' ',
        h('span', { class: `pill ${member.up ? 'up' : 'down'}` }, member.up ? 'up' : 'down'),
      ),
    ),
    h('div', { class: 'member-line' }, 'pid ', h('b', null, member.pid ?? '—'), ' · admin ', h('b', null, member.admin ?? 'unknown')),
    h('div', { class: 'member-line', title: member.error ?? '' }, member.up ? status : `${status} · ${member.error ?? 'no answer'}`),
    member.self
      ? h('div', { class: 'member-line' }, 'the member serving this page')
      : h('div', { class: 'member-line' }, 'peer link from here: ', h('b', null, member.connected ? 'connected' : 'not connected')),
    cuts.length === 0 ? null : h('div', { class: 'member-line cut', title: 'messages on these links are dropped' }, 'messages dropped: ', h('b', null, cuts.join(', '))),
    h('div', { class: 'leads' }, ...leads),
  ].filter((child) => child !== null);
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

// ---- Data browsers: keys and znodes (GET /browse/kv, /browse/zk) ----

const browser = { kvNext: null, kvPrefix: '', versions: null, followTimer: undefined };

/** GETs a browse route; an {error} answer is thrown with its message. */
async function browse(path) {
  const response = await fetch(path);
  const answer = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) throw new Error(answer.error ?? `HTTP ${response.status}`);
  return answer;
}

/** A value cell: JSON pretty-printed, text as text, anything else as base64; cut values say so. */
function renderValue(value) {
  if (value === null) return h('span', { class: 'none' }, 'null');
  let shown;
  if (value.text === null) shown = h('code', { class: 'binary', title: 'not UTF-8: base64' }, `base64 ${value.base64}`);
  else {
    let json;
    try {
      json = value.truncated || !/^\s*[[{]/.test(value.text) ? undefined : JSON.parse(value.text);
    } catch {
      json = undefined;
    }
    shown = json === undefined ? h('code', null, value.text) : h('pre', { class: 'json', title: 'JSON' }, JSON.stringify(json, null, 2));
  }
  return [shown, value.truncated ? h('span', { class: 'hint' }, ` … (first 4 KiB of ${value.bytes} bytes)`) : null];
}

async function listKeys(append) {
  const prefix = append ? browser.kvPrefix : byId('kv-prefix').value;
  const params = new URLSearchParams({ prefix, limit: '50' });
  if (append && browser.kvNext !== null) params.set('after', browser.kvNext);
  try {
    const answer = await browse(`/browse/kv?${params}`);
    browser.kvPrefix = prefix;
    browser.kvNext = answer.next;
    const rows = answer.entries.map((entry) =>
      h(
        'tr',
        { 'data-key': entry.key },
        h('td', { class: 'left key' }, entry.key),
        h('td', null, entry.version),
        h('td', null, entry.value?.bytes ?? 0),
        h('td', { class: 'left value' }, renderValue(entry.value)),
      ),
    );
    if (append) byId('kv-rows').append(...rows);
    else
      byId('kv-rows').replaceChildren(
        ...(rows.length > 0 ? rows : [h('tr', null, h('td', { class: 'left none', colspan: 4 }, prefix === '' ? 'no keys' : `no key starts with ${JSON.stringify(prefix)}`))]),
      );
    byId('kv-more').hidden = answer.next === null;
    byId('kv-info').textContent = `member ${answer.member} · applied index ${answer.applied}`;
  } catch (error) {
    byId('kv-info').textContent = `refused: ${error.message}`;
  }
}

/** Follow changes: every 2 s, the first 200 keys under the prefix; new, changed and deleted keys go to the tail. */
async function followKeys() {
  const prefix = byId('kv-prefix').value;
  try {
    const answer = await browse(`/browse/kv?${new URLSearchParams({ prefix, limit: '200' })}`);
    const now = new Map(answer.entries.map((e) => [e.key, e]));
    if (browser.versions !== null && browser.versions.prefix === prefix) {
      const lines = [];
      for (const [key, entry] of now) {
        const was = browser.versions.keys.get(key);
        if (was === undefined) lines.push(['new', key, `created (version ${entry.version})`, entry.value]);
        else if (was !== entry.version) lines.push(['changed', key, `version ${was} → ${entry.version}`, entry.value]);
      }
      for (const key of browser.versions.keys.keys()) if (!now.has(key) && (answer.next === null || key < answer.next)) lines.push(['deleted', key, 'deleted', null]);
      const tail = byId('kv-tail');
      for (const [kind, key, what, value] of lines) {
        const text = value?.text === null || value === null ? '' : ` = ${value.text.length > 80 ? `${value.text.slice(0, 80)}…` : value.text}`;
        tail.prepend(h('li', { 'data-kind': kind }, h('time', null, clockTime(Date.now())), h('span', { class: 'key' }, key), ` ${what}${text}`));
      }
      while (tail.children.length > 50) tail.lastElementChild.remove();
      if (lines.length > 0) await listKeys(false);
    }
    browser.versions = { prefix, keys: new Map(answer.entries.map((e) => [e.key, e.version])) };
  } catch (error) {
    byId('kv-info').textContent = `refused: ${error.message}`;
  }
}

function setFollow(on) {
  clearInterval(browser.followTimer);
  browser.followTimer = undefined;
  browser.versions = null;
  if (!on) return;
  void followKeys();
  browser.followTimer = setInterval(() => void followKeys(), 2000);
}

async function openZnode(path) {
  byId('zk-path').value = path;
  try {
    const node = await browse(`/browse/zk?${new URLSearchParams({ path })}`);
    const parts = path === '/' ? [] : path.slice(1).split('/');
    const crumbs = [h('a', { href: '#', 'data-path': '/' }, '/')];
    for (const [i, part] of parts.entries()) crumbs.push(i === 0 ? '' : '/', h('a', { href: '#', 'data-path': `/${parts.slice(0, i + 1).join('/')}` }, part));
    byId('zk-crumbs').replaceChildren(...crumbs);
    const child = (name) => h('li', null, h('a', { href: '#', 'data-path': path === '/' ? `/${name}` : `${path}/${name}` }, name));
    const stat = Object.entries(node.stat).map(([name, value]) => {
      const isTime = name.endsWith('time') && value > 0;
      const shown = isTime ? new Date(value).toISOString().replace('T', ' ').replace('Z', ' UTC') : name === 'ephemeralOwner' && value !== 0 ? node.ephemeralOwner : String(value);
      return h('tr', null, h('th', { class: 'left' }, name), h('td', { class: 'left', title: isTime ? `${value} ms since 1970` : null }, shown));
    });
    byId('zk-node').replaceChildren(
      h(
        'div',
        { class: 'znode-main' },
        h('h3', null, 'data'),
        h('div', { class: 'value' }, renderValue(node.data)),
        h('h3', null, `children (${node.stat.numChildren})`),
        node.children.length === 0 ? h('div', { class: 'none' }, 'none') : h('ul', { class: 'children' }, ...node.children.map(child)),
      ),
      h(
        'div',
        { class: 'znode-side' },
        h('h3', null, 'Stat'),
        h('table', { class: 'stat' }, h('tbody', null, ...stat)),
        h('h3', null, 'ephemeral owner'),
        h('div', null, node.ephemeralOwner === null ? h('span', { class: 'none' }, 'none (persistent)') : h('code', null, `session ${node.ephemeralOwner}`)),
        h('h3', null, 'ACL'),
        h('ul', { class: 'acl' }, ...node.acl.map((acl) => h('li', null, h('code', null, acl.perms), ` ${acl.scheme}:${acl.id}`))),
      ),
    );
    byId('zk-node').dataset.path = path;
    byId('zk-info').textContent = `member ${node.member} · last zxid 0x${node.lastZxid.toString(16)}`;
  } catch (error) {
    byId('zk-info').textContent = `refused: ${error.message}`;
  }
}

function selectTab(name) {
  for (const tab of ['kv', 'zk']) {
    byId(`tab-${tab}`).setAttribute('aria-selected', String(tab === name));
    byId(`browse-${tab}`).hidden = tab !== name;
  }
  if (name === 'zk' && byId('zk-node').dataset.path === undefined) void openZnode('/');
}

byId('kv-form').addEventListener('submit', (event) => {
  event.preventDefault();
  browser.versions = null;
  void listKeys(false);
});
byId('kv-more').addEventListener('click', () => void listKeys(true));
byId('kv-follow').addEventListener('change', (event) => setFollow(event.target.checked));
byId('zk-form').addEventListener('submit', (event) => {
  event.preventDefault();
  void openZnode(byId('zk-path').value);
});
for (const id of ['zk-crumbs', 'zk-node']) {
  byId(id).addEventListener('click', (event) => {
    const link = event.target.closest('a[data-path]');
    if (link === null) return;
    event.preventDefault();
    void openZnode(link.dataset.path);
  });
}
byId('tab-kv').addEventListener('click', () => selectTab('kv'));
byId('tab-zk').addEventListener('click', () => selectTab('zk'));
void listKeys(false);

window.addEventListener('resize', () => renderCharts(Date.now()));
byId('link-cut').addEventListener('click', () => linkRequest(true));
byId('link-heal').addEventListener('click', () => linkRequest(false));
connect();
