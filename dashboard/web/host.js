// meshmon web: the host page (#/host/<name>). Finds the host's metrics through
// /api/v1/stats, draws uPlot charts of the known groups (CPU, memory, network, disks, GPU,
// containers, processes) plus any metric picked from the stats table, over a time range
// (5m-7d buttons, or a drag-selected zoom that is fetched again at its own resolution).
// Not here: routing, session and live events (app.js), helpers (common.js).
'use strict';

(function hostPage() {
  const { el, api } = M;
  const PRESETS = ['5m', '1h', '6h', '24h', '7d'];
  const REFRESH = { '5m': 5000, '1h': 10000 }; // the short ranges follow the present (1h: 5 s steps)
  const CHARTS = [
    { group: 'CPU', title: 'CPU usage', names: ['cpu.usage_pct'] },
    { group: 'CPU', title: 'Load', names: ['cpu.load1', 'cpu.load5', 'cpu.load15'] },
    { group: 'CPU', title: 'CPU temperature', names: ['cpu.temp_c'] },
    { group: 'Memory', title: 'Memory used', names: ['mem.used_pct'] },
    { group: 'Memory', title: 'Swap used', names: ['swap.used_bytes'] },
    { group: 'Network', title: 'Network', names: ['net.rx_bytes_per_s', 'net.tx_bytes_per_s'] },
    { group: 'Disks', title: 'Disk used', names: ['disk.used_pct'] },
    { group: 'GPU', title: 'GPU utilisation', names: ['gpu.util_pct'] },
    { group: 'GPU', title: 'GPU memory', names: ['gpu.mem_used_bytes'] },
    { group: 'GPU', title: 'GPU temperature', names: ['gpu.temp_c'] },
  ];
  // Every metric name with one of these prefixes gets a chart of its own in the group.
  const PREFIXES = [['Containers', ['container.', 'docker.', 'podman.']], ['Processes', ['process.', 'proc.', 'systemd.']]];
  const COLOURS = ['#0284c7', '#16a34a', '#d97706', '#dc2626', '#7c3aed', '#db2777', '#0d9488', '#65a30d', '#ea580c', '#4f46e5', '#0891b2', '#a16207'];
  const MAX_SERIES = 12;
  const iso = (ms) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

  function rangeQuery(range) {
    return range.preset ? 'since=' + range.preset : 'since=' + iso(range.since) + '&until=' + iso(range.until);
  }

  // Which charts this host gets, from the metric names it has in the range.
  function chartsFor(names, extra) {
    const have = new Set(names);
    const out = CHARTS.map((c) => Object.assign({}, c, { names: c.names.filter((n) => have.has(n)) })).filter((c) => c.names.length);
    for (const [group, prefixes] of PREFIXES) {
      for (const n of names.filter((x) => prefixes.some((p) => x.startsWith(p)))) out.push({ group, title: n, names: [n] });
    }
    const drawn = new Set(out.flatMap((c) => c.names));
    for (const n of extra) if (!drawn.has(n) && have.has(n)) out.push({ group: 'Picked', title: n, names: [n] });
    return out;
  }

  // [{label, points:[[ts_ms, v]]}] -> uPlot's columns (x in seconds, one y per series, null gaps).
  function align(list) {
    const xs = new Set();
    for (const s of list) for (const p of s.points) xs.add(p[0]);
    const x = [...xs].sort((a, b) => a - b);
    const at = new Map(x.map((t, i) => [t, i]));
    const ys = list.map((s) => {
      const y = new Array(x.length).fill(null);
      for (const [t, v] of s.points) y[at.get(t)] = M.isNum(v) ? v : null;
      return y;
    });
    return [x.map((t) => t / 1000), ...ys];
  }

  // Runs fn over items with at most n in flight (the node answers each from its store); an
  // item's failure is its Error in the result.
  async function pool(items, n, fn) {
    const out = new Array(items.length);
    let next = 0;
    const worker = async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]).catch((err) => err);
      }
    };
    await Promise.all(Array.from({ length: Math.min(n, items.length) }, worker));
    return out;
  }

  // Every series of each chart's metric names, at most 3 requests at a time; per chart the
  // list of {label, points}, or the first error.
  async function fetchCharts(host, charts, range) {
    const jobs = charts.flatMap((c, ci) => c.names.map((n) => ({ ci, n })));
    const got = await pool(jobs, 3, (j) =>
      api('/api/v1/series?host=' + M.q(host) + '&metric=' + M.q(j.n) + '&all=1&' + rangeQuery(range)));
    const out = charts.map(() => []);
    jobs.forEach((j, k) => {
      if (out[j.ci] instanceof Error) return;
      if (got[k] instanceof Error) { out[j.ci] = got[k]; return; }
      for (const s of got[k].series || []) out[j.ci].push({ label: String(s.key).replace(/"/g, ''), points: Array.isArray(s.points) ? s.points : [] });
    });
    return out.map((list) => (list instanceof Error ? list : list.sort((a, b) => a.label.localeCompare(b.label)).slice(0, MAX_SERIES)));
  }

  function makePlot(box, chart, list, onZoom) {
    const unit = chart.names[0];
    const opts = {
      width: Math.max(300, box.clientWidth - 16),
      height: 200,
      // Percentages from 0 to a little over 100 (so that a line at 100 % is not on the edge;
      // more only if a value is: per-core sums can pass 100).
      scales: { x: { time: true }, y: unit.endsWith('_pct') ? { range: (u, min, max) => [0, Math.max(100, max) * 1.04] } : {} },
      legend: { show: true },
      cursor: { drag: { x: true, y: false, setScale: false } },
      series: [{}].concat(list.map((s, i) => ({
        label: s.label, stroke: COLOURS[i % COLOURS.length], width: 1.5, spanGaps: list.length > 1,
        value: (u, v) => M.fmt(unit, v),
      }))),
      axes: [{}, { size: 80, values: (u, vals) => vals.map((v) => M.fmt(unit, v)) }],
      hooks: {
        setSelect: [(u) => {
          if (u.select.width < 5) return;
          const from = u.posToVal(u.select.left, 'x') * 1000;
          const to = u.posToVal(u.select.left + u.select.width, 'x') * 1000;
          u.setSelect({ left: 0, top: 0, width: 0, height: 0 }, false);
          onZoom(Math.round(from), Math.round(to));
        }],
      },
    };
    return new uPlot(opts, align(list), box);
  }

  const STAT_COLS = ['count', 'min', 'max', 'avg', 'p95', 'last'];

  M.views.host = function hostView(root, host) {
    const st = { range: { preset: '1h' }, extra: [], plots: [], names: [], timer: null, gen: 0, filter: '' };
    window.__meshmonCharts = st.plots;
    const facts = el('div', { class: 'facts', id: 'host-facts' });
    const buttons = PRESETS.map((p) => el('button', { dataset: { range: p }, onclick: () => setRange({ preset: p }) }, p));
    const zoomLabel = el('span', { class: 'muted', id: 'zoom' });
    const charts = el('div', { id: 'charts' });
    const statsBox = el('div', { id: 'stats' });
    const statFilter = el('input', { type: 'search', placeholder: 'Filter metrics…' });
    statFilter.addEventListener('input', () => { st.filter = statFilter.value.trim().toLowerCase(); drawStats(st.stats || []); });
    root.replaceChildren(el('h1', {}, host, ' ', el('span', { id: 'host-status' })), facts,
      el('div', { class: 'toolbar' }, buttons, zoomLabel), charts,
      el('h2', {}, 'Statistics over the range'), el('div', { class: 'toolbar' }, statFilter, el('span', { class: 'muted' }, 'click a metric to chart it')), statsBox);

    function drawFacts(r) {
      if (!r) { facts.replaceChildren(el('p', { class: 'muted' }, 'Not in the fleet list.')); return; }
      const fact = (label, value) => el('div', {}, el('span', {}, label), value);
      document.getElementById('host-status').replaceChildren(M.badge(r.status));
      facts.replaceChildren(
        fact('CPU', el('b', { id: 'live-cpu' }, M.fmt('_pct', r.cpu_pct))),
        fact('Memory', el('b', { id: 'live-mem' }, M.fmt('_pct', r.mem_pct))),
        fact('Worst disk', (M.isNum(r.disk_worst_pct) ? M.fmt('_pct', r.disk_worst_pct) + ' ' + (r.disk_worst_mount || '') : '–')),
        fact('GPU', M.fmt('_pct', r.gpu_pct)),
        fact('Last seen', el('span', { title: r.last_seen || '' }, M.time(r.last_seen))),
        fact('Uptime', M.fmt('_s', r.uptime_s)),
        fact('OS', r.os || '–'), fact('Version', r.version || '–'),
        fact('Hops', M.isNum(r.hops) ? String(r.hops) : '–'),
        fact('Tags', Array.isArray(r.tags) && r.tags.length ? r.tags.join(', ') : '–'));
    }

    function drawStats(rows) {
      const shown = rows.filter((r) => !st.filter || String(r.metric).toLowerCase().includes(st.filter));
      const head = el('tr', {}, el('th', {}, 'Metric'), STAT_COLS.map((c) => el('th', { class: 'num' }, c)));
      const body = shown.map((r) => {
        const name = String(r.metric).split('{')[0];
        const tr = el('tr', { class: 'clickable', title: 'chart ' + name }, el('td', {}, r.metric),
          STAT_COLS.map((c) => el('td', { class: 'num' }, c === 'count' ? String(r.count) : M.fmt(r.metric, r[c]))));
        tr.addEventListener('click', () => {
          if (!st.extra.includes(name)) st.extra.push(name);
          loadCharts();
        });
        return tr;
      });
      statsBox.replaceChildren(shown.length ? el('table', { id: 'stats-table' }, el('thead', {}, head), el('tbody', {}, body))
        : el('p', { class: 'muted' }, 'No data in this range.'));
    }

    async function loadCharts() {
      const gen = ++st.gen;
      const list = chartsFor(st.names, st.extra);
      const fetched = await fetchCharts(host, list, st.range);
      if (gen !== st.gen) return; // a newer range was asked for meanwhile
      // The same charts with the same series: new data into the drawn plots (no flicker).
      const shape = JSON.stringify(list.map((c, i) => [c.names, fetched[i] instanceof Error ? null : fetched[i].map((x) => x.label)]));
      if (shape === st.shape && st.plots.length === list.length) {
        st.plots.forEach((p, i) => p.setData(align(fetched[i])));
        return;
      }
      st.shape = shape;
      for (const p of st.plots) p.destroy();
      st.plots.length = 0;
      const boxes = list.map((c) => el('div', { class: 'chart', dataset: { metric: c.names.join(' ') } }, el('h3', {}, c.title)));
      const groups = new Map();
      list.forEach((c, i) => groups.set(c.group, (groups.get(c.group) || []).concat([boxes[i]])));
      charts.replaceChildren(...[...groups].map(([g, bs]) => el('section', {}, el('h2', {}, g), el('div', { class: 'charts' }, bs))));
      if (!list.length) charts.replaceChildren(el('p', { class: 'muted' }, 'No chartable metrics in this range.'));
      list.forEach((c, i) => {
        if (fetched[i] instanceof Error) { boxes[i].append(el('p', { class: 'error' }, fetched[i].message)); return; }
        st.plots.push(makePlot(boxes[i], c, fetched[i], (from, to) => setRange({ since: from, until: to })));
      });
    }

    async function load() {
      if (st.stopped) return;
      if (st.loading) { st.again = true; return; }
      st.loading = true;
      try {
        const [stats, fleet] = await Promise.all([
          api('/api/v1/stats?host=' + M.q(host) + '&' + rangeQuery(st.range)),
          api('/api/v1/fleet'),
        ]);
        st.stats = stats;
        st.names = [...new Set(stats.map((r) => String(r.metric).split('{')[0]))].sort();
        st.fleetRow = fleet.find((r) => r.host === host);
        drawFacts(st.fleetRow);
        drawStats(stats);
        await loadCharts();
      } catch (err) {
        M.showError(charts, err);
      } finally {
        st.loading = false;
        if (st.again) { st.again = false; load(); }
      }
    }

    function setRange(range) {
      st.range = range;
      for (const b of buttons) b.classList.toggle('active', b.dataset.range === range.preset);
      zoomLabel.textContent = range.preset ? '' : 'zoomed: ' + new Date(range.since).toLocaleString() + ' – ' + new Date(range.until).toLocaleString();
      clearInterval(st.timer);
      st.timer = REFRESH[range.preset] ? setInterval(load, REFRESH[range.preset]) : null;
      load();
    }

    let resizeTimer = null;
    const onResize = () => {
      clearTimeout(resizeTimer);
      resizeTimer = setTimeout(() => {
        for (const p of st.plots) p.setSize({ width: Math.max(300, p.root.parentNode.clientWidth - 16), height: 200 });
      }, 200);
    };
    window.addEventListener('resize', onResize);
    setRange(st.range);
    return {
      name: 'host',
      onFleet: (row) => {
        if (row.host !== host) return;
        st.fleetRow = Object.assign({}, st.fleetRow || {}, row);
        drawFacts(st.fleetRow);
      },
      onHost: (row) => { if (row.host === host) { st.fleetRow = Object.assign({}, st.fleetRow || {}, row); drawFacts(st.fleetRow); } },
      stop: () => {
        st.stopped = true;
        clearInterval(st.timer);
        window.removeEventListener('resize', onResize);
        for (const p of st.plots) p.destroy();
        st.gen++;
      },
    };
  };
})();
