// wellgate status page: keeps the server-rendered page live from /api/events (Server-Sent
// Events: one "full" event, then "diff" events with what changed), filters and sorts the tag
// table, and ticks the ages. Every string from the gateway is set with textContent, never as
// markup.
'use strict';
(function () {
  const STEP = 200; // tag rows rendered at a time ("Show more" adds as many)
  const $ = (id) => document.getElementById(id);
  const collator = new Intl.Collator(undefined, { numeric: true, sensitivity: 'base' });

  const st = {
    status: null, devices: [], tags: [],
    skew: 0,            // server clock minus local clock, ms
    lastEvent: 0,       // local ms of the last event
    live: false,
    filter: { q: '', device: '', bad: false },
    sort: { key: '', dir: 1 },
    limit: STEP,
    shown: [],          // tag indices in the table, in order
    rows: new Map(),    // tag index -> row cells
    devRows: [],
    pending: null,      // tag indices changed since the last render
    scheduled: false,
  };

  // ---- text -------------------------------------------------------------------------

  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = text;
    return e;
  }
  function serverNow() { return Date.now() + st.skew; }
  function dur(ms) {
    let s = Math.max(0, Math.floor(ms / 1000));
    if (s < 60) return s + ' s';
    if (s < 3600) return Math.floor(s / 60) + ' min ' + (s % 60) + ' s';
    if (s < 86400) return Math.floor(s / 3600) + ' h ' + Math.floor((s % 3600) / 60) + ' min';
    return Math.floor(s / 86400) + ' d ' + Math.floor((s % 86400) / 3600) + ' h';
  }
  function ago(ts) { return ts == null ? 'never' : dur(serverNow() - ts) + ' ago'; }
  function pad(n, w) { return String(n).padStart(w || 2, '0'); }
  // clock is a time on the browser's clock and in its time zone: the time of day for
  // today, with the date before that.
  function clock(ts, withMs) {
    if (ts == null) return '—';
    const d = new Date(ts - st.skew);
    let s = pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
    if (withMs) s += '.' + pad(d.getMilliseconds(), 3);
    if (d.toDateString() !== new Date().toDateString()) {
      s = d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + s;
    }
    return s;
  }
  function parseTime(s) { return s == null ? null : Date.parse(s); }
  function bytes(n) {
    if (n < 1024) return n + ' B';
    if (n < 1048576) return (n / 1024).toFixed(1) + ' KiB';
    if (n < 1073741824) return (n / 1048576).toFixed(1) + ' MiB';
    return (n / 1073741824).toFixed(2) + ' GiB';
  }
  function num(n) { return n.toLocaleString('en-US'); }
  function withUnits(s, u) { return s && u ? s + ' ' + u : s; }

  // ---- model ------------------------------------------------------------------------

  function tagFromJSON(t, i) {
    return {
      i: i, device: t.device, name: t.tag, type: t.type, display: t.display,
      units: t.units || '', quality: t.quality, ts: parseTime(t.timestamp),
      lg: t.last_good_display || null, lgTs: parseTime(t.last_good_timestamp),
      writable: t.writable, address: t.address || '',
      key: (t.tag + '\u0000' + t.device + '\u0000' + (t.address || '')).toLowerCase(),
    };
  }

  const devState = new Map(); // device name -> state
  function deviceState(name) { return devState.get(name) || ''; }
  function indexDevices() {
    devState.clear();
    for (const d of st.devices) devState.set(d.name, d.state);
  }

  function onFull(d) {
    st.skew = d.t - Date.now();
    st.status = d.status;
    st.devices = d.status.devices || [];
    st.tags = d.tags.map(tagFromJSON);
    indexDevices();
    for (const r of st.rows.values()) seen.unobserve(r.tr);
    onScreen.clear();
    st.rows.clear();
    st.devRows = [];
    $('devices').tBodies[0].replaceChildren();
    $('tags').tBodies[0].replaceChildren();
    st.shown = [];
    fillDeviceSelect();
    st.pending = null;
    render(true);
  }

  function onDiff(d) {
    st.skew = d.t - Date.now();
    let all = false;
    if (d.status) {
      const devices = st.status.devices;
      st.status = d.status;
      st.status.devices = devices;
    }
    if (d.devices) {
      for (const [i, dev] of d.devices) {
        if (st.devices[i] && st.devices[i].state !== dev.state) all = true; // disabled changes bad-ness
        st.devices[i] = dev;
      }
      indexDevices();
    }
    const changed = st.pending || new Set();
    if (d.tags) {
      for (const a of d.tags) {
        const t = st.tags[a[0]];
        if (!t) continue;
        t.display = a[1]; t.quality = a[2];
        t.ts = a[3] == null ? null : d.t - a[3];
        if (a.length > 4) {
          t.lg = a[4]; t.lgTs = a[5] == null ? null : d.t - a[5];
        } else {
          t.lg = t.display; t.lgTs = t.ts;
        }
        changed.add(a[0]);
      }
    }
    st.pending = all ? null : changed;
    schedule();
  }

  function schedule() {
    if (st.scheduled) return;
    st.scheduled = true;
    requestAnimationFrame(() => { st.scheduled = false; render(st.pending === null); });
  }

  // ---- header and devices -----------------------------------------------------------

  function renderHeader() {
    const s = st.status;
    if (!s) return;
    $('site').textContent = s.group + ' / ' + s.edge_node;
    document.title = s.group + ' / ' + s.edge_node + ' — wellgate';
    const sum = s.summary;
    const by = sum.by_state || {};
    let text = (by.communicating || 0) + ' of ' + sum.devices + ' devices communicating';
    for (const k of ['degraded', 'down', 'connecting', 'disabled']) if (by[k]) text += ' · ' + by[k] + ' ' + k;
    text += ' · ' + num(sum.bad_tags) + (sum.bad_tags === 1 ? ' bad tag' : ' bad tags');
    const summary = $('summary');
    summary.textContent = text;
    summary.classList.toggle('bad', sum.bad_tags > 0 || (by.down || 0) > 0);

    const health = $('health');
    health.replaceChildren(...s.health.map((h) => el('li', '', h)));
    health.hidden = s.health.length === 0;

    let meta = 'wellgate ' + s.version + ' · up ' + (s.started ? dur(serverNow() - parseTime(s.started)) : '?');
    if (s.broker) {
      const l = s.local_broker || {};
      meta += ' · MQTT broker ' + s.broker + ', ' + (l.clients || 0) + ' clients, ' + (l.away_sessions || 0) +
        ' away (' + (l.queued_messages || 0) + ' queued), bdSeq ' + (l.bdseq || 0);
    }
    $('meta').textContent = meta;
    renderUpstream(s.upstream);
  }

  function renderUpstream(u) {
    const p = $('upstream');
    if (!u.enabled) { p.textContent = 'Upstream not configured'; return; }
    const parts = [document.createTextNode('Upstream '), el('b', 'up up-' + u.state, u.state)];
    let t = '';
    if (u.server) t += ' to ' + u.server;
    if (u.since) t += ' for ' + dur(serverNow() - parseTime(u.since));
    if (u.primary_host) t += ' · primary host ' + u.primary_host + ' ' + u.primary_host_state;
    t += ' · bdSeq ' + u.bdseq;
    parts.push(document.createTextNode(t));
    if (u.last_error) {
      parts.push(document.createTextNode(' · '));
      parts.push(el('span', 'err', 'last failure ' + ago(parseTime(u.last_error_at)) + ': ' + u.last_error));
    }
    let q = ' · store-and-forward ' + num(u.queued) + ' queued, ' + bytes(u.queue_bytes);
    if (u.queued && u.queue_oldest_s != null) q += ', oldest ' + dur(u.queue_oldest_s * 1000);
    parts.push(document.createTextNode(q));
    if (u.dropped) parts.push(document.createTextNode(', '), el('span', 'err', num(u.dropped) + ' dropped'));
    p.replaceChildren(...parts);
  }

  function deviceRow() {
    const r = { tr: el('tr') };
    const cell = (label) => { const td = el('td'); td.dataset.l = label; r.tr.append(td); return td; };
    r.name = cell('Device'); r.state = cell('State'); r.good = cell('Last good poll');
    r.resp = cell('Response'); r.counts = cell('Requests · errors'); r.err = cell('Last error');
    r.endpoint = cell('Endpoint');
    return r;
  }

  function renderDevices() {
    const body = $('devices').tBodies[0];
    if (st.devices.length === 0) {
      if (!body.dataset.empty) {
        const td = el('td', '', 'No devices configured.');
        td.colSpan = 7;
        const tr = el('tr'); tr.append(td);
        body.replaceChildren(tr);
        body.dataset.empty = '1';
      }
      return;
    }
    delete body.dataset.empty;
    while (st.devRows.length < st.devices.length) st.devRows.push(deviceRow());
    st.devRows.length = st.devices.length;
    st.devices.forEach((d, i) => {
      const r = st.devRows[i];
      r.tr.className = 'st-' + d.state;
      r.name.replaceChildren(el('b', '', d.name), document.createTextNode(' '), el('small', '', d.driver));
      const since = d.state_since ? el('small', '', 'for ' + dur(serverNow() - parseTime(d.state_since))) : '';
      r.state.replaceChildren(el('span', 'badge st-' + d.state, d.state), since);
      r.good.textContent = ago(parseTime(d.last_good));
      r.resp.textContent = d.response_time_ns == null ? '—' : ms(d.response_time_ns / 1e6);
      const kinds = Object.keys(d.errors_by_kind || {}).sort().map((k) => k + ' ' + num(d.errors_by_kind[k]));
      r.counts.replaceChildren(document.createTextNode(num(d.requests) + ' · ' + num(d.errors)),
        ...(kinds.length ? [el('small', '', kinds.join(' · '))] : []));
      if (d.last_error) {
        r.err.replaceChildren(el('span', 'err', d.last_error), el('small', '', ago(parseTime(d.last_error_at))));
      } else {
        r.err.textContent = '—';
      }
      r.endpoint.textContent = d.endpoint || '—';
    });
    if (body.children.length !== st.devRows.length || body.firstChild !== st.devRows[0].tr) {
      body.replaceChildren(...st.devRows.map((r) => r.tr));
    }
  }

  function ms(v) { return (v < 10 ? v.toFixed(1) : v.toFixed(0)) + ' ms'; }

  function fillDeviceSelect() {
    const sel = $('device');
    const cur = st.filter.device;
    const opts = [el('option', '', 'All devices')];
    opts[0].value = '';
    for (const d of st.devices) {
      const o = el('option', '', d.name);
      o.value = d.name;
      if (d.name === cur) o.selected = true;
      opts.push(o);
    }
    sel.replaceChildren(...opts);
  }

  // ---- tags ---------------------------------------------------------------------------

  function isBad(t) { return t.quality !== 'good' && deviceState(t.device) !== 'disabled'; }

  function matches(t, f, q) {
    if (f.device && t.device !== f.device) return false;
    if (f.bad && !isBad(t)) return false;
    if (q && t.key.indexOf(q) < 0) return false;
    return true;
  }

  // Sorts: cmp orders two tags; nil, where given, says a tag has nothing to sort by, and
  // those go last whichever the direction.
  const byName = (a, b) => collator.compare(a.name, b.name);
  const sorters = {
    name: { cmp: byName },
    device: { cmp: (a, b) => collator.compare(a.device, b.device) || byName(a, b) },
    value: { nil: (t) => shownValue(t) == null, cmp: (a, b) => cmpValue(shownValue(a), shownValue(b)) },
    quality: { cmp: (a, b) => (a.quality === 'good') - (b.quality === 'good') || collator.compare(a.quality, b.quality) },
    age: { nil: (t) => t.ts == null, cmp: (a, b) => b.ts - a.ts },
    time: { nil: (t) => t.ts == null, cmp: (a, b) => a.ts - b.ts },
    type: { cmp: (a, b) => collator.compare(a.type, b.type) },
    address: { nil: (t) => !t.address, cmp: (a, b) => collator.compare(a.address, b.address) },
  };
  // shownValue is what the Value column shows, as a number where it reads as one; null for
  // a bad tag (those sort last).
  function shownValue(t) {
    if (t.quality !== 'good' || t.display === '') return null;
    const n = Number(t.display);
    return Number.isFinite(n) ? n : t.display;
  }
  function cmpValue(x, y) {
    const nx = typeof x === 'number', ny = typeof y === 'number';
    if (nx && ny) return x - y;
    if (nx !== ny) return nx ? -1 : 1;
    return collator.compare(String(x), String(y));
  }

  function view() {
    const f = st.filter;
    const q = f.q.trim().toLowerCase();
    const list = st.tags.filter((t) => matches(t, f, q));
    const s = sorters[st.sort.key];
    if (s) {
      const dir = st.sort.dir;
      list.sort((a, b) => {
        if (s.nil) {
          const na = s.nil(a), nb = s.nil(b);
          if (na !== nb) return na ? 1 : -1;
          if (na) return a.i - b.i;
        }
        return s.cmp(a, b) * dir || a.i - b.i;
      });
    }
    return list;
  }

  // Only the rows on screen tick: updating thousands of off-screen ages every second would
  // make the browser lay the table out again for nothing.
  const onScreen = new Set();
  const seen = new IntersectionObserver((entries) => {
    for (const e of entries) {
      const i = Number(e.target.dataset.i);
      if (e.isIntersecting) {
        onScreen.add(i);
        const t = st.tags[i], r = st.rows.get(i);
        if (t && r) tickRow(r, t, deviceState(t.device) === 'disabled', t.quality !== 'good');
      } else {
        onScreen.delete(i);
      }
    }
  }, { rootMargin: '200px 0px' });

  function tagRow(t) {
    const r = { tr: el('tr') };
    r.tr.dataset.i = t.i;
    seen.observe(r.tr);
    const cell = (cls) => { const td = el('td', cls); r.tr.append(td); return td; };
    const tag = cell('tag');
    r.name = el('span', 'n');
    r.w = el('span', 'w');
    r.w.title = 'writable';
    r.narrow = el('small', 'narrow');
    tag.append(r.name, r.w, r.narrow);
    r.dev = cell('wide');
    const val = cell('val');
    r.v = el('span', 'v');
    r.lg = el('small', 'lg');
    val.append(r.v, r.lg);
    r.q = el('span', 'badge');
    cell('').append(r.q);
    r.age = cell('num');
    r.time = cell('wide');
    r.type = cell('wide');
    r.addr = cell('wide');
    return r;
  }

  function patchRow(r, t) {
    const disabled = deviceState(t.device) === 'disabled';
    const bad = t.quality !== 'good';
    r.tr.className = disabled ? 'disabled' : bad ? 'bad' : '';
    r.name.textContent = t.name;
    r.w.textContent = t.writable ? ' ✎' : '';
    r.narrow.textContent = t.address ? t.device + ' · ' + t.address : t.device;
    r.dev.textContent = t.device;
    if (!bad) {
      r.v.textContent = withUnits(t.display, t.units);
    } else if (t.lg) {
      r.v.textContent = withUnits(t.lg, t.units);
    } else {
      r.v.textContent = 'no value';
    }
    r.q.className = 'badge q-' + t.quality;
    r.q.textContent = t.quality;
    r.time.textContent = clock(t.ts, true);
    r.type.textContent = t.type;
    r.addr.textContent = t.address;
    tickRow(r, t, disabled, bad);
  }

  function tickRow(r, t, disabled, bad) {
    r.age.textContent = ago(t.ts);
    if (disabled) r.lg.textContent = 'device disabled';
    else if (bad && t.lg) r.lg.textContent = 'last good ' + ago(t.lgTs);
    else r.lg.textContent = '';
    r.lg.title = bad && t.lg ? 'last good value at ' + clock(t.lgTs, true) : '';
  }

  // Timings of the last renders and ticks (ms), for tests and for a curious technician's
  // console: window.wellgateStats.
  const stats = { render: [], tick: [], full: [] };
  window.wellgateStats = stats;
  function timed(list, f) {
    const t0 = performance.now();
    f();
    list.push(Math.round(performance.now() - t0));
    if (list.length > 50) list.shift();
  }

  function render(all) {
    timed(stats.render, () => renderNow(all));
  }

  function renderNow(all) {
    renderHeader();
    renderDevices();
    const list = view();
    const shown = list.slice(0, st.limit).map((t) => t.i);
    const body = $('tags').tBodies[0];
    const same = shown.length === st.shown.length && shown.every((i, k) => i === st.shown[k]);
    const changed = st.pending;
    st.pending = null;
    for (const i of shown) {
      let r = st.rows.get(i);
      if (!r) {
        r = tagRow(st.tags[i]);
        st.rows.set(i, r);
        patchRow(r, st.tags[i]);
      } else if (all || !changed || changed.has(i)) {
        patchRow(r, st.tags[i]);
      }
    }
    if (!same || body.children.length !== shown.length) {
      if (shown.length === 0) {
        const td = el('td', '', st.tags.length ? 'No tags match the filter.' : 'No tags.');
        td.colSpan = 8;
        const tr = el('tr'); tr.append(td);
        body.replaceChildren(tr);
      } else {
        body.replaceChildren(...shown.map((i) => st.rows.get(i).tr));
      }
      const now = new Set(shown);
      for (const i of onScreen) if (!now.has(i)) onScreen.delete(i); // rows taken out
      st.shown = shown;
    }
    const active = st.filter.q || st.filter.device || st.filter.bad;
    let count = active ? num(list.length) + ' of ' + num(st.tags.length) + ' tags match' : num(st.tags.length) + ' tags';
    if (list.length > shown.length) count += ', showing the first ' + num(shown.length);
    $('count').textContent = count;
    const more = $('more');
    more.hidden = list.length <= shown.length;
    more.textContent = 'Show ' + num(Math.min(STEP, list.length - shown.length)) + ' more';
  }

  // Every second: ages, uptime, and whether the stream is still alive.
  function tick() { timed(stats.tick, tickNow); }

  function tickNow() {
    for (const i of onScreen) {
      const t = st.tags[i];
      const r = st.rows.get(i);
      if (t && r) tickRow(r, t, deviceState(t.device) === 'disabled', t.quality !== 'good');
    }
    renderHeader();
    renderDevices();
    renderLive();
  }

  function renderLive() {
    const p = $('live');
    if (st.live) {
      p.className = 'live on';
      p.textContent = 'Live';
    } else {
      p.className = 'live off';
      p.textContent = st.lastEvent
        ? 'Connection to the gateway lost ' + dur(Date.now() - st.lastEvent) + ' ago; values shown are from then. Reconnecting…'
        : 'Connecting to the gateway…';
    }
  }

  // ---- controls -----------------------------------------------------------------------

  function readControls() {
    st.filter.q = $('q').value;
    st.filter.device = $('device').value;
    st.filter.bad = $('bad').checked;
    st.limit = STEP;
    const u = new URLSearchParams();
    if (st.filter.q) u.set('q', st.filter.q);
    if (st.filter.device) u.set('device', st.filter.device);
    if (st.filter.bad) u.set('bad', '1');
    const qs = u.toString();
    history.replaceState(null, '', qs ? '?' + qs : location.pathname);
    render(false);
  }

  function setSort(key) {
    if (st.sort.key === key) st.sort.dir = -st.sort.dir;
    else st.sort = { key: key, dir: 1 };
    for (const b of document.querySelectorAll('#tags th button')) {
      const th = b.parentElement;
      if (b.dataset.k === st.sort.key) th.setAttribute('aria-sort', st.sort.dir > 0 ? 'ascending' : 'descending');
      else th.removeAttribute('aria-sort');
    }
    render(false);
  }

  let es = null;
  function connect() {
    es = new EventSource('/api/events');
    es.addEventListener('full', (e) => {
      st.lastEvent = Date.now();
      st.live = true;
      timed(stats.full, () => onFull(JSON.parse(e.data)));
      renderLive();
    });
    es.addEventListener('diff', (e) => { st.lastEvent = Date.now(); onDiff(JSON.parse(e.data)); });
    es.onopen = () => { st.live = true; renderLive(); };
    es.onerror = () => {
      st.live = false;
      renderLive();
      if (es.readyState === EventSource.CLOSED) setTimeout(connect, 5000); // refused: retry ourselves
    };
  }

  function start() {
    document.documentElement.classList.add('js');
    const f = $('filter');
    f.addEventListener('submit', (e) => { e.preventDefault(); readControls(); });
    let timer = 0;
    $('q').addEventListener('input', () => { clearTimeout(timer); timer = setTimeout(readControls, 120); });
    $('device').addEventListener('change', readControls);
    $('bad').addEventListener('change', readControls);
    for (const b of document.querySelectorAll('#tags th button')) b.addEventListener('click', () => setSort(b.dataset.k));
    $('more').addEventListener('click', () => { st.limit += STEP; render(false); });
    st.filter.q = $('q').value;
    st.filter.device = $('device').value;
    st.filter.bad = $('bad').checked;
    renderLive();
    connect();
    setInterval(tick, 1000);
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
