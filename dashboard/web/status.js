// meshmon web: the public status page (/status, only with web.public_status = true). Shows
// each check's state with its 90-day uptime bar and each host's up/down, from
// /api/v1/status, which carries no metrics, addresses, tags or versions. Polls every 15 s;
// it never opens the live event stream (that one carries metrics).
'use strict';

(function statusPage() {
  const { el } = M;
  const view = document.getElementById('view');
  const overall = (checks, hosts) => checks.every((c) => c.up) && hosts.every((h) => h.up);

  function draw(s) {
    const title = s.title || 'Status';
    document.title = title;
    document.getElementById('title').textContent = title;
    const checks = Array.isArray(s.checks) ? s.checks : [];
    const hosts = Array.isArray(s.hosts) ? s.hosts : [];
    const ok = overall(checks, hosts);
    const rows = checks.map((c) => el('tr', { dataset: { check: c.check } },
      el('td', {}, c.check), el('td', {}, M.badge(c.up ? 'up' : 'down')),
      el('td', { class: 'num' }, M.fmt('_ms', c.latency_ms)),
      el('td', {}, M.uptimeBar(c.days))));
    const hostRows = hosts.map((h) => el('tr', { dataset: { host: h.host } }, el('td', {}, h.host), el('td', {}, M.badge(h.up ? 'up' : 'down'))));
    view.replaceChildren(
      el('div', { class: 'panel', id: 'overall' }, el('h1', {}, ok ? 'All systems operational' : 'Some systems are down')),
      el('h2', {}, 'Services'),
      checks.length ? el('table', { id: 'status-checks' }, el('thead', {}, el('tr', {}, el('th', {}, 'Service'), el('th', {}, 'State'), el('th', { class: 'num' }, 'Latency'), el('th', {}, '90 days'))), el('tbody', {}, rows))
        : el('p', { class: 'muted' }, 'No services are checked.'),
      el('h2', {}, 'Hosts'),
      el('table', { id: 'status-hosts' }, el('thead', {}, el('tr', {}, el('th', {}, 'Host'), el('th', {}, 'State'))), el('tbody', {}, hostRows)));
    document.getElementById('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
  }

  async function load() {
    try {
      draw(await M.api('/api/v1/status'));
    } catch (err) {
      M.showError(view, err);
    }
  }
  document.addEventListener('DOMContentLoaded', () => { load(); setInterval(load, 15000); });
})();
