/* campaign-sync operator console: one page, no library, no build step.
 *
 * Every figure comes from the service's own HTTP interface: the /v1 admin API (with the
 * bearer token the operator types once; it stays in this tab's sessionStorage), including
 * GET /v1/overview for the Overview's readiness checks, queues and metric lines (/readyz and
 * /metrics may be on a management port the browser cannot reach). Optional endpoints that
 * newer servers answer (PATCH of a mapping, filtered bulk replay, the per-person trace,
 * background jobs) are used when the server has them and left out, or replaced by what
 * every server has, when it answers that it has no such endpoint.
 * All text reaches the page through textContent: nothing from the server is parsed as HTML. */
'use strict';
(() => {
  const TOKEN_KEY = 'campaign-sync.token';
  const HISTORY_KEY = 'campaign-sync.metrics';
  const POLL_MS = 10000;
  const MINUTE_MS = 60000;
  const WINDOW_MS = 60 * MINUTE_MS;
  const DAY_MS = 24 * WINDOW_MS;
  const PAGE = 1000; // the admin API's largest ?limit=
  const REPLAY_LIMIT = 1000; // the bulk replay's largest "limit"
  const SCAN_MAX = 20000; // items read at most for a client-side search

  const state = {
    token: sessionStorage.getItem(TOKEN_KEY) || '',
    history: loadHistory(),
    overview: null, // the last GET /v1/overview
    metrics: null, // its metric lines, parsed
    metricsError: '',
    pollTimer: null,
    flash: null, // {text, kind}: shown once, at the top of the next page rendered
  };

  // ------------------------------------------------------------------ DOM helpers

  function append(el, kids) {
    for (const k of kids.flat(Infinity)) {
      if (k === null || k === undefined || k === false) continue;
      el.append(k instanceof Node ? k : String(k));
    }
    return el;
  }

  function setAttrs(el, attrs) {
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'text') el.textContent = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    return el;
  }

  function h(tag, attrs, ...kids) {
    return append(setAttrs(document.createElement(tag), attrs), kids);
  }

  function svg(tag, attrs, ...kids) {
    return append(setAttrs(document.createElementNS('http://www.w3.org/2000/svg', tag), attrs),
                  kids);
  }

  const $ = (sel) => document.querySelector(sel);
  const enc = encodeURIComponent;

  /* A message line: kind 'error' reads "Error: ...", so it is understood without colour. */
  function say(el, text, kind) {
    el.className = 'message' + (kind ? ' ' + kind : '');
    el.textContent = text ? (kind === 'error' ? 'Error: ' : '') + text : '';
  }

  function badge(text, kind) {
    return h('span', { class: 'badge ' + kind }, text);
  }

  /* A table; on narrow screens each row becomes a card whose cells carry their header. */
  function table(id, headers, rows, caption) {
    const body = h('tbody', {});
    const t = h('table', { id, class: 'data' },
      caption ? h('caption', {}, caption) : null,
      h('thead', {}, h('tr', {}, headers.map((x) => h('th', { scope: 'col' }, x)))), body);
    addRows(t, headers, rows);
    return h('div', { class: 'table-wrap' }, t);
  }

  function addRows(t, headers, rows) {
    const body = t.tBodies[0];
    for (const cells of rows)
      body.append(h('tr', {}, cells.map((c, i) => h('td', { 'data-label': headers[i] }, c))));
  }

  function section(id, title, ...kids) {
    return h('section', { id, class: 'card', 'aria-labelledby': id + '-h' },
      h('h2', { id: id + '-h' }, title), kids);
  }

  const pad = (n) => String(n).padStart(2, '0');
  function fmtTime(v) {
    const d = typeof v === 'number' ? new Date(v) : new Date(Date.parse(v));
    if (!v || isNaN(d)) return '—';
    return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ` +
      `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
  }
  function fmtDuration(s) {
    if (!isFinite(s)) return '—';
    if (s < 1) return s === 0 ? '0 s' : `${Math.round(s * 1000)} ms`;
    if (s < 60) return `${s < 10 ? s.toFixed(1) : Math.round(s)} s`;
    if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
    return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
  }
  const fmtNum = (n) => Number(n).toLocaleString('en-US', { maximumFractionDigits: 1 });

  // ------------------------------------------------------------------ the HTTP interface

  class ApiError extends Error {
    constructor(status, code, message, data) {
      super(message);
      this.status = status;
      this.code = code;
      this.data = data;
    }
  }

  /* One call. /v1 paths carry the bearer token. Answers outside 2xx throw an ApiError with the
   * server's own message, unless opts.accept lists the status. A 401 signs out. */
  async function call(method, path, body, opts = {}) {
    const headers = {};
    if (path.startsWith('/v1/')) headers.Authorization = 'Bearer ' + state.token;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let r;
    try {
      r = await fetch(path, {
        method, headers, cache: 'no-store', credentials: 'omit',
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new ApiError(0, 'network', `the service did not answer ${method} ${path} (${e.message})`);
    }
    const text = await r.text();
    let data = text;
    if ((r.headers.get('Content-Type') || '').startsWith('application/json') && text) {
      try {
        data = JSON.parse(text);
      } catch (e) {
        data = text;
      }
    }
    const accepted = (opts.accept || []).includes(r.status);
    if (r.status === 401 && path.startsWith('/v1/') && !accepted) {
      signOut('The service no longer accepts this token (401 Unauthorized). Sign in again ' +
              'with the ADMIN_TOKEN it runs with now.');
    }
    if (!r.ok && !accepted) {
      const msg = data && typeof data === 'object' && data.message ? data.message
        : `${method} ${path} answered ${r.status} ${r.statusText}`;
      throw new ApiError(r.status, (data && data.error) || `http_${r.status}`, msg, data);
    }
    return { status: r.status, data };
  }

  /* True when the server has no such endpoint (an older server): 405 on a known path, or the
   * router's own 404 for an unknown one, as opposed to a 404 about a missing record. */
  function endpointMissing(r) {
    if (r.status === 405) return true;
    return r.status === 404 && typeof r.data === 'object' && r.data !== null &&
      /^no endpoint at /.test(r.data.message || '');
  }

  /* Every item of a paged list (path has ?limit=), stopping at `max` items or when stop(item)
   * says so. */
  async function fetchAll(path, { max = SCAN_MAX, stop } = {}) {
    const items = [];
    let cursor = null;
    for (;;) {
      const url = path + (cursor ? '&cursor=' + enc(cursor) : '');
      const { data } = await call('GET', url);
      for (const it of data.items) {
        if (stop && stop(it)) return { items, truncated: false };
        items.push(it);
      }
      cursor = data.next;
      if (!cursor) return { items, truncated: false };
      if (items.length >= max) return { items, truncated: true };
    }
  }

  async function mappings() {
    return (await fetchAll(`/v1/mappings?limit=${PAGE}`)).items;
  }

  // ------------------------------------------------------------------ metrics and history

  function parseMetrics(text) {
    const out = [];
    for (const line of text.split('\n')) {
      if (!line || line[0] === '#') continue;
      const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
      if (!m) continue;
      const labels = {};
      for (const l of (m[2] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g))
        labels[l[1]] = l[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
      out.push({ name: m[1], labels, value: Number(m[3]) });
    }
    return out;
  }

  const series = (ms, name) => ms.filter((s) => s.name === name);
  const sum = (ms, name) => series(ms, name).reduce((a, s) => a + s.value, 0);

  /* What the charts need from one scrape: applied counts and the latency histogram. */
  function sample(ms, t) {
    const applied = {}, buckets = {};
    for (const s of series(ms, 'campaign_sync_events_applied_total'))
      applied[s.labels.target || ''] = s.value;
    for (const s of series(ms, 'campaign_sync_apply_latency_seconds_bucket'))
      buckets[s.labels.le] = (buckets[s.labels.le] || 0) + s.value;
    return { t, applied, buckets, count: sum(ms, 'campaign_sync_apply_latency_seconds_count') };
  }

  function loadHistory() {
    try {
      const h0 = JSON.parse(sessionStorage.getItem(HISTORY_KEY) || '[]');
      return Array.isArray(h0) ? h0 : [];
    } catch (e) {
      return [];
    }
  }

  function saveHistory() {
    const since = Date.now() - WINDOW_MS - 5 * MINUTE_MS;
    state.history = state.history.filter((s) => s.t >= since);
    try {
      sessionStorage.setItem(HISTORY_KEY, JSON.stringify(state.history));
    } catch (e) {
      /* storage full: the history lives in memory only */
    }
  }

  async function pollMetrics() {
    try {
      const r = await call('GET', '/v1/overview');
      state.overview = r.data;
      state.metrics = parseMetrics(r.data.metrics || '');
      state.metricsError = '';
      state.history.push(sample(state.metrics, Date.now()));
      saveHistory();
    } catch (e) {
      state.metricsError = e.message;
    }
    document.dispatchEvent(new Event('cs-metrics'));
  }

  function startPolling() {
    if (state.pollTimer) return;
    pollMetrics();
    state.pollTimer = setInterval(pollMetrics, POLL_MS);
  }

  /* Quantile q of a cumulative histogram ({le: count}), interpolated inside the bucket. */
  function quantile(q, buckets, count) {
    const les = Object.keys(buckets)
      .map((k) => [k === '+Inf' ? Infinity : Number(k), buckets[k]])
      .sort((a, b) => a[0] - b[0]);
    const rank = q * count;
    let prevLe = 0, prevCum = 0;
    for (const [le, cum] of les) {
      if (cum >= rank) {
        if (le === Infinity) return prevLe;
        const inside = cum - prevCum;
        return inside > 0 ? prevLe + ((le - prevLe) * (rank - prevCum)) / inside : le;
      }
      prevLe = le;
      prevCum = cum;
    }
    return prevLe;
  }

  /* The last hour in 60 one-minute bins from the scrapes' differences (a counter that went
   * down means the process restarted: its new value is the difference). null: not watched. */
  function perMinute(history, now) {
    const bins = Array.from({ length: 60 }, () => ({ seen: false, applied: 0, count: 0, b: {} }));
    for (let i = 1; i < history.length; i++) {
      const a = history[i - 1], b = history[i];
      const age = now - b.t;
      if (b.t <= a.t || b.t - a.t > 5 * MINUTE_MS || age < 0 || age >= WINDOW_MS) continue;
      const bin = bins[59 - Math.floor(age / MINUTE_MS)];
      bin.seen = true;
      for (const k of Object.keys(b.applied)) {
        const d = b.applied[k] - (a.applied[k] || 0);
        bin.applied += d < 0 ? b.applied[k] : d;
      }
      const reset = b.count < a.count;
      bin.count += reset ? b.count : b.count - a.count;
      for (const le of Object.keys(b.buckets))
        bin.b[le] = (bin.b[le] || 0) + (reset ? b.buckets[le] : b.buckets[le] - (a.buckets[le] || 0));
    }
    return bins.map((x) => ({
      applied: x.seen ? x.applied : null,
      p95: x.count > 0 ? quantile(0.95, x.b, x.count) : null,
    }));
  }

  /* 60 bars, one a minute, oldest left; each bar has its value as a tooltip. */
  function barChart(id, values, label, format) {
    const W = 360, H = 110, top = 20, bottom = 20, inner = H - top - bottom, bw = W / values.length;
    const known = values.filter((v) => v !== null);
    const max = known.length ? Math.max(...known) : 0;
    const last = values[values.length - 1];
    const summary = known.length
      ? `${label}: highest ${format(max)}, last minute ${last === null ? 'not measured' : format(last)}`
      : `${label}: no data yet`;
    const s = svg('svg', { id, viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
                           'aria-label': summary });
    s.append(svg('line', { x1: 0, y1: top + inner + 0.5, x2: W, y2: top + inner + 0.5, class: 'axis' }));
    values.forEach((v, i) => {
      if (v === null) return;
      const bh = max > 0 ? Math.max(v > 0 ? 1.5 : 0, (inner * v) / max) : 0;
      const r = svg('rect', { x: i * bw + 0.5, y: top + inner - bh, width: Math.max(1, bw - 1.5),
                              height: bh, class: 'bar' });
      r.append(svg('title', {}, `${60 - i} min ago: ${format(v)}`));
      s.append(r);
    });
    s.append(svg('text', { x: 2, y: 14, class: 'tick' }, known.length ? `max ${format(max)}` : 'no data yet'));
    s.append(svg('text', { x: 2, y: H - 3, class: 'tick' }, '60 min ago'));
    s.append(svg('text', { x: W - 2, y: H - 3, class: 'tick', 'text-anchor': 'end' }, 'now'));
    return s;
  }

  // ------------------------------------------------------------------ confirmation dialog

  function confirmDialog(title, text, okLabel) {
    const d = $('#confirm');
    $('#confirm-title').textContent = title;
    $('#confirm-text').textContent = text;
    $('#confirm-ok').textContent = okLabel;
    return new Promise((resolve) => {
      const done = (v) => () => {
        d.close();
        resolve(v);
      };
      const ok = done(true), cancel = done(false);
      $('#confirm-ok').onclick = ok;
      $('#confirm-cancel').onclick = cancel;
      d.oncancel = (e) => {
        e.preventDefault();
        cancel();
      };
      d.showModal();
      $('#confirm-cancel').focus();
    });
  }

  /* Runs an action from a button: disables it meanwhile, shows an error in msg. */
  async function act(button, msg, fn) {
    button.disabled = true;
    try {
      await fn();
    } catch (e) {
      say(msg, e.message, 'error');
    } finally {
      button.disabled = false;
    }
  }

  /* Fills el by fn, or with the error that fn threw. */
  async function fill(el, fn) {
    try {
      await fn(el);
    } catch (e) {
      el.replaceChildren(h('p', { class: 'message error', role: 'alert' }, 'Error: ' + e.message));
    }
  }

  // ------------------------------------------------------------------ Overview

  async function pageOverview(view) {
    view.append(h('h1', { tabindex: -1 }, 'Overview'));
    const grid = h('div', { class: 'grid' });
    view.append(grid);
    const cards = {};
    const defs = [
      ['sync', 'Sync'], ['ready', 'Readiness'], ['queue', 'Queues'],
      ['applied', 'Changes applied per minute'], ['latency', 'Receive → apply latency (p95)'],
      ['dead', 'Dead letters, last 24 h'], ['errors', 'CRM errors'],
      ['sfapi', 'Salesforce API usage'],
    ];
    for (const [key, title] of defs) {
      cards[key] = h('div', { class: 'card-body' });
      grid.append(section('card-' + key, title, cards[key]));
    }
    const fast = () => {
      for (const k of Object.keys(overviewMetrics)) fill(cards[k], overviewMetrics[k]);
    };
    fast();
    const onMetrics = async () => {
      if (!view.isConnected) {
        document.removeEventListener('cs-metrics', onMetrics);
        return;
      }
      fast();
      // Someone else may have turned the switch: redraw it only then (keeps the focus).
      try {
        const on = String((await call('GET', '/v1/sync')).data.enabled);
        if (cards.sync.dataset.on !== on) fill(cards.sync, overviewSync);
      } catch (e) {
        /* shown by the next full load */
      }
    };
    document.addEventListener('cs-metrics', onMetrics);
    // Figures as of now, not of the last poll (an action on another page may have changed them).
    await Promise.all([fill(cards.sync, overviewSync), pollMetrics()]);
  }

  async function overviewSync(el) {
    const on = (await call('GET', '/v1/sync')).data.enabled;
    el.dataset.on = String(on);
    const msg = h('p', { class: 'message', role: 'status' });
    const btn = h('button', { id: 'sync-toggle', type: 'button', class: on ? 'danger' : '' },
      on ? 'Turn sync off…' : 'Turn sync on…');
    btn.addEventListener('click', () => act(btn, msg, async () => {
      const yes = await confirmDialog(
        on ? 'Turn sync off for every mapping?' : 'Turn sync on for every mapping?',
        on ? 'Nothing is written to either CRM until sync is on again. Changes keep arriving ' +
             'and wait in the queues; nothing is lost.'
           : 'The workers apply the changes that waited, oldest first, then keep up as changes ' +
             'arrive.',
        on ? 'Turn sync off' : 'Turn sync on');
      if (!yes) return;
      await call('PUT', '/v1/sync', { enabled: !on });
      await fill(el, overviewSync);
    }));
    el.replaceChildren(
      h('p', { id: 'sync-state', class: 'big' }, badge(on ? 'ON' : 'OFF', on ? 'ok' : 'off'),
        on ? ' Sync is on' : ' Sync is off'),
      h('p', { class: 'hint' }, on ? 'Changes are applied as they arrive.'
        : 'Changes wait in the queues until sync is turned on again.'),
      btn, msg);
  }

  /* A check's state as /readyz names it: "ok", "failing", or the word a check that does not
   * fail readiness uses ("waiting" for a spent API allowance, "suspect" for a likely wrong
   * MARKETO_TIMEZONE), shown as that word. */
  function checkBadge(v) {
    if (v === 'ok') return badge('✓ ok', 'ok');
    if (v === 'failing') return badge('✗ failing', 'bad');
    return badge('⚠ ' + v, 'warn');
  }

  function overviewReady(el) {
    if (metricsPending(el)) return;
    const d = state.overview.ready || {};
    const ready = d.status === 'ready';
    el.replaceChildren(
      h('p', { id: 'ready-state', class: 'big' }, ready ? badge('READY', 'ok') : badge('NOT READY', 'bad'),
        ready ? ' Ready' : ' ' + (d.message || 'Not ready')),
      h('ul', { class: 'checks', id: 'ready-checks' }, Object.entries(d.checks || {}).map(([name, v]) =>
        h('li', {}, checkBadge(v), ' ', h('strong', {}, name)))),
      h('p', { class: 'hint' }, "Why a check is not ok: the service's log says."));
  }

  function overviewDead(el) {
    if (metricsPending(el)) return;
    const d = state.overview.deadLetters || { last24h: 0, more: false };
    const n = d.last24h;
    el.replaceChildren(
      h('p', { id: 'dead-24h', class: 'big' }, badge(n ? 'ATTENTION' : 'NONE', n ? 'bad' : 'ok'),
        ` ${d.more ? 'over ' : ''}${fmtNum(n)} dead letter${n === 1 ? '' : 's'}`),
      h('p', {}, h('a', { href: '#/deadletters' }, 'Open the dead letters')));
  }

  function metricsPending(el) {
    if (state.overview && !state.metricsError) return false;
    el.replaceChildren(h('p', { class: state.metricsError ? 'message error' : 'hint' },
      state.metricsError ? 'Error: /v1/overview: ' + state.metricsError : 'Reading /v1/overview…'));
    return true;
  }

  /* The queues by the CRM their events are written to, and the events that disabled mappings
   * hold (counted in the total). */
  function queueRows(o) {
    const q = o.queues || {}, way = (w) => w || { depth: 0, oldestAgeSeconds: 0 };
    const row = (name, w) => [name, fmtNum(way(w).depth), way(w).depth ? fmtDuration(way(w).oldestAgeSeconds) : '—'];
    const parked = o.parked || { events: 0, programs: 0 };
    return [row('Toward Salesforce (from Marketo)', q.toSalesforce),
            row('Toward Marketo (from Salesforce)', q.toMarketo),
            [`Parked by ${fmtNum(parked.programs)} disabled mapping${parked.programs === 1 ? '' : 's'}`,
             fmtNum(parked.events), '—'],
            row('All waiting', q.total)];
  }

  function chartNote() {
    const first = state.history.length ? state.history[0].t : Date.now();
    return h('p', { class: 'hint' }, `This tab reads /v1/overview every ${POLL_MS / 1000} s; ` +
      `watched since ${fmtTime(first).slice(11)}.`);
  }

  const overviewMetrics = {
    ready: overviewReady,
    queue(el) {
      if (metricsPending(el)) return;
      const jobs = Object.entries(state.overview.jobsRunning || {})
        .map(([k, n]) => `${k} ${fmtNum(n)}`).join(', ');
      el.replaceChildren(table('queue-table', ['Queue', 'Waiting', 'Oldest'], queueRows(state.overview)),
        h('p', { id: 'jobs-running', class: 'hint' }, `Jobs running in this process: ${jobs || 'none'}.`));
    },
    dead: overviewDead,
    applied(el) {
      if (metricsPending(el)) return;
      const bins = perMinute(state.history, Date.now()).map((b) => b.applied);
      const hour = bins.reduce((a, v) => a + (v || 0), 0);
      const by = series(state.metrics, 'campaign_sync_events_applied_total')
        .map((s) => `${s.labels.target}: ${fmtNum(s.value)}`).join(', ');
      el.replaceChildren(barChart('chart-applied', bins, 'Changes applied per minute', fmtNum),
        h('p', { id: 'applied-summary' }, `${fmtNum(hour)} in the watched hour. Since the process ` +
          `started: ${by || 'none'}.`), chartNote());
    },
    latency(el) {
      if (metricsPending(el)) return;
      const bins = perMinute(state.history, Date.now()).map((b) => b.p95);
      const n = sum(state.metrics, 'campaign_sync_apply_latency_seconds_count');
      const s = sum(state.metrics, 'campaign_sync_apply_latency_seconds_sum');
      el.replaceChildren(barChart('chart-latency', bins, '95th percentile receive → apply', fmtDuration),
        h('p', { id: 'latency-summary' }, n ? `Mean since the process started: ${fmtDuration(s / n)} over ` +
          `${fmtNum(n)} changes.` : 'No change applied since the process started.'), chartNote());
    },
    errors(el) {
      if (metricsPending(el)) return;
      const rows = series(state.metrics, 'campaign_sync_crm_errors_total').filter((s) => s.value > 0)
        .map((s) => [s.labels.target, h('code', {}, s.labels.code), fmtNum(s.value)]);
      const retries = series(state.metrics, 'campaign_sync_retries_total')
        .map((s) => `${s.labels.target}: ${fmtNum(s.value)}`).join(', ');
      el.replaceChildren(
        rows.length ? table('errors-table', ['CRM', 'Error code', 'Count'], rows)
          : h('p', { id: 'errors-none' }, badge('NONE', 'ok'), ' No CRM error since the process started.'),
        h('p', { class: 'hint' }, `Retries: ${retries || 'none'}.`));
    },
    sfapi(el) {
      if (metricsPending(el)) return;
      const get = (k) => series(state.metrics, 'campaign_sync_salesforce_api_usage').find((s) => s.labels.kind === k);
      const used = get('used'), limit = get('limit');
      if (!used || !limit || !limit.value) {
        el.replaceChildren(h('p', { id: 'sfapi-usage' }, 'Not reported yet: Salesforce reports it ' +
          '(Sforce-Limit-Info) with its answers to this process.'));
        return;
      }
      const pct = (100 * used.value) / limit.value;
      el.replaceChildren(
        h('p', { id: 'sfapi-usage', class: 'big' }, `${pct.toFixed(1)} %`),
        h('meter', { min: 0, max: limit.value, value: used.value, low: limit.value * 0.5,
                     high: limit.value * 0.8, optimum: 0, 'aria-label': 'Salesforce API requests used today' }),
        h('p', {}, `${fmtNum(used.value)} of ${fmtNum(limit.value)} API requests in the org's 24-hour allowance.`));
    },
  };

  // ------------------------------------------------------------------ Mappings

  async function pageMappings(view, arg) {
    if (arg) return pageMapping(view, arg);
    view.append(h('div', { class: 'title-row' }, h('h1', { tabindex: -1 }, 'Mappings'),
      h('a', { class: 'button', href: '#/mappings/new', id: 'new-mapping' }, 'New mapping')));
    const items = await mappings();
    if (!items.length) {
      view.append(h('p', { id: 'no-mappings' }, 'No program is mapped to a campaign yet. ',
        h('a', { href: '#/mappings/new' }, 'Map one'), '.'));
      return;
    }
    const headers = ['Program', 'Campaign', 'Sync', 'Status map', 'Last copy error', 'Updated'];
    view.append(table('mappings-table', headers, items.map((m) => {
      const n = Object.keys(m.statusMap || {}).length;
      return [h('a', { href: '#/mappings/' + enc(m.programId) }, 'Program ' + m.programId),
        h('code', {}, m.campaignId),
        m.enabled ? badge('enabled', 'ok') : badge('disabled', 'off'),
        n ? `${n} entr${n === 1 ? 'y' : 'ies'}` : 'same labels',
        copyError(m), fmtTime(m.updatedAt)];
    })));
  }

  /* The program copy's last error (F2/F3), on servers that report it. */
  function copyError(m) {
    if (!('lastCopyError' in m)) return '—';
    if (!m.lastCopyError) return 'none';
    return h('span', {}, badge('error', 'bad'), ' ', m.lastCopyError,
      m.lastCopyErrorAt ? ` (${fmtTime(m.lastCopyErrorAt)})` : '');
  }

  function statusMapEditor(map) {
    const rows = h('div', { id: 'status-map', class: 'smap-rows' });
    const add = (mk = '', sf = '') => {
      const a = h('input', { class: 'smap-mkto', 'aria-label': 'Marketo program status', value: mk,
                             maxlength: 127, spellcheck: 'false' });
      const b = h('input', { class: 'smap-sf', 'aria-label': 'Salesforce campaign member status',
                             value: sf, maxlength: 127, spellcheck: 'false' });
      const row = h('div', { class: 'smap-row' }, a, h('span', { class: 'arrow', 'aria-hidden': 'true' }, '↔'), b);
      row.append(h('button', { type: 'button', class: 'quiet', onclick: () => row.remove() }, 'Remove'));
      rows.append(row);
      return a;
    };
    for (const [k, v] of Object.entries(map || {})) add(k, v);
    const addBtn = h('button', { type: 'button', id: 'add-status', class: 'quiet' }, 'Add entry');
    addBtn.addEventListener('click', () => add().focus());
    const el = h('fieldset', { class: 'smap' }, h('legend', {}, 'Status map'),
      h('p', { class: 'hint' }, 'Only statuses whose labels differ need an entry: a status without ' +
        'one maps to the same label on the other side (case-sensitive). An entry works both ways; ' +
        '"Not in Program" needs none.'),
      h('div', { class: 'smap-head', 'aria-hidden': 'true' }, h('span', {}, 'Marketo program status'),
        h('span', {}, 'Salesforce campaign member status')),
      rows, addBtn);
    const value = () => {
      const out = {};
      for (const row of rows.children) {
        const mk = row.querySelector('.smap-mkto').value.trim();
        const sf = row.querySelector('.smap-sf').value.trim();
        if (!mk && !sf) continue;
        if (!mk || !sf) throw new Error('a status map entry needs a status on both sides (or remove it)');
        if (mk in out) throw new Error(`the Marketo status "${mk}" has two entries`);
        out[mk] = sf;
      }
      return out;
    };
    return { el, add, value };
  }

  function unmatchedList(id, items) {
    return h('ul', { id, class: 'fixes' }, items.map((u) =>
      h('li', {}, h('strong', {}, u.status), h('br', {}), h('span', { class: 'fix' }, 'Fix: ' + u.fix))));
  }

  function validationReport(rep, editor, msg) {
    const missSf = rep.unmatched.filter((u) => u.side === 'marketo');
    const missMk = rep.unmatched.filter((u) => u.side === 'salesforce');
    const out = [h('p', { id: 'validation-summary', class: 'big' }, rep.compatible
      ? [badge('✓ COMPATIBLE', 'ok'), ' Every status has its counterpart on the other side.']
      : [badge('✗ INCOMPATIBLE', 'bad'), ` ${rep.unmatched.length} status${rep.unmatched.length === 1 ? '' : 'es'} ` +
         'without a counterpart: a change to one of them is dead-lettered.'])];
    out.push(h('h3', {}, `Matched (${rep.matched.length})`));
    out.push(rep.matched.length
      ? table('matched', ['Marketo program status', 'Salesforce campaign member status'],
              rep.matched.map((p) => [p.marketo, p.salesforce]))
      : h('p', {}, 'None.'));
    out.push(h('h3', {}, `Missing in Salesforce (${missSf.length})`));
    if (!missSf.length) out.push(h('p', {}, 'None: the campaign has every program status.'));
    else {
      out.push(unmatchedList('missing-in-salesforce', missSf));
      if (missMk.length) {
        const mk = h('select', { id: 'fix-mkto', 'aria-label': 'Marketo status' },
          missSf.map((u) => h('option', {}, u.status)));
        const sf = h('select', { id: 'fix-sf', 'aria-label': 'Salesforce status' },
          missMk.map((u) => h('option', {}, u.status)));
        const b = h('button', { type: 'button', class: 'quiet', id: 'fix-add' }, 'Add to the status map');
        b.addEventListener('click', () => {
          editor.add(mk.value, sf.value);
          say(msg, `Added "${mk.value}" ↔ "${sf.value}" to the status map above: save to apply it.`);
        });
        out.push(h('p', { class: 'inline-form' }, 'Map ', mk, ' to ', sf, ' ', b));
      }
    }
    out.push(h('h3', {}, `Missing in Marketo (${missMk.length})`));
    out.push(missMk.length ? unmatchedList('missing-in-marketo', missMk)
      : h('p', {}, "None: every campaign status is reached by one of the program's statuses."));
    return out;
  }

  function incompatibleList(unmatched) {
    return h('ul', { class: 'fixes' }, (unmatched || []).map((u) =>
      h('li', {}, h('strong', {}, `${u.side === 'marketo' ? 'Marketo' : 'Salesforce'} "${u.status}"`),
        ` has no counterpart in ${u.side === 'marketo' ? 'Salesforce' : 'Marketo'}. Fix: ${u.fix}`)));
  }

  /* Stores a mapping change. A change the server refuses for statuses without a counterpart
   * shows them in `panel` and offers the same change with force. */
  async function saveMapping(pid, body, patch, panel, msg, done) {
    const send = async (force) => {
      let r = null;
      if (patch) {
        r = await call('PATCH', '/v1/mappings/' + enc(pid), force ? { ...patch, force: true } : patch,
                       { accept: [400, 405, 409] });
        if (r.status === 405 || (r.status === 400 && force)) r = null; // no PATCH: PUT it whole
        else if (r.status === 400) throw new ApiError(400, r.data.error, r.data.message, r.data);
      }
      if (!r) r = await call('PUT', '/v1/mappings/' + enc(pid), force ? { ...body, force: true } : body,
                             { accept: [409] });
      if (r.status === 409 && r.data.error === 'incompatible_statuses' && !force) {
        panel.hidden = false;
        const forceBtn = h('button', { type: 'button', id: 'force-save', class: 'danger' },
          body.enabled ? 'Enable anyway (force)' : 'Save anyway (force)');
        const cancel = h('button', { type: 'button', class: 'quiet' }, 'Cancel');
        cancel.addEventListener('click', () => { panel.hidden = true; panel.replaceChildren(); });
        forceBtn.addEventListener('click', () => act(forceBtn, msg, () => send(true)));
        panel.replaceChildren(
          h('h3', {}, 'These statuses have no counterpart on the other side'),
          h('p', {}, 'Until they are fixed, a change to one of them goes to the dead letters ' +
            '(never guessed). Fix them in the status map or in the CRM, or go ahead anyway:'),
          incompatibleList(r.data.unmatched), h('p', { class: 'actions' }, forceBtn, ' ', cancel));
        forceBtn.focus();
        return;
      }
      if (r.status === 409) throw new ApiError(409, r.data.error, r.data.message, r.data);
      await done(r.data);
    };
    await send(false);
  }

  async function pageMapping(view, arg) {
    const isNew = arg === 'new';
    const m = isNew ? null : (await call('GET', '/v1/mappings/' + enc(arg))).data;
    view.append(h('p', { class: 'crumbs' }, h('a', { href: '#/mappings' }, '← All mappings')));
    view.append(h('h1', { tabindex: -1 }, isNew ? 'New mapping' : `Program ${m.programId} ↔ campaign ${m.campaignId}`));

    const msg = h('p', { id: 'mapping-message', class: 'message', role: 'status' });
    const panel = h('div', { id: 'incompatible', class: 'panel', role: 'alert', hidden: true });
    const pid = h('input', { id: 'program-id', name: 'programId', required: true, inputmode: 'numeric',
                             pattern: '[0-9]{1,23}', value: m ? m.programId : '', readonly: !isNew,
                             'aria-describedby': 'program-id-hint' });
    const cid = h('input', { id: 'campaign-id', name: 'campaignId', required: true, spellcheck: 'false',
                             pattern: '701[A-Za-z0-9]{12}([A-Za-z0-9]{3})?', value: m ? m.campaignId : '',
                             'aria-describedby': 'campaign-id-hint' });
    const editor = statusMapEditor(m ? m.statusMap : {});
    const submit = h('button', { type: 'submit', id: 'save-mapping' }, isNew ? 'Create mapping' : 'Save changes');
    const form = h('form', { id: 'mapping-form', class: 'card', novalidate: false },
      h('div', { class: 'fields' },
        h('div', {}, h('label', { for: 'program-id' }, 'Marketo program id'), pid,
          h('p', { id: 'program-id-hint', class: 'hint' }, isNew ? 'Digits, as in the program\'s URL.' : 'A mapping keeps its program.')),
        h('div', {}, h('label', { for: 'campaign-id' }, 'Salesforce campaign id'), cid,
          h('p', { id: 'campaign-id-hint', class: 'hint' }, '15 or 18 characters, starting 701.'))),
      editor.el,
      isNew ? h('p', { class: 'hint' }, 'A new mapping starts disabled: read its validation report, then enable it.') : null,
      h('p', { class: 'actions' }, submit), panel, msg);
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      act(submit, msg, async () => {
        const p = pid.value.trim();
        if (!/^[0-9]{1,23}$/.test(p)) throw new Error('the program id is digits only (1 to 23)');
        const body = { campaignId: cid.value.trim(), enabled: m ? m.enabled : false, statusMap: editor.value() };
        await saveMapping(p, body, null, panel, msg, async (saved) => {
          state.flash = { text: isNew ? `Mapping created (disabled). Read its validation report, then enable it.`
            : `Saved.${saved.statusCheck === 'forced' ? ' Forced: some statuses still have no counterpart.' : ''}` };
          if (isNew) location.hash = '#/mappings/' + enc(p);
          else render();
        });
      });
    });
    view.append(form);
    if (isNew) return;

    // Sync state: enable only after the incompatible statuses were shown.
    const syncMsg = h('p', { id: 'enable-message', class: 'message', role: 'status' });
    const syncPanel = h('div', { id: 'enable-incompatible', class: 'panel', role: 'alert', hidden: true });
    const toggle = h('button', { type: 'button', id: 'enable-mapping', class: m.enabled ? 'danger' : '' },
      m.enabled ? 'Disable sync for this mapping' : 'Enable sync for this mapping');
    toggle.addEventListener('click', () => act(toggle, syncMsg, () =>
      saveMapping(m.programId, { campaignId: m.campaignId, statusMap: m.statusMap, enabled: !m.enabled },
        { enabled: !m.enabled }, syncPanel, syncMsg, async (saved) => {
          state.flash = { text: saved.enabled ? `Mapping enabled${saved.statusCheck === 'forced'
            ? ' (forced: some statuses have no counterpart; their changes are dead-lettered)' : ''}.`
            : 'Mapping disabled: its changes wait until it is enabled again.' };
          render();
        })));
    view.append(section('mapping-sync', 'Sync',
      h('p', { id: 'mapping-state', class: 'big' }, m.enabled ? badge('ENABLED', 'ok') : badge('DISABLED', 'off'),
        m.enabled ? ' Changes of this program and campaign are synced.'
          : ' Changes of this program and campaign wait (parked) until it is enabled.'),
      'lastCopyError' in m ? h('p', { id: 'copy-error' }, 'Last copy of the channel and costs: ', copyError(m)) : null,
      h('p', { class: 'actions' }, toggle), syncPanel, syncMsg));

    const report = h('div', { id: 'validation-body' });
    const vmsg = h('p', { class: 'message', role: 'status' });
    const again = h('button', { type: 'button', class: 'quiet', id: 'validate' }, 'Compare again');
    const validate = () => fill(report, async (el) => {
      el.replaceChildren(h('p', { class: 'hint' }, 'Asking both CRMs…'));
      const r = await call('GET', `/v1/mappings/${enc(m.programId)}/validation`, undefined, { accept: [503] });
      if (r.status === 503) {
        el.replaceChildren(h('p', { class: 'message error' }, 'Error: ' + r.data.message));
        return;
      }
      el.replaceChildren(...validationReport(r.data, editor, vmsg));
    });
    again.addEventListener('click', () => act(again, vmsg, validate));
    view.append(section('validation', 'Validation report',
      h('p', { class: 'hint' }, "The program channel's statuses (Marketo) and the campaign's member " +
        'statuses (Salesforce), compared through the status map.'), report, vmsg, h('p', {}, again)));

    const jobs = h('div', { id: 'jobs-body' });
    const reconcileMsg = h('p', { id: 'reconcile-message', class: 'message', role: 'status' });
    const reconcile = h('button', { type: 'button', class: 'quiet', id: 'reconcile' }, 'Reconcile now');
    reconcile.addEventListener('click', () => act(reconcile, reconcileMsg, async () => {
      say(reconcileMsg, 'Comparing both member lists…');
      const r = await call('POST', `/v1/mappings/${enc(m.programId)}/reconcile`);
      if (r.status === 202) say(reconcileMsg, `Reconciliation job ${r.data.id} ${r.data.state || 'queued'}.`);
      else say(reconcileMsg, `Compared ${fmtNum(r.data.compared)} people: ${fmtNum(r.data.differences)} ` +
        `difference(s), ${fmtNum(r.data.queued)} correction(s) queued.`);
      await fill(jobs, (el) => mappingJobs(el, m.programId));
    }));
    view.append(section('mapping-members', 'Members and reconciliation',
      h('p', {}, h('a', { href: '#/members?campaign=' + enc(m.campaignId) }, 'Members of the campaign'), ' · ',
        h('a', { href: '#/audit?program=' + enc(m.programId) }, 'Audit trail of the program'), ' · ',
        h('a', { href: '#/deadletters?program=' + enc(m.programId) }, 'Dead letters of the program')),
      jobs, h('p', {}, reconcile), reconcileMsg));

    const del = h('button', { type: 'button', class: 'danger', id: 'delete-mapping' }, 'Delete mapping…');
    const delMsg = h('p', { class: 'message', role: 'status' });
    del.addEventListener('click', () => act(del, delMsg, async () => {
      if (!(await confirmDialog(`Delete the mapping of program ${m.programId}?`,
        'Nothing is synced between this program and campaign any more; members stay as they are ' +
        'in both CRMs. Changes waiting for this mapping are dropped as unmapped.', 'Delete mapping'))) return;
      await call('DELETE', '/v1/mappings/' + enc(m.programId));
      state.flash = { text: `Mapping of program ${m.programId} deleted.` };
      location.hash = '#/mappings';
    }));
    view.append(section('mapping-delete', 'Delete', h('p', {}, del), delMsg));

    await Promise.all([validate(), fill(jobs, (el) => mappingJobs(el, m.programId))]);
  }

  /* Backfill and reconciliation jobs, on servers that run them in the background. */
  async function mappingJobs(el, pid) {
    const r = await call('GET', `/v1/jobs?programId=${enc(pid)}&limit=20`, undefined, { accept: [404, 405] });
    if (endpointMissing(r)) {
      el.replaceChildren();
      return;
    }
    if (r.status !== 200) throw new ApiError(r.status, r.data.error, r.data.message, r.data);
    const items = r.data.items || [];
    const counts = (c) => (c && typeof c === 'object' ? Object.entries(c).map(([k, v]) =>
      `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(', ') : '');
    el.replaceChildren(h('h3', {}, 'Jobs'), items.length
      ? table('jobs-table', ['Job', 'Kind', 'State', 'Phase', 'Progress', 'Started', 'Ended', 'Error'],
        items.map((j) => [j.id, j.kind || j.type || '', j.state, j.phase || '', counts(j.counts),
          fmtTime(j.startedAt), fmtTime(j.endedAt), j.error || '']))
      : h('p', {}, 'No job yet.'));
  }

  // ------------------------------------------------------------------ Dead letters

  const sameCampaign = (a, b) => (a.length >= 15 && b.length >= 15 ? a.slice(0, 15) === b.slice(0, 15) : a === b);

  /* A dead letter's program and campaign: a Marketo event names the program, a Salesforce
   * event the campaign; the mapping gives the other. */
  function deadWhere(d, maps) {
    const ev = d.event && typeof d.event === 'object' ? d.event : {};
    let program = String(ev.programId || ''), campaign = String(ev.campaignId || '');
    const m = maps.find((x) => (program && x.programId === program) ||
                               (campaign && sameCampaign(x.campaignId, campaign)));
    if (m && !program) program = m.programId;
    if (m && !campaign) campaign = m.campaignId;
    return { ev, program, campaign };
  }

  function deadMatches(q, maps) {
    return (d) => {
      const { program, campaign } = deadWhere(d, maps);
      if (q.program && program !== q.program) return false;
      if (q.campaign && !sameCampaign(campaign, q.campaign)) return false;
      if (q.reason && d.reason !== q.reason) return false;
      return true;
    };
  }

  /* Every dead letter the filter takes, through the server's bulk replay: the API's largest
   * limit a call, again with each answer's cursor until its "next" is null (a call looks at
   * 5000 dead letters at most, so one may take none and still have a "next"). Falls back to
   * one by one where the server has no bulk replay or refuses the filter.
   * Returns {queued, skipped}. */
  async function replayAll(list, q, msg) {
    const body = { limit: REPLAY_LIMIT };
    if (q.program) body.programId = q.program;
    if (q.campaign) body.campaignId = q.campaign;
    if (q.reason) body.reason = q.reason;
    let queued = 0, skipped = 0;
    for (let first = true; ; first = false) {
      say(msg, `Replaying… ${fmtNum(queued)} queued again so far.`);
      let r;
      try {
        r = await call('POST', '/v1/deadletters/replay', body, first ? { accept: [400, 404, 405] } : {});
      } catch (e) {
        throw new Error(`${e.message} (${fmtNum(queued)} were queued again before; Replay all ` +
                        'again takes the rest)');
      }
      if (r.status >= 300) return replayEach(list, msg); // no bulk replay here
      queued += r.data.queued;
      skipped += r.data.skipped;
      if (!r.data.next) return { queued, skipped };
      body.cursor = r.data.next;
    }
  }

  async function replayEach(list, msg) {
    let queued = 0, skipped = 0;
    for (const d of list) {
      say(msg, `Replaying ${queued + skipped + 1} of ${list.length}…`);
      const r = await call('POST', `/v1/deadletters/${enc(d.id)}/replay`, undefined, { accept: [404, 409] });
      if (r.status === 202) queued++;
      else skipped++;
    }
    return { queued, skipped };
  }

  /* The dead-letter kinds the API lists as "reason" and filters by (dead_filter.c). */
  const DEAD_REASONS = [
    ['', 'Any reason'],
    ['unknown_status', 'Unknown status'],
    ['refused', 'Refused by a CRM'],
    ['gave_up', 'Gave up after retries'],
    ['unusable', 'Unusable notification'],
  ];

  async function pageDeadLetters(view, _arg, q) {
    view.append(h('h1', { tabindex: -1 }, 'Dead letters'));
    view.append(h('p', { class: 'hint' }, 'Changes the workers gave up on, newest first, each with ' +
      "the CRM's own error text. Fix the cause (a status map entry, a status in the CRM, a " +
      "person's email), then replay."));
    const reason = q.get('reason') || '';
    const f = { program: q.get('program') || '', campaign: q.get('campaign') || '',
                reason: DEAD_REASONS.some(([k]) => k === reason) ? reason : '' };
    const inputs = {
      program: h('input', { id: 'dl-program', value: f.program, inputmode: 'numeric' }),
      campaign: h('input', { id: 'dl-campaign', value: f.campaign, spellcheck: 'false' }),
      reason: h('select', { id: 'dl-reason' }, DEAD_REASONS.map(([k, text]) => h('option', { value: k }, text))),
    };
    inputs.reason.value = f.reason;
    const form = h('form', { id: 'dl-filter', class: 'filters' },
      h('div', {}, h('label', { for: 'dl-program' }, 'Program id'), inputs.program),
      h('div', {}, h('label', { for: 'dl-campaign' }, 'Campaign id'), inputs.campaign),
      h('div', {}, h('label', { for: 'dl-reason' }, 'Reason'), inputs.reason),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Filter'),
        h('a', { href: '#/deadletters', class: 'button quiet' }, 'Clear')));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const p = new URLSearchParams();
      for (const k of Object.keys(inputs)) if (inputs[k].value.trim()) p.set(k, inputs[k].value.trim());
      location.hash = '#/deadletters' + (p.toString() ? '?' + p : '');
    });
    view.append(form);

    const maps = await mappings();
    const { items, truncated } = await fetchAll(`/v1/deadletters?limit=${PAGE}`);
    const list = items.filter(deadMatches(f, maps));
    const filtered = f.program || f.campaign || f.reason;
    const msg = h('p', { id: 'dl-message', class: 'message', role: 'status' });
    view.append(h('p', { id: 'dl-count' }, filtered
      ? `${fmtNum(list.length)} of ${fmtNum(items.length)} dead letters match.`
      : `${fmtNum(items.length)} dead letter${items.length === 1 ? '' : 's'}.`,
      truncated ? ` Only the newest ${fmtNum(items.length)} were read.` : ''));
    if (!list.length) {
      view.append(msg);
      return;
    }
    const what = filtered ? `all ${list.length} matching` : `all ${list.length}`;
    const replay = h('button', { type: 'button', id: 'dl-replay-all' }, `Replay ${what}…`);
    const remove = h('button', { type: 'button', id: 'dl-delete-all', class: 'danger' }, `Delete ${what}…`);
    replay.addEventListener('click', () => act(replay, msg, async () => {
      if (!(await confirmDialog(`Replay ${what} dead letters?`, 'Each goes back into its queue, past ' +
        'de-duplication, and is applied under the current mappings. One whose cause is not fixed ' +
        'comes back here.', 'Replay'))) return;
      const { queued: n, skipped } = await replayAll(list, f, msg);
      state.flash = { text: `${fmtNum(n)} dead letter${n === 1 ? '' : 's'} replayed: queued again.` +
        (skipped ? ` ${fmtNum(skipped)} could not be replayed (a Salesforce notification that ` +
                   'never became an event: fix the record in Salesforce, then delete it).' : '') };
      render();
    }));
    remove.addEventListener('click', () => act(remove, msg, async () => {
      if (!(await confirmDialog(`Delete ${what} dead letters?`, 'Their changes are dropped for good: ' +
        'neither CRM will get them.', 'Delete'))) return;
      let n = 0;
      for (const d of list) {
        say(msg, `Deleting ${n + 1} of ${list.length}…`);
        const r = await call('DELETE', `/v1/deadletters/${enc(d.id)}`, undefined, { accept: [404] });
        if (r.status === 204) n++;
      }
      state.flash = { text: `${fmtNum(n)} dead letter${n === 1 ? '' : 's'} deleted.` };
      render();
    }));
    view.append(h('p', { class: 'actions' }, replay, ' ', remove), msg);

    const headers = ['When', 'Program', 'Campaign', 'Person', 'Change', 'Tries', "Error (the CRM's own text)", 'Actions'];
    view.append(table('dl-table', headers, list.map((d) => {
      const { ev, program, campaign } = deadWhere(d, maps);
      const one = h('button', { type: 'button', class: 'quiet replay', 'data-id': d.id }, 'Replay');
      const del = h('button', { type: 'button', class: 'quiet delete', 'data-id': d.id }, 'Delete…');
      one.addEventListener('click', () => act(one, msg, async () => {
        await call('POST', `/v1/deadletters/${enc(d.id)}/replay`);
        state.flash = { text: `Dead letter ${d.id} replayed: queued again.` };
        render();
      }));
      del.addEventListener('click', () => act(del, msg, async () => {
        if (!(await confirmDialog('Delete this dead letter?', `Its change (${ev.email || d.id}) is ` +
          'dropped for good.', 'Delete'))) return;
        await call('DELETE', `/v1/deadletters/${enc(d.id)}`);
        state.flash = { text: `Dead letter ${d.id} deleted.` };
        render();
      }));
      const change = `${ev.source ? 'from ' + ev.source + ': ' : ''}${(ev.type || '').replace(/_/g, ' ')}`;
      return [fmtTime(d.at), program || '—', campaign ? h('code', {}, campaign) : '—',
        ev.email ? h('a', { href: '#/audit?email=' + enc(ev.email) }, ev.email) : ev.mktoLeadId || ev.sfLeadId || ev.sfContactId || '—',
        ev.status ? `${change} → ${ev.status}` : change || '—', String(d.attempts),
        h('div', {}, h('span', { class: 'error-text' }, d.error),
          h('details', {}, h('summary', {}, 'Event'), h('pre', {}, JSON.stringify(d.event, null, 1)))),
        h('span', { class: 'row-actions' }, one, del)];
    })));
  }

  // ------------------------------------------------------------------ Members (F9)

  async function pageMembers(view, _arg, q) {
    view.append(h('h1', { tabindex: -1 }, 'Members of a campaign'));
    view.append(h('p', { class: 'hint' }, 'Who is a member of the campaign on each side, as the ' +
      "service recorded it (Marketo's \"Member of SFDC Campaign\"), with both people's ids."));
    const maps = await mappings();
    const cid = q.get('campaign') || (maps[0] ? maps[0].campaignId : '');
    const input = h('input', { id: 'members-campaign', list: 'mapped-campaigns', value: cid, spellcheck: 'false' });
    const form = h('form', { id: 'members-form', class: 'filters' },
      h('div', {}, h('label', { for: 'members-campaign' }, 'Salesforce campaign id'), input,
        h('datalist', { id: 'mapped-campaigns' }, maps.map((m) =>
          h('option', { value: m.campaignId }, `program ${m.programId}`)))),
      h('div', { class: 'actions' }, h('button', { type: 'submit' }, 'Show members')));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      location.hash = '#/members?campaign=' + enc(input.value.trim());
    });
    view.append(form);
    if (!cid) return;
    const mapping = maps.find((m) => sameCampaign(m.campaignId, cid));
    view.append(h('p', {}, mapping ? ['Mapped to Marketo program ',
      h('a', { href: '#/mappings/' + enc(mapping.programId) }, mapping.programId), '.']
      : 'No program is mapped to this campaign.'));
    const headers = ['Person', 'Marketo lead', 'Salesforce person', 'Campaign status', 'Program status', 'Last change', 'Changed in'];
    const show = (s) => (s === null || s === undefined ? '— not a member' : s);
    const rows = (items) => items.map((m) => [
      m.email ? h('a', { href: '#/audit?email=' + enc(m.email) }, m.email) : '—',
      m.marketoLeadId || '—', m.salesforceId ? h('code', {}, m.salesforceId) : '—',
      show(m.status), show(m.programStatus), fmtTime(m.updatedAt), m.source]);
    await paged(view, `/v1/campaigns/${enc(cid)}/members?limit=100`, 'members-table', headers, rows,
      'No synced member recorded for this campaign yet.');
  }

  /* A table of one paged list with a "Load more" button while the list goes on. */
  async function paged(view, path, id, headers, rows, empty) {
    const first = (await call('GET', path)).data;
    if (!first.items.length) {
      view.append(h('p', { id: id + '-empty' }, empty));
      return;
    }
    const wrap = table(id, headers, rows(first.items));
    view.append(wrap);
    let next = first.next;
    const more = h('button', { type: 'button', class: 'quiet', id: id + '-more', hidden: !next }, 'Load more');
    const msg = h('p', { class: 'message', role: 'status' });
    more.addEventListener('click', () => act(more, msg, async () => {
      const d = (await call('GET', `${path}&cursor=${enc(next)}`)).data;
      addRows(wrap.querySelector('table'), headers, rows(d.items));
      next = d.next;
      more.hidden = !next;
    }));
    view.append(h('p', {}, more), msg);
  }

  // ------------------------------------------------------------------ Audit

  const ACTIONS = { upsert_member: 'member added or status set', set_status: 'status set', remove_member: 'removed' };

  function auditRows(items) {
    return items.map((a) => [fmtTime(a.at), fmtTime(a.receivedAt), `${a.source} → ${a.target}`,
      a.programId ? h('a', { href: '#/audit?program=' + enc(a.programId) }, a.programId) : '—',
      a.campaignId ? h('code', {}, a.campaignId) : '—',
      a.email ? h('a', { href: '#/audit?email=' + enc(a.email) }, a.email) : '—',
      ACTIONS[a.action] || a.action, a.status || '—',
      a.result === 'applied' ? 'applied' : (a.result || '').replace(/_/g, ' ')]);
  }

  async function pageAudit(view, _arg, q) {
    view.append(h('h1', { tabindex: -1 }, 'Audit trail'));
    view.append(h('p', { class: 'hint' }, 'The changes the workers applied to either CRM, newest first.'));
    const maps = await mappings();
    const program = q.get('program') || '';
    const email = (q.get('email') || '').trim();
    const sel = h('select', { id: 'audit-program' }, h('option', { value: '' }, 'All programs'),
      maps.map((m) => h('option', { value: m.programId, selected: m.programId === program },
        `Program ${m.programId} ↔ ${m.campaignId}`)));
    if (program && !maps.some((m) => m.programId === program))
      sel.append(h('option', { value: program, selected: true }, `Program ${program}`));
    const input = h('input', { id: 'audit-email', type: 'search', value: email, autocomplete: 'off',
                               placeholder: 'name@example.com', spellcheck: 'false' });
    const form = h('form', { id: 'audit-form', class: 'filters' },
      h('div', {}, h('label', { for: 'audit-program' }, 'Program'), sel),
      h('div', {}, h('label', { for: 'audit-email' }, 'Person (email)'), input),
      h('div', { class: 'actions' }, h('button', { type: 'submit', id: 'audit-search' }, 'Search'),
        h('a', { href: '#/audit', class: 'button quiet' }, 'Clear')));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      const p = new URLSearchParams();
      if (sel.value) p.set('program', sel.value);
      if (input.value.trim()) p.set('email', input.value.trim());
      location.hash = '#/audit' + (p.toString() ? '?' + p : '');
    });
    view.append(form);
    const headers = ['Applied', 'Received', 'From → to', 'Program', 'Campaign', 'Person', 'Action', 'Status', 'Result'];
    const base = `/v1/audit?limit=${email ? PAGE : 100}${program ? '&programId=' + enc(program) : ''}`;
    if (!email) {
      await paged(view, base, 'audit-table', headers, auditRows, 'Nothing applied yet.');
      return;
    }
    await personTrace(view, email);
    const want = email.toLowerCase();
    const { items, truncated } = await fetchAll(base);
    const mine = items.filter((a) => (a.email || '').toLowerCase() === want);
    view.append(h('h2', {}, `Applied changes of ${email}`));
    view.append(h('p', { id: 'audit-count' }, `${fmtNum(mine.length)} of the newest ${fmtNum(items.length)} ` +
      `audit entries${truncated ? ' (the log goes on)' : ''}.`));
    if (mine.length) view.append(table('audit-table', headers, auditRows(mine)));
  }

  /* Everything that happened to one person (drops and dead letters too), on servers with the
   * per-person trace; older servers have the applied changes only (the audit log). */
  async function personTrace(view, email) {
    const r = await call('GET', '/v1/people?email=' + enc(email), undefined, { accept: [404, 405] });
    if (endpointMissing(r)) return;
    if (r.status !== 200) {
      view.append(h('p', { class: 'message' }, r.data.message || 'No trace of this person.'));
      return;
    }
    const items = r.data.items || r.data.events || [];
    view.append(h('h2', {}, `Trace of ${email}`));
    if (!items.length) {
      view.append(h('p', {}, 'No event recorded for this person.'));
      return;
    }
    const keys = [...new Set(items.flatMap((x) => Object.keys(x)))].slice(0, 9);
    const cell = (v) => (v === null || v === undefined ? '—' : typeof v === 'object' ? JSON.stringify(v) : String(v));
    view.append(table('trace-table', keys, items.map((x) => keys.map((k) => cell(x[k])))));
  }

  // ------------------------------------------------------------------ routing and sign-in

  const PAGES = {
    overview: ['Overview', pageOverview],
    mappings: ['Mappings', pageMappings],
    deadletters: ['Dead letters', pageDeadLetters],
    members: ['Members', pageMembers],
    audit: ['Audit', pageAudit],
  };

  async function render() {
    if (!state.token) return;
    const m = /^#\/([a-z]+)(?:\/([^?]*))?(?:\?(.*))?$/.exec(location.hash) || [];
    const name = PAGES[m[1]] ? m[1] : 'overview';
    const [title, fn] = PAGES[name];
    for (const a of document.querySelectorAll('#nav a'))
      if (a.dataset.page === name) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    document.title = `${title} · campaign-sync`;
    const view = h('div', { class: 'page', id: 'page-' + name });
    if (state.flash) {
      view.append(h('p', { id: 'flash', class: 'message ' + (state.flash.kind || 'done'), role: 'status' }, state.flash.text));
      state.flash = null;
    }
    $('#view').replaceChildren(view);
    const busy = h('p', { class: 'hint loading' }, 'Loading…');
    view.append(busy);
    try {
      await fn(view, m[2] ? decodeURIComponent(m[2]) : '', new URLSearchParams(m[3] || ''));
    } catch (e) {
      if (view.isConnected && state.token)
        view.append(h('p', { class: 'message error', role: 'alert' }, 'Error: ' + e.message));
    } finally {
      busy.remove();
    }
    const h1 = view.querySelector('h1');
    if (h1 && document.activeElement === document.body) h1.focus();
  }

  function showApp(on) {
    $('#login').hidden = on;
    $('#nav').hidden = !on;
    $('#signout').hidden = !on;
    $('#view').hidden = !on;
  }

  function signOut(message) {
    state.token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.removeItem(HISTORY_KEY);
    state.history = [];
    clearInterval(state.pollTimer);
    state.pollTimer = null;
    $('#view').replaceChildren();
    showApp(false);
    document.title = 'Sign in · campaign-sync';
    say($('#login-message'), message || '', message ? 'error' : '');
    $('#token').value = '';
    $('#token').focus();
  }

  /* Checks a token against the admin API; keeps it for the tab when the service takes it. */
  async function signIn(token) {
    const msg = $('#login-message');
    state.token = token;
    let r;
    try {
      r = await call('GET', '/v1/sync', undefined, { accept: [401, 404] });
    } catch (e) {
      state.token = '';
      say(msg, e.message, 'error');
      return false;
    }
    if (r.status !== 200) {
      state.token = '';
      say(msg, r.status === 401
        ? 'The service refused this token (401 Unauthorized): it is not the ADMIN_TOKEN the ' +
          'service runs with. Check it for a typo or a missing character and try again.'
        : 'The admin API is disabled on this service (ADMIN_TOKEN is unset).', 'error');
      $('#token').focus();
      $('#token').select();
      return false;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    say(msg, '');
    showApp(true);
    startPolling();
    await render();
    return true;
  }

  function boot() {
    $('#login-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const t = $('#token').value.trim();
      if (t) signIn(t);
    });
    $('#signout').addEventListener('click', () => signOut(''));
    window.addEventListener('hashchange', render);
    if (state.token) {
      const saved = state.token;
      showApp(false);
      $('#login').hidden = true;
      signIn(saved).then((ok) => {
        if (!ok) {
          showApp(false);
          say($('#login-message'), 'The token kept in this tab is no longer accepted: sign in again.', 'error');
        }
      });
    } else {
      signOut('');
    }
  }

  boot();
})();
