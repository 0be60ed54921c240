// KPAI fleet dashboard: live robots (Server-Sent Events), map, robot panel, tasks, alarms.
// Plain JS, no build step; every visible string comes from static/i18n/<lang>.json.
'use strict';
const SVGNS = 'http://www.w3.org/2000/svg';
const $ = (id) => document.getElementById(id);
const OPEN_TASK = ['pending', 'dispatched', 'running', 'waiting'];

const S = {
  lang: 'en', msgs: {}, session: {role: 'viewer', can_write: false, csrf: ''},
  robots: [], selected: null, stations: {}, home: [-5, -5, 25, 15], vb: null,
  expanded: new Set(), tasks: [], alarms: [], streamState: 'status.connecting',
  objects: [], camera: {timer: null, url: '', robot: null, busy: false},
};
const OBJECT_MAX_AGE_S = 3;   // tracked objects older than this leave the map
const CAMERA_POLL_MS = 1000;  // the thumbnail rate; polling renews the robot's camera lease

// -- i18n ---------------------------------------------------------------------------------
function t(key, params) {
  let text = S.msgs[key];
  if (text === undefined) text = key;
  for (const [k, v] of Object.entries(params || {})) text = text.split(`{${k}}`).join(String(v));
  return text;
}
// plural forms by Intl.PluralRules: key.one, key.other... (Korean has only 'other')
function tn(key, n, params) {
  const form = `${key}.${new Intl.PluralRules(S.lang).select(n)}`;
  return t(form in S.msgs ? form : `${key}.other`, Object.assign({n: num(n)}, params));
}
const num = (v, digits = 0) => new Intl.NumberFormat(S.lang, {maximumFractionDigits: digits,
  minimumFractionDigits: digits}).format(v);
const pct = (v) => new Intl.NumberFormat(S.lang, {style: 'percent', maximumFractionDigits: 0})
  .format((v || 0) / 100);
const time = (s) => (s ? new Intl.DateTimeFormat(S.lang, {hour: '2-digit', minute: '2-digit',
  second: '2-digit'}).format(new Date(s * 1000)) : '–');
function duration(s) {
  const unit = s >= 3600 ? ['hour', s / 3600] : s >= 60 ? ['minute', s / 60] : ['second', s];
  return new Intl.NumberFormat(S.lang, {style: 'unit', unit: unit[0], unitDisplay: 'short',
    maximumFractionDigits: unit[0] === 'second' ? 0 : 1}).format(unit[1]);
}

function applyI18n() {
  document.documentElement.lang = S.lang;
  document.title = t('app.title');
  for (const e of document.querySelectorAll('[data-i18n]')) e.textContent = t(e.dataset.i18n);
  for (const e of document.querySelectorAll('[data-i18n-alt]')) e.alt = t(e.dataset.i18nAlt);
  for (const e of document.querySelectorAll('[data-i18n-title]')) {
    e.title = t(e.dataset.i18nTitle);
    e.setAttribute('aria-label', e.title);
  }
  $('lang').value = S.lang;
}

async function setLang(lang) {
  S.msgs = await api(`/static/i18n/${lang}.json`);
  S.lang = lang;
  applyI18n();
  renderAll();
}

// -- HTTP ---------------------------------------------------------------------------------
async function api(path, method = 'GET', body) {
  const headers = {};
  if (method !== 'GET') {
    if (S.session.csrf) headers[S.session.csrf_header] = S.session.csrf;
    if (body !== undefined) headers['Content-Type'] = 'application/json';
  }
  const res = await fetch(path, {method, headers, credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body)});
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const err = new Error(t('error.request', {status: res.status, detail: data.detail || res.statusText}));
    err.status = res.status;
    err.detail = data.detail || '';
    throw err;
  }
  return data;
}

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => '&#' + c.charCodeAt(0) + ';');
}

function say(id, text, ok) {
  $(id).textContent = text;
  $(id).className = 'msg ' + (ok ? 'ok' : 'err');
}

// -- map ----------------------------------------------------------------------------------
function el(tag, attrs, parent) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function setViewBox(vb) {
  S.vb = vb;
  $('map').setAttribute('viewBox', vb.join(' '));
}

function fitView() {
  const [x0, y0, x1, y1] = S.home;
  // the world group flips y, so the visible y range is [-y1, -y0]
  setViewBox([x0, -y1, x1 - x0, y1 - y0]);
}

function drawGrid() {
  const [x0, y0, x1, y1] = S.home;
  const grid = $('grid');
  grid.replaceChildren();
  for (let x = Math.ceil(x0); x <= x1; x += 1) el('line', {x1: x, y1: y0, x2: x, y2: y1, class: 'gridline'}, grid);
  for (let y = Math.ceil(y0); y <= y1; y += 1) el('line', {x1: x0, y1: y, x2: x1, y2: y, class: 'gridline'}, grid);
}

function zoom(factor, cx, cy) {
  const [x, y, w, h] = S.vb;
  const px = cx ?? x + w / 2, py = cy ?? y + h / 2;
  const nw = Math.min(Math.max(w * factor, 1), 400), k = nw / w;
  setViewBox([px - (px - x) * k, py - (py - y) * k, w * k, h * k]);
}

function svgPoint(ev) {
  const m = $('map').getScreenCTM();
  if (!m) return null;
  const p = new DOMPoint(ev.clientX, ev.clientY).matrixTransform(m.inverse());
  return [p.x, p.y];
}

function setupPanZoom() {
  const svg = $('map');
  let drag = null;
  svg.addEventListener('wheel', (ev) => {
    ev.preventDefault();
    const p = svgPoint(ev);
    if (p) zoom(ev.deltaY > 0 ? 1.15 : 1 / 1.15, p[0], p[1]);
  }, {passive: false});
  svg.addEventListener('pointerdown', (ev) => {
    const m = svg.getScreenCTM();
    if (!m) return;
    drag = {x: ev.clientX, y: ev.clientY, vb: S.vb.slice(), scale: 1 / m.a, moved: false};
  });
  window.addEventListener('pointermove', (ev) => {
    if (!drag) return;
    const dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (!drag.moved && Math.hypot(dx, dy) < 4) return;
    drag.moved = true;
    svg.classList.add('dragging');
    setViewBox([drag.vb[0] - dx * drag.scale, drag.vb[1] - dy * drag.scale, drag.vb[2], drag.vb[3]]);
  });
  window.addEventListener('pointerup', () => {
    if (drag && drag.moved) {
      // the click that follows a drag must not open a robot
      window.addEventListener('click', (e) => e.stopPropagation(), {capture: true, once: true});
    }
    drag = null;
    svg.classList.remove('dragging');
  });
  $('zoom-in').onclick = () => zoom(1 / 1.4);
  $('zoom-out').onclick = () => zoom(1.4);
  $('zoom-reset').onclick = fitView;
}

function parsePgm(buf) {
  const bytes = new Uint8Array(buf);
  let pos = 0;
  const tokens = [];
  while (tokens.length < 4) {
    while (pos < bytes.length && /\s/.test(String.fromCharCode(bytes[pos]))) pos++;
    if (bytes[pos] === 35) { while (bytes[pos] !== 10) pos++; continue; }  // comment
    let tok = '';
    while (pos < bytes.length && !/\s/.test(String.fromCharCode(bytes[pos]))) tok += String.fromCharCode(bytes[pos++]);
    tokens.push(tok);
  }
  pos++;
  const [magic, w, h, max] = [tokens[0], +tokens[1], +tokens[2], +tokens[3]];
  if (magic !== 'P5' || max > 255) throw new Error('only binary 8-bit PGM maps are supported');
  return {w, h, data: bytes.subarray(pos, pos + w * h)};
}

async function loadMap() {
  const meta = await api('/api/map');
  let b = meta.bounds;
  if (meta.has_image) {
    const pgm = parsePgm(await (await fetch('/api/map.pgm')).arrayBuffer());
    const canvas = document.createElement('canvas');
    canvas.width = pgm.w; canvas.height = pgm.h;
    const ctx = canvas.getContext('2d');
    const img = ctx.createImageData(pgm.w, pgm.h);
    for (let i = 0; i < pgm.w * pgm.h; i++) {
      let v = pgm.data[i];
      if (meta.negate) v = 255 - v;
      img.data.set([v * 0.35, v * 0.38, v * 0.42, 255], 4 * i);
    }
    ctx.putImageData(img, 0, 0);
    const [ox, oy] = meta.origin;
    const W = pgm.w * meta.resolution, H = pgm.h * meta.resolution;
    const g = el('g', {transform: `translate(${ox},${oy + H}) scale(1,-1)`}, $('mapimage'));
    el('image', {href: canvas.toDataURL(), x: 0, y: 0, width: W, height: H,
                 preserveAspectRatio: 'none'}, g);
    b = [ox, oy, ox + W, oy + H];
  }
  S.home = b;
  S.stations = meta.stations || {};
  drawGrid();
  fitView();
  for (const [name, p] of Object.entries(S.stations)) {
    el('rect', {x: p.x - 0.4, y: p.y - 0.4, width: 0.8, height: 0.8, class: 'station'}, $('stations'));
    const label = el('text', {x: p.x - 0.4, y: -(p.y + 0.5), class: 'station-label', transform: 'scale(1,-1)'}, $('stations'));
    label.textContent = name;
  }
  fillStationSelects();
}

function robotGlyph(id) {
  let g = document.querySelector(`g.robot[data-robot="${CSS.escape(id)}"]`);
  if (g) return g;
  g = el('g', {class: 'robot', 'data-robot': id}, $('robots'));
  const body = el('g', {class: 'heading'}, g);
  el('path', {d: 'M 0.45 0 L -0.3 0.3 L -0.3 -0.3 Z', class: 'robot-body'}, body);
  const label = el('text', {x: -0.3, y: -0.45, class: 'robot-label', transform: 'scale(1,-1)'}, g);
  label.textContent = id;
  g.addEventListener('click', () => openPanel(id));
  return g;
}

// the safety fields at standstill (from the factsheet), under the robot body, turning with it
function drawFields(g, fields) {
  const sig = JSON.stringify(fields);
  if (g.dataset.fields === sig) return;
  g.dataset.fields = sig;
  const head = g.querySelector('g.heading');
  for (const old of head.querySelectorAll('.field')) old.remove();
  const shapes = [['warningField', 'warning'], ['protectiveField', 'protective']]
    .filter(([name]) => Array.isArray(fields[name]))
    .map(([name, cls]) => {
      const p = document.createElementNS(SVGNS, 'polygon');
      p.setAttribute('points', fields[name].map((q) => q.join(',')).join(' '));
      p.setAttribute('class', `field ${cls}`);
      return p;
    });
  head.prepend(...shapes);
}

function pose(r) {
  // prefer the faster visualization pose when it is newer than the stored state
  if (r.live && (r.received === undefined || r.live.received >= r.received)) return r.live;
  return r;
}

function robotState(r) {
  if (r.connection && r.connection !== 'ONLINE') return r.connection;
  return r.paused ? 'paused' : r.driving ? 'driving' : r.idle ? 'idle' : 'working';
}

const fatal = (r) => (r.errors || []).some((e) => e.level === 'FATAL');

function drawRobots() {
  const seen = new Set();
  const paths = $('paths');
  paths.replaceChildren();
  for (const r of S.robots) {
    seen.add(r.robot_id);
    const p = pose(r);
    const g = robotGlyph(r.robot_id);
    const state = robotState(r);
    g.classList.toggle('busy', !r.idle);
    g.classList.toggle('paused', !!r.paused);
    g.classList.toggle('fault', fatal(r) || state === 'CONNECTIONBROKEN' || state === 'OFFLINE');
    g.classList.toggle('selected', S.selected === r.robot_id);
    g.classList.toggle('violated', !!r.field_violation);
    drawFields(g, (r.factsheet || {}).fields || {});
    if (p.x === null || p.x === undefined) continue;
    const deg = (p.theta || 0) * 180 / Math.PI;
    g.setAttribute('transform', `translate(${p.x.toFixed(3)},${p.y.toFixed(3)})`);
    g.firstChild.setAttribute('transform', `rotate(${deg.toFixed(1)})`);
    g.dataset.x = p.x.toFixed(3); g.dataset.y = p.y.toFixed(3); g.dataset.theta = (p.theta || 0).toFixed(3);
    const path = r.path || [];
    if (!path.length) continue;
    // the planned path: from the robot through the nodes ahead; the last one is the goal
    const released = [[p.x, p.y], ...path.filter((n) => n.released).map((n) => [n.x, n.y])];
    el('polyline', {points: released.map((q) => q.join(',')).join(' '), class: 'path',
      'data-robot': r.robot_id}, paths);
    const horizon = path.filter((n) => !n.released);
    if (horizon.length) {
      el('polyline', {points: [released[released.length - 1], ...horizon.map((n) => [n.x, n.y])]
        .map((q) => q.join(',')).join(' '), class: 'path unreleased'}, paths);
    }
    const goal = path[path.length - 1];
    el('circle', {cx: goal.x, cy: goal.y, r: 0.35, class: 'goal', 'data-robot': r.robot_id}, paths);
  }
  for (const g of document.querySelectorAll('g.robot')) if (!seen.has(g.dataset.robot)) g.remove();
}

// tracked people and objects: a dot with the class label; people stand out
function drawObjects() {
  const now = Date.now() / 1000;
  S.objects = S.objects.filter((o) => now - o.seen <= OBJECT_MAX_AGE_S);
  const g = $('objects');
  g.replaceChildren();
  for (const o of S.objects) {
    const person = o.classId === 'person';
    const dot = el('g', {class: `tracked ${person ? 'person' : 'object'}`, 'data-robot': o.robot_id,
      'data-class': o.classId, transform: `translate(${o.x.toFixed(2)},${o.y.toFixed(2)})`}, g);
    el('circle', {r: person ? 0.25 : 0.2}, dot);
    const label = el('text', {x: 0.3, y: 0.1, transform: 'scale(1,-1)', class: 'object-label'}, dot);
    const name = t('class.' + o.classId);
    label.textContent = name === 'class.' + o.classId ? o.classId : name;
  }
}

// -- robots -------------------------------------------------------------------------------
function stateLabel(state) {
  return t('robot.state.' + state);
}

function battery(r) {
  const b = r.battery ?? 0;
  return `<span class="bar ${b < 30 ? 'low' : ''}"><span style="width:${Math.max(0, Math.min(100, b))}%"></span></span> ${pct(b)}`;
}

function renderRobotList() {
  if (!S.robots.length) {
    $('robot-list').innerHTML = `<li class="empty">${esc(t('robots.none'))}</li>`;
    return;
  }
  $('robot-list').innerHTML = S.robots.map((r) => {
    const state = robotState(r);
    const errs = r.errors || [];
    const worst = errs.some((e) => e.level === 'FATAL') ? 'err' : 'warn';
    return `<li class="robot-card${S.selected === r.robot_id ? ' selected' : ''}" data-robot="${esc(r.robot_id)}">` +
      `<div class="row"><b class="grow">${esc(r.robot_id)}</b><span class="pill ${esc(state)}">${esc(stateLabel(state))}</span>` +
      `${battery(r)}</div><div class="row muted"><span>${esc(r.order_id || t('panel.noOrder'))}</span>` +
      (errs.length ? `<span class="${worst}">${esc(tn('robot.errors', errs.length))}</span>` : '') +
      '</div></li>';
  }).join('');
}

function renderSummary() {
  const busy = S.robots.filter((r) => !r.idle).length;
  $('summary').textContent = t('summary', {robots: num(S.robots.length), busy: num(busy)});
  $('status').textContent = t(S.streamState);
}

// -- robot panel --------------------------------------------------------------------------
// -- camera thumbnail: polled only while the panel is open (each poll renews the lease) ------
async function pollCamera() {
  const c = S.camera;
  if (!c.robot || c.busy || document.hidden) return;
  c.busy = true;
  const robot = c.robot;
  try {
    const res = await fetch(`/api/robots/${encodeURIComponent(robot)}/camera.jpg`, {cache: 'no-store'});
    if (robot !== c.robot) return;
    if (res.status === 200) {
      const url = URL.createObjectURL(await res.blob());
      const img = $('camera-img');
      img.onload = () => { if (c.url && c.url !== url) URL.revokeObjectURL(c.url); c.url = url; };
      img.src = url;
      img.hidden = false;
      $('camera-note').textContent = '';
    } else if (res.status === 204) {
      $('camera-note').textContent = t(c.url ? 'panel.cameraStale' : 'panel.cameraWaiting');
    } else if (res.status === 404) {  // another maker's vehicle: no camera to share
      $('camera-note').textContent = t('panel.noCamera');
      if (c.timer) clearInterval(c.timer);
      c.timer = null;
    }
  } catch (e) { /* next round */ } finally { c.busy = false; }
}

function startCamera(id) {
  stopCamera();
  S.camera.robot = id;
  $('camera-note').textContent = t('panel.cameraWaiting');
  pollCamera();
  S.camera.timer = setInterval(pollCamera, CAMERA_POLL_MS);
}

function stopCamera() {
  const c = S.camera;
  if (c.timer) clearInterval(c.timer);
  c.timer = null;
  c.robot = null;
  const img = $('camera-img');
  img.hidden = true;
  img.removeAttribute('src');
  if (c.url) URL.revokeObjectURL(c.url);
  c.url = '';
}

function openPanel(id) {
  if (S.selected !== id) startCamera(id);
  S.selected = id;
  $('panel').hidden = false;
  $('panel-msg').textContent = '';
  renderPanel();
  drawRobots();
  renderRobotList();
}

function closePanel() {
  stopCamera();
  S.selected = null;
  $('panel').hidden = true;
  drawRobots();
  renderRobotList();
}

function dl(rows) {
  return '<dl>' + rows.map(([k, v]) => `<dt>${esc(t(k))}</dt><dd>${v}</dd>`).join('') + '</dl>';
}

const flag = (v) => String(v) === 'True' || v === true;

function renderPanel() {
  if (!S.selected) return;
  const r = S.robots.find((x) => x.robot_id === S.selected);
  $('panel-title').textContent = S.selected;
  $('panel-actions').hidden = !S.session.can_write || !r;
  if (!r) { $('panel-body').innerHTML = ''; return; }
  const state = robotState(r);
  const p = pose(r);
  const body = [];
  body.push(dl([
    ['panel.state', `<span class="pill ${esc(state)}">${esc(stateLabel(state))}</span>`],
    ['panel.battery', battery(r) + (r.charging ? ` <span class="ok">${esc(t('panel.charging'))}</span>` : '')],
    ['panel.position', p.x === null || p.x === undefined ? '–'
      : `${num(p.x, 2)}, ${num(p.y, 2)} · ${num((p.theta || 0) * 180 / Math.PI, 0)}°`],
  ]));
  body.push(`<h3>${esc(t('panel.order'))}</h3>`);
  const nodes = r.nodes_remaining || [];
  body.push(dl([
    ['panel.order', esc(r.order_id || t('panel.noOrder'))],
    ['panel.lastNode', esc(r.last_node_id || '–')],
    ['panel.nodes', nodes.length ? `<ol class="nodes">${nodes.map((n) => `<li>${esc(n)}</li>`).join('')}</ol>` : '–'],
  ]));
  const actions = r.actions || [];
  body.push(`<h3>${esc(t('panel.actions'))}</h3>` + (actions.length
    ? `<ul class="actions">${actions.map((a) => `<li>${esc(a.type)} <span class="muted">${esc(a.id)}</span> <span class="pill">${esc(a.status)}</span></li>`).join('')}</ul>`
    : '<p class="muted">–</p>'));
  const errs = r.errors || [];
  body.push(`<h3>${esc(t('panel.errors'))}</h3>` + (errs.length
    ? `<ul class="errors">${errs.map((e) => `<li><span class="level ${esc(e.level)}" title="${esc(e.level)}">${esc(t('level.' + e.level))}</span><b>${esc(e.type)}</b> ${esc(e.description)}</li>`).join('')}</ul>`
    : `<p class="ok">${esc(t('panel.noErrors'))}</p>`));
  const pc = r.perception || {};
  const stale = `<span class="err">${esc(t('panel.stale'))}</span>`;
  body.push(`<h3>${esc(t('panel.perception'))}</h3>` + (pc.backend ? dl([
    ['panel.backend', esc(pc.backend) + (flag(pc.stale) ? ' ' + stale : '')],
    ['panel.device', esc(pc.device)],
    ['panel.fps', pc.fps ? esc(num(+pc.fps, 1)) : '–'],
    ['panel.latency', pc.latencyP99Ms ? esc(num(+pc.latencyP99Ms, 1)) + ' ms' : '–'],
    ['panel.fallback', flag(pc.fallback) ? `<span class="warn">${esc(t('panel.yes'))}</span>` : esc(t('panel.no'))],
  ]) : `<p class="muted">${esc(t('panel.none'))}</p>`));
  const sf = r.safety || {};
  const cls = sf.state === 'CLEAR' ? 'ok' : sf.state === 'WARNING' ? 'warn' : 'err';
  body.push(`<h3>${esc(t('panel.safety'))}</h3>` + (sf.state ? dl([
    ['panel.state', `<span class="${cls}">${esc(sf.state)}</span>` + (flag(sf.stale) ? ' ' + stale : '') +
      (sf.description ? ` <span class="muted">${esc(sf.description)}</span>` : '')],
    ['panel.speedLimit', sf.speedLimit ? esc(num(+sf.speedLimit, 2)) + ' m/s' : '–'],
    ['panel.fieldViolation', r.field_violation ? `<span class="err">${esc(t('panel.yes'))}</span>` : esc(t('panel.no'))],
  ]) : `<p class="muted">${esc(t('panel.none'))}</p>`));
  $('panel-body').innerHTML = body.join('');
  const btn = (a) => $('panel-actions').querySelector(`[data-action="${a}"]`);
  btn('pause').disabled = !!r.paused;
  btn('resume').disabled = !r.paused;
  btn('cancel').disabled = !r.order_id || (r.idle && !nodes.length);
}

async function robotAction(kind) {
  const id = S.selected;
  try {
    const out = await api(`/api/robots/${encodeURIComponent(id)}/actions/${kind}`, 'POST');
    say('panel-msg', t('panel.sent', {action: out.action}), true);
    refreshTasks();
  } catch (e) { say('panel-msg', e.message, false); }
}

// -- tasks --------------------------------------------------------------------------------
function fillStationSelects() {
  const names = Object.keys(S.stations).sort();
  for (const sel of ['pickup', 'dropoff']) {
    const s = $('task-form').elements[sel];
    const keep = s.value;
    s.innerHTML = names.map((n) => `<option value="${esc(n)}">${esc(n)}</option>`).join('');
    if (names.includes(keep)) s.value = keep;
  }
  const d = $('task-form').elements.dropoff;
  if (!d.dataset.touched && names.length > 1) d.value = names[1];
}

function fillRobotSelect() {
  const s = $('task-form').elements.robot;
  const keep = s.value;
  const ids = S.robots.map((r) => r.robot_id);
  const html = `<option value="">${esc(t('form.anyRobot'))}</option>` +
    ids.map((id) => `<option value="${esc(id)}">${esc(id)}</option>`).join('');
  if (s.dataset.html !== html) { s.innerHTML = html; s.dataset.html = html; s.value = ids.includes(keep) ? keep : ''; }
}

async function submitTask(ev) {
  ev.preventDefault();
  const f = $('task-form').elements;
  const body = {pickup: f.pickup.value, dropoff: f.dropoff.value, priority: +f.priority.value};
  if (f.robot.value) body.robot = f.robot.value;
  $('task-submit').disabled = true;
  say('task-msg', t('form.sending'), true);
  try {
    const out = await api('/api/tasks', 'POST', body);
    say('task-msg', t('form.sent', {task: out.task_id, robot: out.robot_id}), true);
  } catch (e) {
    say('task-msg', e.status === 409 ? t('form.failed', {reason: e.detail}) : e.message, false);
  } finally {
    $('task-submit').disabled = false;
    refreshTasks();
  }
}

async function cancelTask(id) {
  try {
    await api(`/api/tasks/${encodeURIComponent(id)}/cancel`, 'POST');
    say('task-msg', t('tasks.cancelled', {task: id}), true);
  } catch (e) { say('task-msg', e.message, false); }
  refreshTasks();
}

function taskBody(task) {
  try { return JSON.parse(task.body || '{}'); } catch (e) { return {}; }
}

function renderTasks() {
  if (!S.tasks.length) {
    $('tasks').innerHTML = `<li class="empty">${esc(t('tasks.none'))}</li>`;
    return;
  }
  $('tasks').innerHTML = S.tasks.map((task) => {
    const b = taskBody(task);
    const open = OPEN_TASK.includes(task.status);
    const took = !open && task.updated && task.created ? ' · ' + t('tasks.duration', {duration: duration(task.updated - task.created)}) : '';
    const attempts = task.orders ? (task.orders.length
      ? `<ol class="attempts">${task.orders.slice().reverse().map((o) => `<li><b>${esc(o.order_id)}</b> → ${esc(o.robot_id)} <span class="pill ${esc(o.status)}">${esc(t('task.status.' + o.status))}</span>` +
        `${o.reason ? `<div class="reason">${esc(o.reason)}</div>` : ''}</li>`).join('')}</ol>`
      : `<p class="attempts muted">${esc(t('tasks.noAttempts'))}</p>`) : '';
    return `<li class="task" data-task="${esc(task.task_id)}" data-status="${esc(task.status)}">` +
      `<div class="row"><b class="grow">${esc(b.pickup?.name ?? '?')} → ${esc(b.dropoff?.name ?? '?')}</b>` +
      `<span class="pill ${esc(task.status)}">${esc(t('task.status.' + task.status))}</span></div>` +
      `<div class="row muted"><span>${esc(task.task_id)}</span><span>${esc(t('tasks.robot'))}: ${esc(task.robot_id || t('tasks.unassigned'))}</span>` +
      `<span>${esc(t('tasks.priority', {p: num(b.priority ?? 5)}))}</span></div>` +
      `<div class="row muted"><span>${esc(t('tasks.created', {time: time(task.created)}))} · ${esc(t('tasks.updated', {time: time(task.updated)}))}${esc(took)}</span>` +
      `<span class="grow"></span><button class="link" data-expand="${esc(task.task_id)}">${esc(t('tasks.attempts'))}</button>` +
      (open && S.session.can_write ? `<button class="danger" data-cancel="${esc(task.task_id)}">${esc(t('tasks.cancel'))}</button>` : '') +
      `</div>${task.reason ? `<div class="reason">${esc(task.reason)}</div>` : ''}${attempts}</li>`;
  }).join('');
}

async function refreshTasks() {
  try {
    const tasks = await api('/api/tasks?limit=25');
    // the order attempts (and their rejection reasons) of the expanded tasks
    await Promise.all(tasks.filter((x) => S.expanded.has(x.task_id)).map(async (x) => {
      x.orders = (await api(`/api/tasks/${encodeURIComponent(x.task_id)}`)).orders;
    }));
    S.tasks = tasks;
    renderTasks();
  } catch (e) { /* next round */ }
}

// -- alarms -------------------------------------------------------------------------------
function renderAlarms() {
  const n = S.alarms.length;
  $('alarm-badge').hidden = !n;
  $('alarm-badge').textContent = `${t('header.alarms')} ${num(n)}`;
  if (!n) {
    $('alarms').innerHTML = `<li class="empty">${esc(t('alarms.none'))}</li>`;
    return;
  }
  $('alarms').innerHTML = S.alarms.map((a) => `<li class="alarm ${a.active ? 'active' : 'cleared'}" data-alarm="${a.id}" data-kind="${esc(a.kind)}">` +
    `<div class="row"><b class="grow">${esc(t('alarm.' + a.kind))}</b><span>${esc(a.robot_id || t('alarm.fleet'))}</span>` +
    `<span class="muted">${esc(time(a.raised))}</span></div><div class="row"><span class="muted grow">` +
    `${a.kind === 'fatal_error' ? esc(a.detail) + ' · ' : ''}` +
    `${esc(a.active ? t('alarms.active') : t('alarms.cleared', {time: time(a.cleared)}))}</span>` +
    (S.session.can_write ? `<button data-ack="${a.id}">${esc(t('alarms.ack'))}</button>` : '') + '</div></li>').join('');
}

async function refreshAlarms() {
  try {
    S.alarms = await api('/api/alarms');
    renderAlarms();
  } catch (e) { /* next round */ }
}

async function ackAlarm(id) {
  try { await api(`/api/alarms/${id}/ack`, 'POST'); } catch (e) { say('task-msg', e.message, false); }
  refreshAlarms();
}

// -- KPIs ---------------------------------------------------------------------------------
function renderKpis() {
  const k = S.kpis;
  if (!k) return;
  const tile = (key, value) => `<div class="tile"><b>${value}</b><span>${esc(t(key))}</span></div>`;
  const secs = (v) => (v === null || v === undefined ? '–' : esc(duration(v)));
  const max = Math.max(1, ...k.completed_per_bucket);
  const n = k.completed_per_bucket.length;
  // completed tasks per bucket, oldest left; the bar height is relative to the busiest bucket
  const bars = k.completed_per_bucket.map((c, i) => `<rect x="${i * 10 + 1}" y="${30 - 28 * c / max}" width="8" ` +
    `height="${28 * c / max}" class="kbar"><title>${esc(time(k.since + i * k.bucket_s))}: ${esc(num(c))}</title></rect>`).join('');
  const util = Object.entries(k.utilisation).map(([rid, u]) => `<li><span class="grow">${esc(rid)}</span>` +
    `<span class="bar"><span style="width:${(u * 100).toFixed(1)}%"></span></span> ${esc(pct(u * 100))}</li>`).join('');
  const stops = k.safety_stops_per_bucket || [];
  const smax = Math.max(1, ...stops);
  const stopBars = stops.map((c, i) => `<rect x="${i * 10 + 1}" y="${30 - 28 * c / smax}" width="8" ` +
    `height="${28 * c / smax}" class="kbar stop"><title>${esc(time(k.since + i * k.bucket_s))}: ${esc(num(c))}</title></rect>`).join('');
  // latency: a line through the buckets that have samples, dots on each
  const lat = k.latency_ms_per_bucket || [];
  const lmax = Math.max(1, ...lat.filter((v) => v !== null));
  const pts = lat.map((v, i) => (v === null ? null : [i * 10 + 5, 30 - 28 * v / lmax])).filter((q) => q);
  const latLine = (pts.length > 1 ? `<polyline class="kline" points="${pts.map((q) => q.map((c) => c.toFixed(1)).join(',')).join(' ')}"/>` : '') +
    lat.map((v, i) => (v === null ? '' : `<circle cx="${i * 10 + 5}" cy="${(30 - 28 * v / lmax).toFixed(1)}" r="1.2" class="kdot">` +
      `<title>${esc(time(k.since + i * k.bucket_s))}: ${esc(num(v, 1))} ms</title></circle>`)).join('');
  const chart = (label, inner) => `<p class="muted">${esc(t(label))}</p><svg class="kchart" viewBox="0 0 ${n * 10} 31" ` +
    `preserveAspectRatio="none" role="img" aria-label="${esc(t(label))}"><line x1="0" y1="30.5" x2="${n * 10}" y2="30.5" class="kaxis"/>${inner}</svg>`;
  const ms = (v) => (v === null || v === undefined ? '–' : `${esc(num(v, 0))} ms`);
  $('kpis').innerHTML = '<div class="tiles">' +
    tile('kpi.tasksPerHour', esc(num(k.tasks_per_hour, 1))) + tile('kpi.meanTime', secs(k.task_time_mean_s)) +
    tile('kpi.p95Time', secs(k.task_time_p95_s)) +
    tile('kpi.done', `${esc(num(k.tasks_completed))} / <span class="err">${esc(num(k.tasks_failed))}</span>`) +
    tile('kpi.stopsPerHour', esc(num(k.safety_stops_per_hour ?? 0, 1))) +
    tile('kpi.latencyP95', ms(k.latency_ms_p95)) + '</div>' +
    chart('kpi.chart', bars) + chart('kpi.stopsChart', stopBars) +
    chart('kpi.latencyChart', pts.length ? latLine : '') +
    `<p class="muted">${esc(t('kpi.utilisation'))}</p><ul class="util">${util}</ul>`;
}

async function refreshKpis() {
  try {
    S.kpis = await api(`/api/kpis?window_s=${$('kpi-window').value}`);
    renderKpis();
  } catch (e) { /* next round */ }
}

// -- wiring -------------------------------------------------------------------------------
function renderAll() {
  renderSummary();
  drawRobots();
  drawObjects();
  renderRobotList();
  fillRobotSelect();
  renderPanel();
  renderTasks();
  renderAlarms();
  renderKpis();
  const who = S.session.via === 'public' ? t('role.public')
    : t('role.' + S.session.role, {user: S.session.user});
  $('who').textContent = who;
}

function connect() {
  const es = new EventSource('/api/stream');
  es.addEventListener('robots', (ev) => {
    const data = JSON.parse(ev.data);
    const stored = data.store_available !== false;
    S.streamState = stored ? 'status.live' : 'status.storeDown';
    $('status').className = stored ? 'status live' : 'status down';
    S.robots = data.robots;
    // objects carry their age at the server; `seen` is when they were fresh in local time
    const now = Date.now() / 1000;
    S.objects = (data.objects || []).map((o) => Object.assign(o, {seen: now - (o.age_s || 0)}));
    renderSummary();
    drawRobots();
    drawObjects();
    renderRobotList();
    fillRobotSelect();
    renderPanel();
  });
  es.onerror = () => {
    S.streamState = 'status.reconnecting';
    $('status').className = 'status down';
    renderSummary();
  };
}

async function main() {
  S.session = await api('/api/session');
  const stored = localStorage.getItem('kpai.lang');
  S.lang = S.session.languages.includes(stored) ? stored : S.session.lang;
  S.msgs = await api(`/static/i18n/${S.lang}.json`);
  applyI18n();
  $('task-form').hidden = !S.session.can_write;
  $('viewer-note').hidden = S.session.can_write;
  $('lang').onchange = (ev) => { localStorage.setItem('kpai.lang', ev.target.value); setLang(ev.target.value); };
  $('task-form').addEventListener('submit', submitTask);
  $('task-form').elements.dropoff.addEventListener('change', (ev) => { ev.target.dataset.touched = '1'; });
  $('tasks').addEventListener('click', (ev) => {
    const c = ev.target.closest('[data-cancel]');
    if (c) { cancelTask(c.dataset.cancel); return; }
    const x = ev.target.closest('[data-expand]');
    if (x) {
      const id = x.dataset.expand;
      if (S.expanded.has(id)) S.expanded.delete(id); else S.expanded.add(id);
      refreshTasks();
    }
  });
  $('alarms').addEventListener('click', (ev) => {
    const a = ev.target.closest('[data-ack]');
    if (a) ackAlarm(a.dataset.ack);
  });
  $('robot-list').addEventListener('click', (ev) => {
    const c = ev.target.closest('[data-robot]');
    if (c) openPanel(c.dataset.robot);
  });
  $('panel-close').onclick = closePanel;
  for (const b of $('panel-actions').querySelectorAll('[data-action]')) b.onclick = () => robotAction(b.dataset.action);
  document.addEventListener('keydown', (ev) => { if (ev.key === 'Escape') closePanel(); });
  setupPanZoom();
  renderAll();
  try { await loadMap(); } catch (e) { fitView(); console.error(e); }
  connect();
  refreshTasks();
  refreshAlarms();
  setInterval(refreshTasks, 2000);
  setInterval(refreshAlarms, 2000);
  setInterval(drawObjects, 1000);  // ages objects out when no new message comes
  refreshKpis();
  setInterval(refreshKpis, 10000);
  $('kpi-window').onchange = refreshKpis;
}

main().catch((e) => { $('status').textContent = e.message; $('status').className = 'status down'; });
