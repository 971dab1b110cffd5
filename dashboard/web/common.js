// meshmon web: what every page shares. Collects JavaScript errors into window.__meshmonErrors
// (the browser test reads it), builds DOM nodes (data from the API only ever goes through
// textContent, never innerHTML), fetches JSON, formats values by the unit in a metric's name,
// and draws the 90-day uptime bars. Not here: routing and views (app.js, host.js, status.js).
'use strict';

window.__meshmonErrors = [];
window.addEventListener('error', (e) => window.__meshmonErrors.push(String(e.message || e)));
window.addEventListener('unhandledrejection', (e) => window.__meshmonErrors.push('unhandled: ' + String(e.reason)));
(function wrapConsoleError() {
  const orig = console.error.bind(console);
  console.error = (...args) => { window.__meshmonErrors.push(args.map(String).join(' ')); orig(...args); };
})();

const M = {};

// el('td', {class: 'num', title: 'x'}, 'text', child, ...): strings become text nodes.
M.el = function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k === 'text') node.textContent = v;
    else if (k.startsWith('on') && typeof v === 'function') node.addEventListener(k.slice(2), v);
    else if (k === 'dataset') Object.assign(node.dataset, v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
};

// JSON from the API; throws an Error carrying the server's {"error": ...} message.
M.api = async function api(path, opts) {
  const res = await fetch(path, Object.assign({ credentials: 'same-origin' }, opts || {}));
  let body = null;
  const text = await res.text();
  if (text) {
    try { body = JSON.parse(text); } catch (_) { body = null; }
  }
  if (!res.ok) {
    const msg = body && typeof body.error === 'string' ? body.error : res.status + ' ' + res.statusText;
    const err = new Error(msg);
    err.status = res.status;
    throw err;
  }
  return body;
};

M.q = (v) => encodeURIComponent(v);
M.isNum = (v) => typeof v === 'number' && Number.isFinite(v);

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];
M.bytes = function bytes(v) {
  let i = 0;
  let x = Math.abs(v);
  while (x >= 1024 && i < UNITS.length - 1) { x /= 1024; i++; }
  return (v < 0 ? '-' : '') + (x >= 100 || i === 0 ? x.toFixed(0) : x.toFixed(1)) + ' ' + UNITS[i];
};

M.duration = function duration(s) {
  if (s < 120) return Math.round(s) + 's';
  if (s < 7200) return Math.round(s / 60) + 'm';
  if (s < 172800) return Math.round(s / 3600) + 'h';
  return Math.round(s / 86400) + 'd';
};

M.num = (v) => (Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2));

// A value formatted by the unit at the end of its metric name (cpu.usage_pct, net.rx_bytes_per_s).
M.fmt = function fmt(metric, v) {
  if (!M.isNum(v)) return '–';
  const name = String(metric || '').split('{')[0];
  if (name.endsWith('_bytes_per_s')) return M.bytes(v) + '/s';
  if (name.endsWith('_bytes')) return M.bytes(v);
  if (name.endsWith('_pct')) return v.toFixed(1) + ' %';
  if (name.endsWith('_c')) return v.toFixed(1) + ' °C';
  if (name.endsWith('_ms')) return M.num(v) + ' ms';
  if (name.endsWith('_s')) return M.duration(v);
  if (name.endsWith('_w')) return M.num(v) + ' W';
  return M.num(v);
};

M.ago = function ago(rfc3339) {
  const t = Date.parse(rfc3339);
  if (!Number.isFinite(t)) return '–';
  return M.duration(Math.max(0, (Date.now() - t) / 1000)) + ' ago';
};

M.time = function time(rfc3339) {
  const t = Date.parse(rfc3339);
  return Number.isFinite(t) ? new Date(t).toLocaleString() : '–';
};

// The 90-day uptime bar: one cell per day, oldest first, coloured by uptime.
M.uptimeBar = function uptimeBar(days) {
  const cells = (Array.isArray(days) ? days : []).map((d) => {
    const p = d && M.isNum(d.uptime_pct) ? d.uptime_pct : null;
    const cls = p === null ? '' : p >= 99.9 ? 'ok' : p >= 95 ? 'mid' : 'bad';
    const label = String(d && d.day) + ': ' + (p === null ? 'no data' : p.toFixed(2) + ' %');
    return M.el('i', { class: cls, title: label });
  });
  return M.el('div', { class: 'bar' }, cells);
};

M.badge = (text) => M.el('span', { class: 'badge ' + String(text) }, String(text === null || text === undefined ? '–' : text));

M.showError = function showError(target, err) {
  target.replaceChildren(M.el('p', { class: 'error' }, 'Error: ' + String(err && err.message ? err.message : err)));
};
