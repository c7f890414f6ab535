// sluice's log viewer (docs/viewer.md). Plain modern JavaScript, no build step, no
// third-party code. Log content is data: it only ever reaches the page through
// textContent / createTextNode / title, never parsed as HTML. The read token is sent once, in
// a header of POST /api/v1/session, and never kept: the session is an HttpOnly cookie.
'use strict';

const $ = (id) => document.getElementById(id);
const PAGE = 200;          // lines per search page
const MAX_ROWS = 3000;     // rows kept in the DOM (the list is a window over the stream)
const MAX_SEARCH_ROWS = 20000;
const BUCKETS = 60;

const state = {
  q: '', since: '', until: '', source: '',
  older: null,           // cursor for older lines (next_cursor of a desc search)
  loadingOlder: false,
  gen: 0,                // bumps on each new search: late answers of an old one are dropped
  es: null, live: false, lastId: null, missed: 0, pending: [], flushQueued: false,
  hl: null,              // RegExp of the query's words, phrases and regexes
  sel: null,
};

// ------------------------------------------------------------------ helpers

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined && text !== null) e.textContent = String(text);
  return e;
}

async function api(path, params) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) if (v !== '' && v !== null && v !== undefined) u.searchParams.set(k, v);
  const r = await fetch(u, { credentials: 'same-origin', headers: { Accept: 'application/json' } });
  let body = null;
  try { body = await r.json(); } catch (e) { body = null; }
  if (r.status === 401) { showSignin(); throw new Error('signed out'); }
  if (!r.ok) { const err = new Error((body && body.error) || ('HTTP ' + r.status)); err.body = body; err.status = r.status; throw err; }
  return body;
}

// "2026-11-22T04:16:01.123456Z" -> microseconds since the epoch
function usOf(iso) {
  const m = /^(.*?)(?:\.(\d+))?Z$/.exec(iso);
  const s = Date.parse(m[1] + 'Z');
  const frac = (m[2] || '').padEnd(6, '0').slice(0, 6);
  return s * 1000 + Number(frac);
}

// The search API's cursor for "older than this event" (drain/search.c: o<us>.<id>).
function olderThan(ev) { return 'o' + usOf(ev.received_at) + '.' + ev.id; }

const pad = (n, w = 2) => String(n).padStart(w, '0');
function localTime(iso) {
  const d = new Date(iso);
  const us = (/\.(\d+)Z$/.exec(iso) || [, '0'])[1].padEnd(6, '0').slice(0, 3);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${us}`;
}

function programOf(ev) {
  if (ev.app_name && ev.procid) return ev.app_name + '/' + ev.procid;
  return ev.app_name || ev.procid || '';
}

function progClass(ev) {
  const p = ev.procid || '', a = ev.app_name || '';
  if (p === 'router') return 'p-router';
  if (/^web(\.|$)/.test(p)) return 'p-web';
  if (/^worker(\.|$)/.test(p)) return 'p-worker';
  if (a === 'heroku') return 'p-heroku';
  let h = 0;
  for (const c of a + '/' + p.replace(/\.\d+$/, '')) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return 'p-x' + (h % 6);
}

function rawBytes(b64) {
  let s = '';
  try {
    const bin = atob(b64);
    for (let i = 0; i < bin.length && i < 4096; i++) {
      const c = bin.charCodeAt(i);
      s += c >= 0x20 && c < 0x7f && c !== 0x5c ? bin[i] : '\\x' + c.toString(16).padStart(2, '0');
    }
  } catch (e) { s = '(undecodable)'; }
  return s;
}

// ------------------------------------------------------------------ highlighting

// The query's positive words, phrases and regexes as one RegExp (best effort: the
// server decides what matches; this only marks it).
function highlighter(q) {
  const parts = [];
  const re = /(-|NOT\s+)?(?:([A-Za-z_][\w.]*):)?(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|\/((?:[^/\\]|\\.)+)\/(i?)|([^\s()]+))/g;
  let m;
  while ((m = re.exec(q)) !== null) {
    if (m[1] || (m[2] && m[2] !== 'message')) continue;
    const word = m[7];
    if (word && /^(AND|OR|NOT)$/.test(word)) continue;
    if (m[3] !== undefined || m[4] !== undefined) {
      const ph = (m[3] !== undefined ? m[3] : m[4]).replace(/\\(.)/g, '$1');
      if (ph) parts.push(ph.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
    } else if (m[5] !== undefined) {
      try { new RegExp(m[5]); parts.push(m[5]); } catch (e) { /* not a JS regex: no mark */ }
    } else if (word) {
      parts.push('(?<![\\p{L}\\p{N}_])' + word.replace(/[.*+?^${}()|[\]\\]/g, '\\$&') + '(?![\\p{L}\\p{N}_])');
    }
  }
  if (!parts.length) return null;
  try { return new RegExp(parts.map((p) => '(?:' + p + ')').join('|'), 'giu'); } catch (e) { return null; }
}

function fillMessage(node, text) {
  const hl = state.hl;
  if (!hl || !text) { node.textContent = text || ''; return; }
  hl.lastIndex = 0;
  let last = 0, m, n = 0;
  while ((m = hl.exec(text)) !== null && n < 200) {
    if (m[0] === '') { hl.lastIndex++; continue; }
    if (m.index > last) node.appendChild(document.createTextNode(text.slice(last, m.index)));
    node.appendChild(el('mark', null, m[0]));
    last = m.index + m[0].length;
    n++;
  }
  if (last < text.length) node.appendChild(document.createTextNode(text.slice(last)));
}

// A JSON line shown compactly: the text before its object, then each scalar leaf as
// path=value (strings with spaces or quotes quoted, as logfmt does). Text only.
function jsonLine(message, fields) {
  const out = [];
  const walk = (v, path) => {
    if (out.length >= 200) return;
    if (v !== null && typeof v === 'object') {
      const keys = Array.isArray(v) ? v.map((_, i) => i) : Object.keys(v);
      if (!keys.length) { out.push(path + '=' + (Array.isArray(v) ? '[]' : '{}')); return; }
      for (const k of keys) walk(v[k], path ? path + '.' + k : String(k));
      return;
    }
    let t = typeof v === 'string' ? v : JSON.stringify(v);
    if (typeof v === 'string' && (t === '' || /[\s"=]/.test(t))) t = JSON.stringify(t);
    out.push(path + '=' + t);
  };
  // The line's own key order where the text after the first '{' parses (PostgreSQL's
  // jsonb, which the server sends, orders keys by length); else the server's fields.
  const at = message.indexOf('{');
  let obj = fields;
  if (at >= 0) {
    try {
      const o = JSON.parse(message.slice(at));
      if (o !== null && typeof o === 'object' && !Array.isArray(o)) obj = o;
    } catch (e) { /* the server's fields */ }
  }
  walk(obj, '');
  const prefix = at > 0 ? message.slice(0, at) : '';
  return prefix + out.join(' ');
}

// ------------------------------------------------------------------ rows

function row(ev, inContext) {
  const r = el('div', 'row sev-' + (ev.severity_name || ''));
  r.dataset.id = ev.id;
  const t = el('span', 't', localTime(ev.received_at));
  t.title = ev.received_at + ' (UTC)' + (ev.emitted_at ? '\nsent ' + ev.emitted_at : '');
  r.appendChild(t);
  r.appendChild(el('span', 'src', ev.source || ''));
  r.appendChild(el('span', 'prog ' + progClass(ev), programOf(ev)));
  const msg = el('span', 'msg');
  if (ev.parse_error) { const k = el('span', 'mk perr', 'parse error'); k.title = ev.parse_error; msg.appendChild(k); }
  if (ev.truncated_from) { const k = el('span', 'mk trunc', 'truncated'); k.title = 'cut from ' + ev.truncated_from + ' bytes'; msg.appendChild(k); }
  if (ev.message_raw) { const k = el('span', 'mk raw', 'raw bytes'); k.title = rawBytes(ev.message_raw); msg.appendChild(k); }
  const body = el('span', 'text');
  if (ev.fields && typeof ev.fields === 'object') {
    // A JSON line (docs/search.md): its prefix, then the fields as key=value; the line
    // as stored on hover.
    body.classList.add('json');
    body.title = ev.message || '';
    fillMessage(body, jsonLine(ev.message || '', ev.fields));
  } else {
    fillMessage(body, ev.message);
  }
  msg.appendChild(body);
  r.appendChild(msg);
  if (!inContext) r.addEventListener('click', () => openContext(ev, r));
  return r;
}

function setNote(text) { $('top-note').textContent = text; }

function atBottom() { const l = $('lines'); return l.scrollHeight - l.scrollTop - l.clientHeight < 40; }
function toBottom() { const l = $('lines'); l.scrollTop = l.scrollHeight; }

// Drop rows from the top beyond MAX_ROWS; the oldest kept row becomes the cursor for
// loading older lines again when the user scrolls up.
function trimTop() {
  const rows = $('rows');
  let n = rows.childElementCount - MAX_ROWS;
  if (n <= 0) return;
  while (n-- > 0) rows.removeChild(rows.firstElementChild);
  const first = rows.firstElementChild;
  if (first && first._ev) { state.older = olderThan(first._ev); setNote('↑ scroll up for older lines'); }
}

function appendEvents(evs, follow) {
  const f = document.createDocumentFragment();
  for (const ev of evs) { const r = row(ev); r._ev = ev; f.appendChild(r); }
  $('rows').appendChild(f);
  if (follow) { trimTop(); toBottom(); }
}

function prependEvents(evs) {
  const l = $('lines'), before = l.scrollHeight, f = document.createDocumentFragment();
  for (const ev of evs) { const r = row(ev); r._ev = ev; f.appendChild(r); }
  $('rows').insertBefore(f, $('rows').firstChild);
  l.scrollTop += l.scrollHeight - before;
}

// ------------------------------------------------------------------ URL (permalink)

function readURL() {
  const p = new URLSearchParams(location.search);
  state.q = p.get('q') || '';
  state.since = p.get('since') || '';
  state.until = p.get('until') || '';
  state.source = p.get('source') || '';
  $('q').value = state.q; $('since').value = state.since; $('until').value = state.until;
  $('source').value = state.source;
  return p.get('live') === '1';
}

function writeURL(push) {
  const p = new URLSearchParams();
  if (state.q) p.set('q', state.q);
  if (state.since) p.set('since', state.since);
  if (state.until) p.set('until', state.until);
  if (state.source) p.set('source', state.source);
  if (state.live) p.set('live', '1');
  const u = location.pathname + (p.toString() ? '?' + p : '');
  if (u !== location.pathname + location.search) history[push ? 'pushState' : 'replaceState'](null, '', u);
}

// ------------------------------------------------------------------ search

function showQueryError(err) {
  const box = $('qerr');
  if (!err) { box.hidden = true; return; }
  $('qerr-msg').textContent = err.message;
  const pos = err.body && typeof err.body.position === 'number' ? err.body.position : -1;
  if (pos >= 0) {
    // position is a byte offset: find the character at it
    const bytes = new TextEncoder().encode(state.q);
    const ch = new TextDecoder().decode(bytes.slice(0, pos)).length;
    $('qerr-at').textContent = state.q + '\n' + ' '.repeat(ch) + '^';
    try { $('q').focus(); $('q').setSelectionRange(ch, Math.min(ch + 1, state.q.length)); } catch (e) { /* ignore */ }
  } else {
    $('qerr-at').textContent = '';
  }
  box.hidden = false;
}

function params() {
  return { q: state.q, since: state.since, until: state.until, source: state.source };
}

async function runSearch(push) {
  const gen = ++state.gen;
  writeURL(push);
  stopTail(false);
  state.hl = highlighter(state.q);
  state.older = null;
  state.lastId = null;   // a new search: the tail starts after its newest line
  state.newestId = null;
  state.missed = 0;
  $('missed').hidden = true;
  // the old graph goes: a new one is drawn once the lines have come
  $('bars').textContent = '';
  $('graph-info').textContent = '';
  delete $('graph-info').dataset.lines;
  delete $('graph-info').dataset.matches;
  $('rows').textContent = '';
  setNote('');
  showQueryError(null);
  $('stat').textContent = 'searching…';
  const t0 = performance.now();
  try {
    const a = await api('/api/v1/search', { ...params(), limit: PAGE, order: 'desc' });
    if (gen !== state.gen) return;
    appendEvents(a.events.slice().reverse(), false);
    toBottom();
    state.older = a.reached_end ? null : a.next_cursor;
    state.newestId = a.events.length ? a.events[0].id : null;
    setNote(state.older ? '↑ scroll up for older lines' : 'no older lines in this range');
    $('stat').textContent = `${a.count} lines · ${a.since} → ${a.until}${a.default_window ? ' (last 24h)' : ''}`;
    performance.mark('sluice-first-results');
    document.body.dataset.results = String(Math.round(performance.now() - t0));
    if (state.wantLive) { state.wantLive = false; startTail(); }
  } catch (err) {
    if (gen !== state.gen) return;
    $('stat').textContent = '';
    if (err.status === 400) { showQueryError(err); return; }
    $('stat').textContent = 'error: ' + err.message;
  }
  // the graph after the lines: one token's requests share the search workers, and the
  // lines are what the reader waits for
  loadGraph(gen);
}

async function loadOlder() {
  if (!state.older || state.loadingOlder) return;
  if ($('rows').childElementCount >= MAX_SEARCH_ROWS) { setNote('showing ' + MAX_SEARCH_ROWS + ' lines: narrow the time range for older ones'); return; }
  const gen = state.gen;
  state.loadingOlder = true;
  setNote('loading older lines…');
  try {
    const a = await api('/api/v1/search', { ...params(), limit: PAGE, order: 'desc', cursor: state.older });
    if (gen !== state.gen) return;
    prependEvents(a.events.slice().reverse());
    state.older = a.reached_end ? null : a.next_cursor;
    setNote(state.older ? '↑ scroll up for older lines' : 'no older lines in this range');
  } catch (err) {
    setNote('error: ' + err.message);
  } finally {
    state.loadingOlder = false;
  }
}

// ------------------------------------------------------------------ volume graph

async function loadGraph(gen) {
  const bars = $('bars');
  try {
    const a = await api('/api/v1/aggregate', { ...params(), buckets: BUCKETS });
    if (gen !== state.gen) return;
    bars.textContent = '';
    // lines on their scale; matches on theirs when there is a query (a rare match would
    // otherwise be invisible under millions of lines)
    const max = Math.max(1, ...a.buckets.map((b) => b.lines));
    const hmax = state.q.trim() ? Math.max(1, ...a.buckets.map((b) => b.matches)) : max;
    const w = a.bucket_seconds * 1000;
    for (const b of a.buckets) {
      const bar = el('div', 'bar');
      const all = el('div', 'all'), hit = el('div', 'hit');
      all.style.height = (100 * b.lines / max) + '%';
      hit.style.height = (100 * b.matches / hmax) + '%';
      bar.append(all, hit);
      bar.dataset.lines = b.lines; bar.dataset.matches = b.matches;
      const start = new Date(b.start), end = new Date(Math.min(start.getTime() + w, Date.parse(a.until)));
      bar.title = `${localTime(b.start)}\n${b.matches} matching of ${b.lines} lines`;
      bar.addEventListener('click', () => {
        state.since = start.toISOString(); state.until = end.toISOString();
        $('since').value = state.since; $('until').value = state.until;
        runSearch(true);
      });
      bars.appendChild(bar);
    }
    const info = $('graph-info');
    info.textContent = `${a.matches} matching of ${a.lines} lines · ${a.bucket_seconds}s bars`;
    info.dataset.lines = a.lines; info.dataset.matches = a.matches;
  } catch (err) {
    if (gen === state.gen) { bars.textContent = ''; $('graph-info').textContent = ''; }
  }
}

// ------------------------------------------------------------------ live tail

function flushPending() {
  state.flushQueued = false;
  if (!state.pending.length) return;
  const evs = state.pending; state.pending = [];
  const follow = atBottom();
  appendEvents(evs.length > MAX_ROWS ? evs.slice(-MAX_ROWS) : evs, follow);
  if (!follow) {
    // the user is reading above: keep the DOM bounded from the bottom's side instead
    const rows = $('rows');
    while (rows.childElementCount > MAX_ROWS * 2) rows.removeChild(rows.lastElementChild);
  }
  $('stat').textContent = `live · ${$('rows').childElementCount} lines shown`;
}

function startTail() {
  if (state.es) return;
  const u = new URL('/api/v1/tail', location.origin);
  for (const [k, v] of Object.entries({ q: state.q, source: state.source })) if (v) u.searchParams.set(k, v);
  const after = state.lastId || state.newestId;
  if (after) u.searchParams.set('last_id', after);
  const es = new EventSource(u, { withCredentials: false });
  state.es = es; state.live = true;
  $('live').classList.add('on'); $('live').textContent = '❚❚ Pause';
  $('tail-state').textContent = 'live: connecting…';
  es.onopen = () => { $('tail-state').textContent = 'live'; };
  es.onmessage = (m) => {
    let ev;
    try { ev = JSON.parse(m.data); } catch (e) { return; }
    state.lastId = ev.id;
    state.pending.push(ev);
    if (state.pending.length > MAX_ROWS * 4) state.pending.splice(0, state.pending.length - MAX_ROWS);
    if (!state.flushQueued) { state.flushQueued = true; requestAnimationFrame(flushPending); }
  };
  es.addEventListener('missed', (m) => {
    try {
      const d = JSON.parse(m.data);
      state.missed += Number(d.missed) || 0;
      const s = $('missed');
      s.hidden = false;
      s.textContent = `${state.missed} lines missed (the page fell behind; search after ${d.after_id} for them)`;
    } catch (e) { /* ignore */ }
  });
  es.addEventListener('error', (m) => {
    if (m.data) { $('tail-state').textContent = 'live: ' + m.data; stopTail(false); return; }
    // a network drop: EventSource reconnects by itself with Last-Event-ID
    $('tail-state').textContent = es.readyState === EventSource.CLOSED ? 'live: closed' : 'live: reconnecting…';
    if (es.readyState === EventSource.CLOSED) { state.es = null; setTimeout(() => { if (state.live) startTail(); }, 2000); }
  });
  writeURL(false);
  setTimeout(() => { if (state.live) toBottom(); }, 0);
}

function stopTail(keepLive) {
  if (state.es) { state.es.close(); state.es = null; }
  if (!keepLive) state.live = false;
  $('live').classList.remove('on'); $('live').textContent = '▶ Live';
  $('tail-state').textContent = keepLive ? 'paused' : '';
  flushPending();
}

function toggleTail() {
  if (state.es) { stopTail(false); $('tail-state').textContent = 'paused: ▶ resumes where it stopped'; writeURL(false); }
  else startTail();
}

// ------------------------------------------------------------------ context

async function openContext(ev, r) {
  if (state.sel) state.sel.classList.remove('sel');
  state.sel = r; r.classList.add('sel');
  $('ctx-title').textContent = `${ev.source} · ${programOf(ev)} · ${localTime(ev.received_at)}`;
  $('ctx-dyno').textContent = 'loading…'; $('ctx-all').textContent = ''; showCrash(null);
  $('context').hidden = false;
  try {
    const c = await api('/api/v1/context', { id: ev.id, n: 25 });
    const fill = (node, before, after) => {
      node.textContent = '';
      for (const e of before) node.appendChild(row(e, true));
      const me = row(c.event, true); me.classList.add('sel'); node.appendChild(me);
      for (const e of after) node.appendChild(row(e, true));
      me.scrollIntoView({ block: 'center' });
    };
    fill($('ctx-dyno'), c.dyno_before, c.dyno_after);
    fill($('ctx-all'), c.all_before, c.all_after);
    showCrash(c.crash);
  } catch (err) {
    $('ctx-dyno').textContent = 'error: ' + err.message;
  }
}

// The crash the clicked line was joined into (docs/crashes.md): its exception chain, root
// cause first, each with its frames, most recent call last, app frames in bold. Text only.
function showCrash(crash) {
  const box = $('ctx-crash'), list = $('crash-frames');
  list.textContent = '';
  box.hidden = !crash;
  if (!crash) return;
  $('crash-head').textContent = `crash: ${crash.type}${crash.value ? ': ' + crash.value : ''}` +
    ` · ${crash.lines} lines joined${crash.truncated ? ' (truncated)' : ''} · Sentry: ${crash.delivery}`;
  $('crash-head').title = crash.delivery_detail || '';
  const values = (crash.exception && crash.exception.values) || [];
  values.forEach((x, i) => {
    if (values.length > 1) list.appendChild(el('li', 'chain', `${i ? 'then ' : ''}${x.type}: ${x.value || ''}`));
    for (const f of (x.stacktrace && x.stacktrace.frames) || []) {
      const where = (f.filename || f.abs_path || f.module || '?') + (f.lineno ? ':' + f.lineno : '') +
        (f.colno ? ':' + f.colno : '');
      list.appendChild(el('li', f.in_app ? 'app' : null, `${where} in ${f.function || '?'}`));
    }
  });
}

function closePanels() { $('context').hidden = true; $('alertbox').hidden = true; }

// ------------------------------------------------------------------ alert snippet

// The query as a rule of the rules file (docs/alerts.md): rules are PCRE2 patterns on
// the message, with app/procid/sources filters. Terms a pattern cannot say are listed.
function ruleFor(q, source, cond) {
  const groups = [[]], neg = [], left = [];
  let app = null, procid = null, sources = source ? source.split(',') : null, ci = false;
  const re = /(-|NOT\s+)?(?:([A-Za-z_][\w.]*):)?(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|\/((?:[^/\\]|\\.)+)\/(i?)|([^\s]+))/g;
  const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  let m;
  while ((m = re.exec(q)) !== null) {
    const field = m[2], word = m[7], neg1 = !!m[1];
    if (word === 'AND') continue;
    if (word === 'OR' && !neg1 && !field) { groups.push([]); continue; }
    if (word && /[()]/.test(word)) { left.push(m[0]); continue; }
    let pat = null;
    if (m[3] !== undefined || m[4] !== undefined) pat = esc((m[3] !== undefined ? m[3] : m[4]).replace(/\\(.)/g, '$1'));
    else if (m[5] !== undefined) { pat = m[5]; ci = ci || m[6] === 'i'; }
    else if (word) pat = '\\b' + esc(word) + '\\b';
    if (field && field !== 'message') {
      const v = (m[3] || m[4] || word || '');
      if (!neg1 && field === 'source') { sources = [v]; continue; }
      if (!neg1 && field === 'app') { app = v; continue; }
      if (!neg1 && (field === 'proc' || field === 'program')) { procid = v; continue; }
      left.push(m[0]); continue;
    }
    if (!field && word) ci = true;   // words match ignoring ASCII case
    if (neg1) neg.push(pat); else groups[groups.length - 1].push(pat);
  }
  // OR of ANDs: each group as lookaheads (or its one pattern), the groups as alternatives
  const alts = groups.filter((g) => g.length).map((g) => (g.length === 1 ? g[0] : g.map((p) => '(?=.*' + p + ')').join('')));
  const rule = { name: (q.replace(/[^A-Za-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 40) || 'all-lines').toLowerCase() };
  rule.pattern = alts.length === 0 ? '.' : alts.length === 1 ? alts[0] : alts.map((p) => '(?:' + p + ')').join('|');
  if (ci) rule.flags = 'i';
  if (neg.length) rule.exclude = neg.join('|');
  if (app) rule.app = app;
  if (procid) rule.procid = procid;
  if (sources) rule.sources = sources;
  rule.condition = cond;
  if (cond === 'threshold') { rule.count = 10; rule.window = 60; rule.group_by = 'source'; }
  rule.cooldown = 300; rule.resolve_after = 300; rule.severity = cond === 'threshold' ? 'critical' : 'error';
  rule.notify = ['oncall'];
  const file = {
    destinations: { oncall: { type: 'webhook', url: 'https://hooks.example.com/sluice', secret_env: 'ONCALL_SECRET' } },
    rules: [rule],
  };
  return { text: JSON.stringify(file, null, 2), left };
}

function showAlert() {
  const cond = document.querySelector('input[name=cond]:checked').value;
  const r = ruleFor(state.q, state.source, cond);
  $('alert-snippet').textContent = r.text;
  const w = $('alert-warn');
  w.hidden = !r.left.length;
  w.textContent = r.left.length ? 'not expressible as a rule pattern, left out: ' + r.left.join(' ') : '';
  $('alertbox').hidden = false;
}

// ------------------------------------------------------------------ sign-in

function showSignin() {
  stopTail(false);
  $('view').hidden = true; $('search').hidden = true; $('signin').hidden = false;
  $('token').focus();
}

async function signin(ev) {
  ev.preventDefault();
  const tok = $('token').value.trim();
  $('token').value = '';
  const r = await fetch('/api/v1/session', {
    method: 'POST', credentials: 'same-origin',
    headers: { Authorization: 'Bearer ' + tok, 'X-Sluice-Request': '1' },
  });
  if (r.status !== 204) {
    const e = $('signin-err'); e.hidden = false;
    e.textContent = r.status === 401 ? 'That is not a read token of this server.' : 'Sign-in failed (' + r.status + ').';
    return;
  }
  $('signin-err').hidden = true;
  start();
}

async function signout() {
  await fetch('/api/v1/session/signout', { method: 'POST', credentials: 'same-origin', headers: { 'X-Sluice-Request': '1' } });
  $('rows').textContent = '';
  showSignin();
}

// ------------------------------------------------------------------ start

async function start() {
  // the search and the source list at once: a 401 on either shows the sign-in form
  state.wantLive = readURL();
  const search = runSearch(false);
  let s;
  try { s = await api('/api/v1/sources'); } catch (err) { if (err.message !== 'signed out') $('stat').textContent = err.message; return; }
  const sel = $('source');
  while (sel.options.length > 1) sel.remove(1);
  for (const src of s.sources) { const o = el('option', null, src.name); o.value = src.name; sel.appendChild(o); }
  sel.value = state.source;
  $('signin').hidden = true; $('view').hidden = false; $('search').hidden = false;
  toBottom();
  await search;
}

function init() {
  $('signin-form').addEventListener('submit', signin);
  $('search').addEventListener('submit', (e) => {
    e.preventDefault();
    state.q = $('q').value; state.since = $('since').value.trim(); state.until = $('until').value.trim();
    state.source = $('source').value;
    const live = state.live;
    runSearch(true).then(() => { if (live) startTail(); });
  });
  $('source').addEventListener('change', () => $('search').requestSubmit());
  $('live').addEventListener('click', toggleTail);
  $('alert').addEventListener('click', showAlert);
  for (const r of document.querySelectorAll('input[name=cond]')) r.addEventListener('change', showAlert);
  $('signout').addEventListener('click', signout);
  $('ctx-close').addEventListener('click', closePanels);
  $('alert-close').addEventListener('click', closePanels);
  $('lines').addEventListener('scroll', () => { if ($('lines').scrollTop < 150) loadOlder(); });
  window.addEventListener('popstate', () => { state.wantLive = readURL(); runSearch(false); });
  document.addEventListener('keydown', (e) => {
    const typing = e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement || e.target instanceof HTMLTextAreaElement;
    if (e.key === 'Escape') { closePanels(); if (typing) e.target.blur(); return; }
    if (typing || e.ctrlKey || e.metaKey || e.altKey || $('view').hidden) return;
    if (e.key === '/') { e.preventDefault(); $('q').focus(); $('q').select(); }
    else if (e.key === 'f') { e.preventDefault(); toggleTail(); }
  });
  requestAnimationFrame(() => performance.mark('sluice-first-paint'));
  start();
}

init();
