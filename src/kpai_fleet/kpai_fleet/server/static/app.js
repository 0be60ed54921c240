// KPAI fleet dashboard: live robot poses and health over Server-Sent Events.
'use strict';
const SVGNS = 'http://www.w3.org/2000/svg';
const $ = (id) => document.getElementById(id);
let bounds = [-5, -5, 25, 15];

function el(tag, attrs, parent) {
  const e = document.createElementNS(SVGNS, tag);
  for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
  if (parent) parent.appendChild(e);
  return e;
}

function esc(s) {
  return String(s ?? '').replace(/[&<>"']/g, (c) => '&#' + c.charCodeAt(0) + ';');
}

function setView(b) {
  bounds = b;
  const [x0, y0, x1, y1] = b;
  // the world group flips y, so the visible y range is [-y1, -y0]
  $('map').setAttribute('viewBox', `${x0} ${-y1} ${x1 - x0} ${y1 - y0}`);
  const grid = $('grid');
  grid.replaceChildren();
  for (let x = Math.ceil(x0); x <= x1; x += 1) el('line', {x1: x, y1: y0, x2: x, y2: y1, class: 'gridline'}, grid);
  for (let y = Math.ceil(y0); y <= y1; y += 1) el('line', {x1: x0, y1: y, x2: x1, y2: y, class: 'gridline'}, grid);
}

function parsePgm(buf) {
  const bytes = new Uint8Array(buf);
  let pos = 0;
  const tokens = [];
  while (tokens.length < 4) {
    while (pos < bytes.length && /\s/.test(String.fromCharCode(bytes[pos]))) pos++;
    if (bytes[pos] === 35) { while (bytes[pos] !== 10) pos++; continue; }  // comment
    let t = '';
    while (pos < bytes.length && !/\s/.test(String.fromCharCode(bytes[pos]))) t += String.fromCharCode(bytes[pos++]);
    tokens.push(t);
  }
  pos++;
  const [magic, w, h, max] = [tokens[0], +tokens[1], +tokens[2], +tokens[3]];
  if (magic !== 'P5' || max > 255) throw new Error('only binary 8-bit PGM maps are supported');
  return {w, h, data: bytes.subarray(pos, pos + w * h)};
}

async function loadMap() {
  const meta = await (await fetch('/api/map')).json();
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
  setView(b);
  for (const [name, p] of Object.entries(meta.stations || {})) {
    el('rect', {x: p.x - 0.4, y: p.y - 0.4, width: 0.8, height: 0.8, class: 'station'}, $('stations'));
    const t = el('text', {x: p.x - 0.4, y: -(p.y + 0.5), class: 'station-label', transform: 'scale(1,-1)'}, $('stations'));
    t.textContent = name;
  }
}

function robotGlyph(id) {
  let g = document.querySelector(`g.robot[data-robot="${CSS.escape(id)}"]`);
  if (g) return g;
  g = el('g', {class: 'robot', 'data-robot': id}, $('robots'));
  const body = el('g', {class: 'heading'}, g);
  el('path', {d: 'M 0.45 0 L -0.3 0.3 L -0.3 -0.3 Z', class: 'robot-body'}, body);
  const label = el('text', {x: -0.3, y: -0.45, class: 'robot-label', transform: 'scale(1,-1)'}, g);
  label.textContent = id;
  return g;
}

function pose(r) {
  // prefer the faster visualization pose when it is newer than the stored state
  if (r.live && (r.received === undefined || r.live.received >= r.received)) return r.live;
  return r;
}

function health(r) {
  const p = r.perception || {};
  const s = r.safety || {};
  const perc = p.backend ? `${esc(p.backend)} ${esc(p.device)} ${esc(p.fps)} fps` +
    (p.fallback === 'True' ? ' <span class="warn">fallback</span>' : '') +
    (p.stale === 'True' ? ' <span class="err">stale</span>' : '') : '–';
  const cls = s.state === 'CLEAR' ? 'ok' : s.state === 'WARNING' ? 'warn' : 'err';
  const safe = s.state ? `<span class="${cls}">${esc(s.state)}</span> ≤${esc(s.speedLimit)} m/s` : '–';
  return [perc, safe];
}

function render(robots) {
  const rows = [];
  const seen = new Set();
  let busy = 0;
  for (const r of robots) {
    seen.add(r.robot_id);
    const p = pose(r);
    const g = robotGlyph(r.robot_id);
    if (p.x !== null && p.x !== undefined) {
      const deg = (p.theta || 0) * 180 / Math.PI;
      g.setAttribute('transform', `translate(${p.x.toFixed(3)},${p.y.toFixed(3)})`);
      g.firstChild.setAttribute('transform', `rotate(${deg.toFixed(1)})`);
      g.dataset.x = p.x.toFixed(3); g.dataset.y = p.y.toFixed(3); g.dataset.theta = (p.theta || 0).toFixed(3);
    }
    const errs = r.errors || [];
    g.classList.toggle('busy', !r.idle);
    g.classList.toggle('fault', errs.some((e) => e.level === 'FATAL') || r.connection === 'CONNECTIONBROKEN');
    if (!r.idle) busy++;
    const state = r.connection && r.connection !== 'ONLINE' ? `<span class="err">${esc(r.connection)}</span>`
      : r.paused ? 'paused' : r.driving ? 'driving' : r.idle ? 'idle' : 'working';
    const bat = r.battery ?? 0;
    const [perc, safe] = health(r);
    const running = (r.actions || []).filter((a) => a.status === 'RUNNING').map((a) => esc(a.type)).join(', ');
    rows.push(`<tr data-robot="${esc(r.robot_id)}"><td>${esc(r.robot_id)}</td><td>${state}</td>` +
      `<td><span class="bar ${bat < 30 ? 'low' : ''}"><span style="width:${bat}%"></span></span> ${bat.toFixed(0)}%</td>` +
      `<td>${esc(r.order_id || '–')}${r.nodes_remaining && r.nodes_remaining.length ? ' → ' + esc(r.nodes_remaining.join(', ')) : ''}` +
      `${running ? '<br>' + running : ''}</td><td>${perc}</td><td>${safe}</td>` +
      `<td>${errs.map((e) => `<span class="${e.level === 'FATAL' ? 'err' : 'warn'}">${esc(e.type)}</span>`).join('<br>') || '–'}</td></tr>`);
  }
  for (const g of document.querySelectorAll('g.robot')) if (!seen.has(g.dataset.robot)) g.remove();
  document.querySelector('#fleet tbody').innerHTML = rows.join('');
  $('summary').textContent = `${robots.length} robots, ${busy} busy`;
}

async function refreshOrders() {
  try {
    const orders = await (await fetch('/api/orders?limit=8')).json();
    $('orders').innerHTML = orders.map((o) => `<li>${esc(o.order_id)} → ${esc(o.robot_id)}: <b>${esc(o.status)}</b></li>`).join('');
  } catch (e) { /* next round */ }
}

function connect() {
  const es = new EventSource('/api/stream');
  es.addEventListener('robots', (ev) => {
    const data = JSON.parse(ev.data);
    const stored = data.store_available !== false;
    $('status').textContent = stored ? 'live' : 'live · store unavailable';
    $('status').className = stored ? 'status live' : 'status down';
    render(data.robots);
  });
  es.onerror = () => { $('status').textContent = 'reconnecting…'; $('status').className = 'status down'; };
}

loadMap().catch((e) => { setView(bounds); console.error(e); }).finally(connect);
refreshOrders();
setInterval(refreshOrders, 2000);
