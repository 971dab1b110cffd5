// meshmon web: the single-page app. Hash routes (#/fleet, #/host/<name>, #/alerts, #/checks,
// #/mesh), the session (login, CSRF token), one EventSource for live updates, and the fleet,
// alerts, checks and mesh views. Not here: the host page's charts (host.js), helpers
// (common.js), the public status page (status.js).
'use strict';

const { el, api } = M;
const S = {
  session: { logged_in: false, csrf: null, can_write: false, login_required: false, title: 'meshmon' },
  view: null,       // the current view: { name, onFleet(row), onAlert(row), onHost(row), stop() }
  live: 0,          // live events received (the browser test reads window.__meshmonLive)
};
M.views = {};
M.S = S;

// ---- session ------------------------------------------------------------------------------
async function loadSession() {
  try {
    S.session = await api('/api/v1/session');
  } catch (err) {
    console.warn('session', err);
  }
  const title = S.session.title || 'meshmon';
  document.getElementById('title').textContent = title;
  document.title = title;
  const who = document.getElementById('who');
  if (S.session.logged_in) {
    who.replaceChildren(el('span', { class: 'muted' }, 'logged in '),
      el('button', { onclick: logout }, 'Log out'));
  } else if (S.session.login_required) {
    who.replaceChildren(el('a', { href: '#/alerts' }, 'Log in'));
  } else {
    who.replaceChildren(el('span', { class: 'muted', title: 'set web.password_file to allow acknowledging and silencing' }, 'read-only'));
  }
}

M.write = function write(path, body) {
  return api(path, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-CSRF-Token': S.session.csrf || '' },
    body: JSON.stringify(body || {}),
  });
};

async function logout() {
  try { await M.write('/api/v1/logout'); } catch (err) { console.warn('logout', err); }
  await loadSession();
  route();
}

// ---- live updates -------------------------------------------------------------------------
function connectEvents() {
  const badge = document.getElementById('live');
  const es = new EventSource('/api/v1/events');
  es.onopen = () => { badge.textContent = 'live'; badge.classList.add('on'); };
  es.onerror = () => { badge.textContent = 'reconnecting'; badge.classList.remove('on'); };
  const on = (kind, hook) => es.addEventListener(kind, (e) => {
    let row;
    try { row = JSON.parse(e.data); } catch (_) { return; }
    S.live++;
    window.__meshmonLive = S.live;
    if (S.view && typeof S.view[hook] === 'function') S.view[hook](row);
  });
  on('fleet', 'onFleet');
  on('alert', 'onAlert');
  on('host', 'onHost');
}

// ---- router -------------------------------------------------------------------------------
async function route() {
  const hash = location.hash.replace(/^#\/?/, '') || 'fleet';
  const [name, ...rest] = hash.split('/');
  const arg = rest.length ? decodeURIComponent(rest.join('/')) : null;
  if (S.view && S.view.stop) S.view.stop();
  const view = document.getElementById('view');
  view.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
  for (const a of document.querySelectorAll('nav a')) {
    a.classList.toggle('active', a.dataset.route === name || (name === 'host' && a.dataset.route === 'fleet'));
  }
  const make = M.views[name] || M.views.fleet;
  if (make === M.views.alerts) await S.ready; // its buttons depend on the session
  S.view = make(view, arg);
}

// ---- a sortable table ---------------------------------------------------------------------
// cols: [{ key, label, num, get(row) -> sort value, cell(row) -> node or text }]
M.table = function table(cols, state, onSort) {
  const ths = cols.map((c) => {
    const cls = ['sortable', c.num ? 'num' : '', state.sort === c.key ? 'sorted-' + state.dir : ''].join(' ');
    return el('th', { class: cls, dataset: { key: c.key }, onclick: () => onSort(c.key) }, c.label);
  });
  return el('table', {}, el('thead', {}, el('tr', {}, ths)), el('tbody'));
};

M.sortRows = function sortRows(rows, cols, state) {
  const col = cols.find((c) => c.key === state.sort);
  if (!col) return rows;
  const get = col.get || ((r) => r[col.key]);
  const dir = state.dir === 'desc' ? -1 : 1;
  return rows.slice().sort((a, b) => {
    const x = get(a);
    const y = get(b);
    if (x === y) return 0;
    if (x === null || x === undefined) return 1;
    if (y === null || y === undefined) return -1;
    return (x < y ? -1 : 1) * dir;
  });
};

// ---- fleet --------------------------------------------------------------------------------
// The theme's accent colour, read once (a style lookup per sparkline costs at 200 hosts).
let accentColour = null;
function accent() {
  if (!accentColour) accentColour = getComputedStyle(document.documentElement).getPropertyValue('--accent').trim() || '#0284c7';
  return accentColour;
}

function spark(values, max) {
  const c = el('canvas', { class: 'spark', width: 160, height: 40 });
  const pts = (Array.isArray(values) ? values : []).filter(M.isNum);
  const ctx = c.getContext('2d');
  if (pts.length < 2 || !ctx) return c;
  const top = Math.max(max || 0, ...pts) || 1;
  ctx.strokeStyle = accent();
  ctx.lineWidth = 2;
  ctx.beginPath();
  pts.forEach((v, i) => {
    const x = (i / (pts.length - 1)) * 158 + 1;
    const y = 39 - (v / top) * 37;
    if (i === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
  });
  ctx.stroke();
  return c;
}

const pct = (v) => (M.isNum(v) ? v.toFixed(1) + ' %' : '–');
const FLEET_COLS = [
  { key: 'host', label: 'Host', cell: (r) => el('a', { href: '#/host/' + M.q(r.host) }, r.host) },
  { key: 'status', label: 'State', cell: (r) => M.badge(r.status) },
  { key: 'cpu_pct', label: 'CPU', num: true, cell: (r) => el('span', { class: 'cell-spark' }, spark(r.spark && r.spark.cpu_pct, 100), el('span', { class: 'v' }, pct(r.cpu_pct))) },
  { key: 'mem_pct', label: 'Memory', num: true, cell: (r) => el('span', { class: 'cell-spark' }, spark(r.spark && r.spark.mem_pct, 100), el('span', { class: 'v' }, pct(r.mem_pct))) },
  { key: 'disk_worst_pct', label: 'Worst disk', num: true, cell: (r) => (M.isNum(r.disk_worst_pct) ? pct(r.disk_worst_pct) + ' ' + (r.disk_worst_mount || '') : '–') },
  { key: 'net', label: 'Network ↓ / ↑', num: true, get: (r) => (r.net_rx_bytes_per_s || 0) + (r.net_tx_bytes_per_s || 0), cell: (r) => M.fmt('_bytes_per_s', r.net_rx_bytes_per_s) + ' / ' + M.fmt('_bytes_per_s', r.net_tx_bytes_per_s) },
  { key: 'gpu_pct', label: 'GPU', num: true, cell: (r) => pct(r.gpu_pct) },
  { key: 'alerts', label: 'Alerts', num: true, cell: (r) => (r.alerts ? el('span', { class: 'badge firing' }, String(r.alerts)) : '0') },
  { key: 'last_seen', label: 'Last seen', cell: (r) => el('span', { class: 'ago', title: r.last_seen || '' }, M.ago(r.last_seen)) },
];

function fleetCells(r) {
  return FLEET_COLS.map((c) => el('td', { class: c.num ? 'num' : '' }, c.cell(r)));
}

M.views.fleet = function fleetView(root) {
  const state = { sort: 'host', dir: 'asc', filter: '', rows: new Map(), trs: new Map() };
  const filter = el('input', { type: 'search', placeholder: 'Filter hosts, tags, OS…', id: 'fleet-filter' });
  const count = el('span', { class: 'muted', id: 'fleet-count' });
  let tbl = M.table(FLEET_COLS, state, sortBy);
  root.replaceChildren(el('div', { class: 'toolbar' }, filter, count), tbl);
  const matches = (r) => {
    if (!state.filter) return true;
    const hay = [r.host, r.status, r.os, r.version, ...(Array.isArray(r.tags) ? r.tags : [])].join(' ').toLowerCase();
    return hay.includes(state.filter);
  };
  function rowNode(r) {
    const tr = el('tr', { dataset: { host: r.host, lastSeen: r.last_seen || '' } }, fleetCells(r));
    state.trs.set(r.host, tr);
    return tr;
  }
  function render() {
    const rows = M.sortRows([...state.rows.values()], FLEET_COLS, state).filter(matches);
    state.trs.clear();
    tbl.tBodies[0].replaceChildren(...rows.map(rowNode));
    const down = [...state.rows.values()].filter((r) => r.status !== 'up').length;
    count.textContent = rows.length + ' of ' + state.rows.size + ' hosts' + (down ? ', ' + down + ' down' : '');
  }
  function sortBy(key) {
    state.dir = state.sort === key && state.dir === 'asc' ? 'desc' : 'asc';
    state.sort = key;
    const next = M.table(FLEET_COLS, state, sortBy);
    tbl.replaceWith(next);
    tbl = next;
    render();
  }
  filter.addEventListener('input', () => { state.filter = filter.value.trim().toLowerCase(); render(); });
  async function load() {
    try {
      const rows = await api('/api/v1/fleet');
      state.rows = new Map(rows.map((r) => [r.host, r]));
      render();
      // After the next paint: when the table is on screen (scripts/bench_web.py reads it).
      if (!performance.getEntriesByName('meshmon:fleet-drawn').length) {
        requestAnimationFrame(() => setTimeout(() => performance.mark('meshmon:fleet-drawn'), 0));
      }
    } catch (err) {
      M.showError(root, err);
    }
  }
  // A live row keeps its sparklines; only the values change, in place.
  function update(patch) {
    const old = state.rows.get(patch.host);
    const r = Object.assign({}, old || {}, patch, { spark: old ? old.spark : patch.spark });
    state.rows.set(r.host, r);
    const tr = state.trs.get(r.host);
    if (!tr) { if (!old) render(); return; }
    // Only the values: at 200 hosts a frame a second each, redrawing sparklines would cost.
    tr.dataset.lastSeen = r.last_seen || '';
    FLEET_COLS.forEach((c, i) => {
      const td = tr.cells[i];
      const v = td && td.querySelector('.v');
      if (v) v.textContent = pct(r[c.key]);
      else if (td) td.replaceChildren(c.cell(r));
    });
  }
  load();
  const reload = setInterval(load, 60000);
  const tick = setInterval(() => {
    for (const span of root.querySelectorAll('span.ago')) span.textContent = M.ago(span.title);
  }, 1000);
  return {
    name: 'fleet',
    onFleet: update,
    onHost: update,
    onAlert: () => {},
    stop: () => { clearInterval(reload); clearInterval(tick); },
  };
};

// ---- alerts -------------------------------------------------------------------------------
// `acked` is written as the CLI's JSON writes it: "true"/"false" (a boolean is taken too).
const isAcked = (r) => r.acked === true || r.acked === 'true';
const ALERT_COLS = [
  { key: 'id', label: 'ID', num: true, cell: (r) => String(r.id) },
  { key: 'rule', label: 'Rule', cell: (r) => r.rule },
  { key: 'host', label: 'Host', cell: (r) => el('a', { href: '#/host/' + M.q(r.host) }, r.host) },
  { key: 'state', label: 'State', cell: (r) => M.badge(r.state) },
  { key: 'severity', label: 'Severity', cell: (r) => M.badge(r.severity) },
  { key: 'started', label: 'Started', cell: (r) => M.time(r.started) },
  { key: 'ended', label: 'Ended', cell: (r) => (r.ended ? M.time(r.ended) : '–') },
  { key: 'value', label: 'Value', num: true, cell: (r) => (M.isNum(r.value) ? M.num(r.value) : '–') },
  { key: 'acked', label: 'Acked', cell: (r) => (isAcked(r) ? 'yes' : 'no') },
];

function loginForm(done) {
  const pw = el('input', { type: 'password', id: 'password', placeholder: 'Password', autocomplete: 'current-password' });
  const msg = el('span', { class: 'error' });
  const form = el('form', { class: 'inline', id: 'login' }, pw, el('button', { class: 'primary', type: 'submit' }, 'Log in'), msg);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      await api('/api/v1/login', { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ password: pw.value }) });
      await loadSession();
      done();
    } catch (err) {
      msg.textContent = err.status === 429 ? 'Too many attempts; wait a minute.' : err.message;
    }
  });
  return el('div', { class: 'panel' }, el('p', {}, 'Log in to acknowledge and silence alerts.'), form);
}

function silenceForm(onDone) {
  const f = {
    rule: el('input', { name: 'rule', placeholder: 'rule glob', value: '*' }),
    host: el('input', { name: 'host', placeholder: 'host glob', value: '*' }),
    for: el('input', { name: 'for', placeholder: 'for (2h)', value: '2h', size: 6 }),
    comment: el('input', { name: 'comment', placeholder: 'comment' }),
  };
  const msg = el('span', {});
  const form = el('form', { class: 'inline', id: 'silence' }, f.rule, f.host, f.for, f.comment,
    el('button', { class: 'primary', type: 'submit' }, 'Silence'), msg);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const body = {};
    for (const [k, input] of Object.entries(f)) body[k] = input.value;
    try {
      await M.write('/api/v1/silences', body);
      msg.className = 'muted';
      msg.textContent = 'Silenced ' + body.rule + ' on ' + body.host + ' for ' + body.for + '.';
      onDone();
    } catch (err) {
      msg.className = 'error';
      msg.textContent = err.message;
    }
  });
  form.prefill = (rule, host) => { f.rule.value = rule; f.host.value = host; f.comment.focus(); };
  return form;
}

M.views.alerts = function alertsView(root) {
  const state = { sort: 'started', dir: 'desc', rows: [] };
  const write = S.session.can_write;
  const cols = write ? ALERT_COLS.concat([{ key: 'act', label: '', cell: actions }]) : ALERT_COLS;
  const active = el('div');
  const recent = el('div');
  const silence = write ? silenceForm(load) : null;
  let auth;
  if (write) auth = el('div', { class: 'panel' }, el('h2', {}, 'Silence'), silence);
  else if (S.session.login_required) auth = loginForm(route);
  else auth = el('p', { class: 'muted' }, 'Read-only: acknowledging and silencing need a login; set web.password_file in the config (see README, "Web dashboard").');
  root.replaceChildren(el('h1', {}, 'Alerts'), auth, el('h2', {}, 'Active'), active, el('h2', {}, 'Recent (7 days)'), recent);
  function actions(r) {
    const out = [];
    if (r.state !== 'resolved' && !isAcked(r)) {
      out.push(el('button', { class: 'ack', onclick: async (e) => {
        e.target.disabled = true;
        try { await M.write('/api/v1/alerts/' + M.q(r.id) + '/ack'); load(); } catch (err) { e.target.disabled = false; e.target.title = err.message; e.target.textContent = 'Failed'; }
      } }, 'Acknowledge'));
    }
    out.push(el('button', { onclick: () => silence.prefill(r.rule, r.host) }, 'Silence…'));
    return el('span', {}, out);
  }
  function draw(target, rows, empty) {
    if (!rows.length) { target.replaceChildren(el('p', { class: 'muted' }, empty)); return; }
    const sort = (key) => { state.dir = state.sort === key && state.dir === 'desc' ? 'asc' : 'desc'; state.sort = key; render(); };
    const tbl = M.table(cols, state, sort);
    tbl.tBodies[0].append(...M.sortRows(rows, cols, state).map((r) => el('tr', {}, cols.map((c) => el('td', { class: c.num ? 'num' : '' }, c.cell(r))))));
    target.replaceChildren(tbl);
  }
  function render() {
    draw(active, state.rows.filter((r) => r.state !== 'resolved'), 'No active alerts.');
    draw(recent, state.rows.filter((r) => r.state === 'resolved'), 'No resolved alerts in the last 7 days.');
  }
  async function load() {
    try { state.rows = await api('/api/v1/alerts?all=1&since=7d'); render(); } catch (err) { M.showError(active, err); }
  }
  load();
  let pending = null;
  return {
    name: 'alerts',
    onAlert: () => { if (!pending) pending = setTimeout(() => { pending = null; load(); }, 300); },
    stop: () => clearTimeout(pending),
  };
};

// ---- checks -------------------------------------------------------------------------------
M.views.checks = function checksView(root) {
  root.replaceChildren(el('h1', {}, 'Checks'), el('p', { class: 'muted' }, 'Loading…'));
  async function load() {
    try {
      const [rows, uptime] = await Promise.all([api('/api/v1/checks?since=1h'), api('/api/v1/checks/uptime?days=90')]);
      const bars = new Map(uptime.map((u) => [u.check + '\u0000' + u.host, u.days]));
      if (!rows.length) { root.replaceChildren(el('h1', {}, 'Checks'), el('p', { class: 'muted' }, 'No HTTP checks reported in the last hour ([[check]] in a node\'s config).')); return; }
      const head = ['Check', 'Vantage', 'State', 'HTTP', 'Latency', 'Certificate', 'Uptime (1h)', '90 days'];
      const tbl = el('table', { id: 'checks' }, el('thead', {}, el('tr', {}, head.map((h) => el('th', {}, h)))), el('tbody', {},
        rows.map((r) => el('tr', {},
          el('td', {}, r.check), el('td', {}, r.host), el('td', {}, M.badge(r.up)),
          el('td', { class: 'num' }, M.isNum(r.status) ? String(r.status) : '–'),
          el('td', { class: 'num' }, M.fmt('_ms', r.latency_ms)),
          el('td', { class: 'num' }, M.isNum(r.cert_days_left) ? Math.floor(r.cert_days_left) + ' days' : '–'),
          el('td', { class: 'num' }, M.fmt('_pct', r.uptime_pct)),
          el('td', {}, M.uptimeBar(bars.get(r.check + '\u0000' + r.host)))))));
      root.replaceChildren(el('h1', {}, 'Checks'), tbl);
    } catch (err) {
      M.showError(root, err);
    }
  }
  load();
  const timer = setInterval(load, 15000);
  return { name: 'checks', stop: () => clearInterval(timer) };
};

// ---- mesh ---------------------------------------------------------------------------------
M.views.mesh = function meshView(root) {
  async function load() {
    try {
      const m = await api('/api/v1/mesh');
      const links = (m.links || []).map((l) => el('tr', {}, el('td', {}, l.peer || '–'), el('td', {}, l.addr || '–'),
        el('td', {}, M.badge(l.state)), el('td', { class: 'num' }, M.fmt('_ms', l.rtt_ms))));
      const hosts = (m.hosts || []).map((h) => el('tr', {}, el('td', {}, el('a', { href: '#/host/' + M.q(h.host) }, h.host)),
        el('td', { class: 'num' }, M.isNum(h.hops) ? String(h.hops) : '–'), el('td', {}, h.hops === 0 ? 'this node' : h.hops === 1 ? 'direct link' : 'relayed')));
      const table = (id, head, body) => el('table', { id }, el('thead', {}, el('tr', {}, head.map((h) => el('th', { class: h === 'RTT' || h === 'Hops' ? 'num' : '' }, h)))), el('tbody', {}, body));
      root.replaceChildren(el('h1', {}, 'Mesh from ', m.node || '?'),
        el('h2', {}, 'Links'), links.length ? table('links', ['Peer', 'Address', 'State', 'RTT'], links) : el('p', { class: 'muted' }, 'No links.'),
        el('h2', {}, 'Hosts by hop distance'), table('mesh-hosts', ['Host', 'Hops', 'Path'], hosts));
    } catch (err) {
      M.showError(root, err);
    }
  }
  load();
  const timer = setInterval(load, 5000);
  return { name: 'mesh', stop: () => clearInterval(timer) };
};

// ---- start --------------------------------------------------------------------------------
window.addEventListener('hashchange', route);
// The session (title, login) loads beside the first view, not before it.
document.addEventListener('DOMContentLoaded', () => {
  S.ready = loadSession();
  connectEvents();
  route();
});
