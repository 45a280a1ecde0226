// Bazaar's dashboard: one page over `bazaar serve`'s JSON API. Everything the page shows
// is in its URL (folder, view, filters, customer, query), so a view can be shared.
'use strict';

const $ = (id) => document.getElementById(id);
const VIEWS = [
  ['overview', 'Overview'], ['daily', 'Daily'], ['heatmap', 'Hour × weekday'], ['mix', 'Category mix'],
  ['baskets', 'Baskets'], ['customers', 'Loyalty & churn'], ['customer', 'Customer'], ['sql', 'SQL'], ['compare', 'Compare'],
];
const EXPERIMENT_VIEWS = [['experiment', 'Experiment'], ['arms', 'Arms side by side']];
const FILTERS = ['from', 'to', 'persona', 'category', 'event', 'store'];
const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const state = { folders: [], live: null, meta: {}, charts: [], source: null, liveDays: [] };

// ---- URL and API -------------------------------------------------------------------------

const params = () => new URLSearchParams(location.search);

function go(changes, push = true) {
  const p = params();
  for (const [k, v] of Object.entries(changes)) {
    if (v === null || v === undefined || v === '' || (Array.isArray(v) && v.length === 0)) p.delete(k);
    else p.set(k, Array.isArray(v) ? v.join(',') : v);
  }
  const url = `${location.pathname}?${p}`;
  if (push) history.pushState(null, '', url); else history.replaceState(null, '', url);
  route();
}

function filterQuery() {
  const p = params();
  const q = new URLSearchParams();
  for (const k of FILTERS) if (p.get(k)) q.set(k, p.get(k));
  return q.toString();
}

async function api(path, options) {
  const r = await fetch(path, options);
  let body;
  try { body = await r.json(); } catch { body = { error: `${r.status} ${r.statusText}` }; }
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

// ---- helpers -----------------------------------------------------------------------------

const num = (v) => (v === null || v === undefined ? 0 : Number(v));
const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));
function el(tag, attrs = {}, html = '') {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  e.innerHTML = html;
  return e;
}
function money(v) {
  const m = state.current?.currency;
  const symbol = m && m.code !== 'INR' ? m.symbol : '₹';
  const x = Math.abs(num(v));
  const sign = num(v) < 0 ? '−' : '';
  if (x >= 1e7 && (!m || m.code === 'INR')) return `${sign}${symbol}${(x / 1e7).toFixed(2)} cr`;
  if (x >= 1e5 && (!m || m.code === 'INR')) return `${sign}${symbol}${(x / 1e5).toFixed(2)} lakh`;
  return `${sign}${symbol}${x.toLocaleString('en-IN', { maximumFractionDigits: 2 })}`;
}
const count = (v) => num(v).toLocaleString('en-IN');

function dispose() {
  for (const c of state.charts) c.dispose();
  state.charts = [];
  if (state.source) { state.source.close(); state.source = null; }
}

function chart(parent, option, cls = 'chart') {
  const div = el('div', { class: cls });
  parent.appendChild(div);
  const c = echarts.init(div);
  c.setOption({ animation: false, grid: { left: 60, right: 20, top: 40, bottom: 70, containLabel: true }, ...option });
  state.charts.push(c);
  return c;
}

function table(rows, columns) {
  const cols = columns || (rows[0] ? Object.keys(rows[0]) : []);
  const head = cols.map((c) => `<th>${esc(c)}</th>`).join('');
  const body = rows.map((r) => `<tr>${cols.map((c) => {
    const v = r[c];
    const isNum = typeof v === 'number' || (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v));
    return `<td class="${isNum ? 'num' : ''}">${esc(v)}</td>`;
  }).join('')}</tr>`).join('');
  const wrap = el('div', { class: 'scroll' });
  wrap.innerHTML = `<table><thead><tr>${head}</tr></thead><tbody>${body}</tbody></table>`;
  return wrap;
}

function sqlNote(parent, answers) {
  const d = el('details', { class: 'sql noprint' });
  d.innerHTML = `<summary>The queries behind this view</summary>${Object.values(answers).map((a) => `<pre>${esc(a.sql)}\n-- ${a.rows.length} rows in ${a.ms.toFixed(0)} ms</pre>`).join('')}`;
  parent.appendChild(d);
}

function groupBy(rows, key) {
  const m = new Map();
  for (const r of rows) {
    const k = r[key];
    if (!m.has(k)) m.set(k, []);
    m.get(k).push(r);
  }
  return m;
}

/// The days shown under the date and event filters, for the charts' x axis and bands.
function shownDays(meta) {
  const p = params();
  const events = (p.get('event') || '').split(',').filter(Boolean);
  return meta.days.filter((d) => (!p.get('from') || d.date >= p.get('from')) && (!p.get('to') || d.date <= p.get('to'))
    && (events.length === 0 || d.events.some((e) => events.includes(e))));
}

/// Festival days (orange) and weekends (grey) as full-height bars behind a chart's series,
/// on hidden axes of their own (a markArea cannot span a single category, and bars on the
/// chart's own axes would share its bars' slots), zoomed with the chart, out of the legend
/// and the tooltip.
function banded(option, days) {
  const color = (d) => (d.festival ? 'rgba(255,170,0,0.22)' : 'rgba(120,130,150,0.14)');
  const y = Array.isArray(option.yAxis) ? option.yAxis : [option.yAxis];
  const band = {
    name: 'bands', type: 'bar', xAxisIndex: 1, yAxisIndex: y.length, silent: true, barWidth: '100%', z: 0, tooltip: { show: false },
    data: days.map((d) => (d.festival || d.weekend ? { value: 1, itemStyle: { color: color(d) }, name: d.events.join(' + ') } : null)),
  };
  return {
    ...option,
    legend: { ...option.legend, data: option.series.map((s) => s.name) },
    xAxis: [option.xAxis, { type: 'category', data: option.xAxis.data, show: false }],
    yAxis: [...y, { type: 'value', min: 0, max: 1, show: false }],
    dataZoom: option.dataZoom?.map((z) => ({ ...z, xAxisIndex: [0, 1] })),
    series: [...option.series, band],
  };
}

function label(meta, persona) {
  const i = meta.personas.indexOf(persona);
  return i >= 0 ? meta.labels[i] : persona;
}

function daySeries(meta, rows, days, field, kind = 'line') {
  const by = groupBy(rows, 'persona');
  return [...by.entries()].map(([persona, rs]) => {
    const at = new Map(rs.map((r) => [r.date, num(r[field])]));
    return {
      name: label(meta, persona), type: kind, stack: kind === 'bar' ? 'all' : undefined, showSymbol: false,
      data: days.map((d) => at.get(d.date) ?? 0),
    };
  });
}

const zoom = [{ type: 'inside' }, { type: 'slider', height: 18, bottom: 10 }];

// ---- folders, filters, tabs ------------------------------------------------------------

async function loadFolders() {
  const r = await api('/api/folders');
  state.folders = r.folders;
  state.live = r.live;
  const sel = $('folder');
  sel.innerHTML = state.folders.map((f) => `<option value="${esc(f.id)}">${esc(f.id)}${f.ready ? '' : ' (not ready)'}</option>`).join('');
}

function fillSelect(id, values, labels, chosen) {
  const sel = $(id);
  sel.innerHTML = values.map((v, i) => `<option value="${esc(v)}" ${chosen.includes(String(v)) ? 'selected' : ''}>${esc(labels ? labels[i] : v)}</option>`).join('');
}

function showFilters(meta) {
  const p = params();
  const list = (k) => (p.get(k) || '').split(',').filter(Boolean);
  const first = meta.days[0]?.date || '';
  const last = meta.days[meta.days.length - 1]?.date || '';
  for (const id of ['from', 'to']) { $(id).min = first; $(id).max = last; }
  $('from').value = p.get('from') || '';
  $('to').value = p.get('to') || '';
  fillSelect('persona', meta.personas, meta.labels, list('persona'));
  $('category-box').hidden = meta.categories.length === 0;
  fillSelect('category', meta.categories, null, list('category'));
  fillSelect('event', meta.events, null, list('event'));
  $('store-box').hidden = meta.stores.length === 0;
  fillSelect('store', meta.stores, meta.stores.map((s) => `Store ${s}`), list('store'));
}

function tabs(folder, meta) {
  const view = viewOf(meta);
  const items = meta?.experiment ? [...EXPERIMENT_VIEWS] : [...VIEWS];
  for (const t of meta?.tables || []) if (t.plugin) items.splice(6, 0, [`table:${t.name}`, t.name.replace(/_/g, ' ')]);
  if (state.live && state.live.folder === folder) items.push(['live', 'Live']);
  $('tabs').innerHTML = items.map(([v, name]) => `<a href="#" data-view="${esc(v)}" class="${v === view ? 'on' : ''}">${esc(name)}</a>`).join('');
}

/// The view asked for, or the folder's first: an experiment's folder has only its own.
function viewOf(meta) {
  const asked = params().get('view');
  const views = (meta?.experiment ? EXPERIMENT_VIEWS : VIEWS).map(([v]) => v);
  if (asked && (views.includes(asked) || asked === 'live' || (!meta?.experiment && asked.startsWith('table:')))) return asked;
  return views[0];
}

async function route() {
  dispose();
  const p = params();
  const view = $('view');
  view.innerHTML = '';
  $('ignored').textContent = '';
  const ready = state.folders.filter((f) => f.ready);
  let id = p.get('folder');
  if (!id) {
    const first = (state.live && state.folders.find((f) => f.id === state.live.folder && !f.ready)) || ready[0] || state.folders[0];
    if (!first) { $('status').textContent = 'No folders are served.'; return; }
    return go({ folder: first.id, view: first.ready ? p.get('view') : 'live' }, false);
  }
  const folder = state.folders.find((f) => f.id === id);
  $('folder').value = id;
  if (!folder) { $('status').innerHTML = `<span class="error">No folder “${esc(id)}” is served here.</span>`; return; }
  const isLive = state.live && state.live.folder === id;
  if (!folder.ready) {
    tabs(id, null);
    $('filters').hidden = true;
    if (isLive) { $('status').textContent = ''; return showLive(view); }
    $('status').innerHTML = `<span class="error">${esc(folder.message)}</span>`;
    return;
  }
  $('filters').hidden = false;
  try {
    if (!state.meta[id]) state.meta[id] = await api(`/api/f/${encodeURIComponent(id)}/meta`);
  } catch (e) { $('status').innerHTML = `<span class="error">${esc(e.message)}</span>`; return; }
  const m = state.meta[id];
  state.current = m;
  $('title').textContent = `${m.scenario}${m.experiment ? ' · experiment' : ''} · seed ${m.seed} · ${m.meta.days[0]?.date ?? ''} – ${m.meta.days[m.meta.days.length - 1]?.date ?? ''}`;
  showFilters(m.meta);
  tabs(id, m);
  const name = viewOf(m);
  $('status').textContent = 'Loading…';
  try {
    if (name === 'customer') await showCustomer(view, id, m);
    else if (name === 'sql') showSql(view, id, m);
    else if (name === 'compare') await showCompare(view, id, m);
    else if (name === 'experiment') await showExperiment(view, id, m);
    else if (name === 'arms') await showArms(view, id, m);
    else if (name === 'live') await showLive(view);
    else await showView(view, id, m, name);
    $('status').textContent = '';
  } catch (e) {
    $('status').innerHTML = `<span class="error">${esc(e.message)}</span>`;
  }
}

// ---- views -------------------------------------------------------------------------------

async function viewData(id, name) {
  const r = await api(`/api/f/${encodeURIComponent(id)}/view/${encodeURIComponent(name)}?${filterQuery()}`);
  $('ignored').textContent = r.ignored.length ? `Not applied to this view: ${r.ignored.join(', ')}.` : '';
  return r;
}

async function showView(parent, id, m, name) {
  const meta = m.meta;
  const r = await viewData(id, name);
  const q = r.queries;
  const days = shownDays(meta);
  const dates = days.map((d) => d.date);
  if (name === 'overview') {
    const rows = q.totals.rows;
    const sum = (f) => rows.reduce((a, x) => a + num(x[f]), 0);
    const revenue = sum('revenue');
    const tx = sum('transactions');
    const s = m.summary || {};
    const cards = el('div', { class: 'cards' });
    cards.innerHTML = [
      ['Revenue', money(revenue)], ['Baskets', count(tx)], ['Mean basket', money(tx ? revenue / tx : 0)], ['Units', count(sum('units'))],
      ['Customers', count(s.customers)], ['At the end', count(s.customers_at_end)], ['Churned', count(s.totals?.churned)], ['Days', count(days.length)],
    ].map(([k, v]) => `<div class="card"><span class="muted">${k}</span><b>${esc(v)}</b></div>`).join('');
    parent.appendChild(cards);
    const shares = rows.map((x) => ({ persona: label(meta, x.persona), baskets: count(x.transactions), units: count(x.units), revenue: money(x.revenue), share: `${(100 * num(x.revenue) / (revenue || 1)).toFixed(1)}%` }));
    parent.appendChild(el('h2', {}, 'By persona'));
    parent.appendChild(table(shares));
    chart(parent, { tooltip: { trigger: 'item' }, series: [{ type: 'pie', radius: ['35%', '65%'], data: rows.map((x) => ({ name: label(meta, x.persona), value: num(x.revenue) })) }] }, 'chart small');
    if (m.report) parent.appendChild(el('p', { class: 'noprint' }, `<a href="/f/${encodeURIComponent(id)}/file/report.html" target="_blank">The run's static report</a>`));
  } else if (name === 'daily') {
    const rows = q.daily.rows;
    parent.appendChild(el('h2', {}, 'Revenue by day and persona'));
    chart(parent, banded({ legend: { top: 5 }, tooltip: { trigger: 'axis', valueFormatter: money }, dataZoom: zoom, xAxis: { type: 'category', data: dates }, yAxis: { type: 'value' }, series: daySeries(meta, rows, days, 'revenue') }, days));
    parent.appendChild(el('h2', {}, 'Baskets by day and persona'));
    chart(parent, banded({ legend: { top: 5 }, tooltip: { trigger: 'axis' }, dataZoom: zoom, xAxis: { type: 'category', data: dates }, yAxis: { type: 'value' }, series: daySeries(meta, rows, days, 'transactions', 'bar') }, days));
    parent.appendChild(el('p', { class: 'muted' }, 'Orange bands: festival days; grey: weekends.'));
  } else if (name === 'heatmap') {
    const rows = q.heatmap.rows;
    const data = rows.map((x) => [num(x.hour), num(x.weekday) - 1, num(x.transactions)]);
    const max = Math.max(1, ...data.map((d) => d[2]));
    parent.appendChild(el('h2', {}, 'Baskets by hour and weekday'));
    chart(parent, {
      tooltip: { formatter: (p) => `${WEEKDAYS[p.value[1]]} ${p.value[0]}:00 — ${count(p.value[2])} baskets` },
      xAxis: { type: 'category', data: [...Array(24).keys()].map((h) => `${h}`) }, yAxis: { type: 'category', data: WEEKDAYS },
      visualMap: { min: 0, max, calculable: true, orient: 'horizontal', left: 'center', bottom: 0 },
      series: [{ type: 'heatmap', data }],
    });
  } else if (name === 'mix') {
    const rows = q.mix.rows;
    const cats = [...new Set(rows.map((x) => x.category))];
    const by = groupBy(rows, 'persona');
    parent.appendChild(el('h2', {}, 'Revenue by category and persona'));
    chart(parent, {
      legend: { top: 5 }, tooltip: { trigger: 'axis', valueFormatter: money }, grid: { left: 140, right: 20, top: 40, bottom: 30 },
      yAxis: { type: 'category', data: cats }, xAxis: { type: 'value' },
      series: [...by.entries()].map(([persona, rs]) => {
        const at = new Map(rs.map((x) => [x.category, num(x.revenue)]));
        return { name: label(meta, persona), type: 'bar', stack: 'all', data: cats.map((c) => at.get(c) ?? 0) };
      }),
    }, 'chart');
    parent.appendChild(table(rows.map((x) => ({ category: x.category, persona: label(meta, x.persona), baskets: count(x.transactions), units: count(x.units), revenue: money(x.revenue) }))));
  } else if (name === 'baskets') {
    const rows = q.baskets.rows;
    const bins = [...new Map(rows.map((x) => [num(x.low), x])).values()].sort((a, b) => num(a.low) - num(b.low));
    const names = bins.map((b) => `${money(b.low)}–${b.high === null || b.high === undefined ? '' : money(b.high)}`);
    const by = groupBy(rows, 'persona');
    parent.appendChild(el('h2', {}, 'Basket values (baskets per value bin)'));
    chart(parent, {
      legend: { top: 5 }, tooltip: { trigger: 'axis' }, xAxis: { type: 'category', data: names, axisLabel: { rotate: 40 } }, yAxis: { type: 'value' },
      series: [...by.entries()].map(([persona, rs]) => {
        const at = new Map(rs.map((x) => [num(x.low), num(x.transactions)]));
        return { name: label(meta, persona), type: 'bar', stack: 'all', data: bins.map((b) => at.get(num(b.low)) ?? 0) };
      }),
    });
  } else if (name === 'customers') {
    const rows = q.daily.rows;
    parent.appendChild(el('h2', {}, 'Active customers'));
    chart(parent, banded({ legend: { top: 5 }, tooltip: { trigger: 'axis' }, dataZoom: zoom, xAxis: { type: 'category', data: dates }, yAxis: { type: 'value', scale: true }, series: daySeries(meta, rows, days, 'active_customers') }, days), 'chart small');
    parent.appendChild(el('h2', {}, 'Customers who left'));
    chart(parent, banded({ legend: { top: 5 }, tooltip: { trigger: 'axis' }, dataZoom: zoom, xAxis: { type: 'category', data: dates }, yAxis: { type: 'value' }, series: daySeries(meta, rows, days, 'churned', 'bar') }, days), 'chart small');
    if (q.causes) {
      const by = groupBy(q.causes.rows, 'cause');
      parent.appendChild(el('h2', {}, 'Why they left'));
      chart(parent, {
        legend: { top: 5 }, tooltip: { trigger: 'axis' }, xAxis: { type: 'category', data: dates }, yAxis: { type: 'value' },
        series: [...by.entries()].map(([cause, rs]) => { const at = new Map(rs.map((x) => [x.date, num(x.customers)])); return { name: cause, type: 'bar', stack: 'all', data: dates.map((d) => at.get(d) ?? 0) }; }),
      }, 'chart small');
    }
    const loyalty = (meta.loyalty || []).filter((x) => dates.includes(x.date) && (!params().get('persona') || params().get('persona').split(',').includes(x.persona)));
    if (loyalty.length) {
      parent.appendChild(el('h2', {}, 'Mean loyalty of active customers'));
      chart(parent, banded({ legend: { top: 5 }, tooltip: { trigger: 'axis' }, dataZoom: zoom, xAxis: { type: 'category', data: dates }, yAxis: { type: 'value', scale: true }, series: daySeries(meta, loyalty, days, 'mean') }, days), 'chart small');
    }
  } else if (name.startsWith('table:')) {
    const t = name.slice(6);
    if (q.by_day) {
      const cols = q.by_day.columns.map((c) => c.name).filter((c) => c !== 'date');
      const at = new Map(q.by_day.rows.map((x) => [x.date, x]));
      parent.appendChild(el('h2', {}, `${esc(t)} by day`));
      chart(parent, banded({
        legend: { top: 5 }, tooltip: { trigger: 'axis' }, dataZoom: zoom, xAxis: { type: 'category', data: dates }, yAxis: { type: 'value' },
        series: cols.map((c) => ({ name: c, type: 'line', showSymbol: false, data: dates.map((d) => num(at.get(d)?.[c])) })),
      }, days));
    }
    parent.appendChild(el('h2', {}, `${esc(t)}: first rows`));
    parent.appendChild(table(q.rows.rows));
  }
  sqlNote(parent, q);
}

async function showCustomer(parent, id, m) {
  const p = params();
  const form = el('form', { class: 'row noprint' }, `<label>Customer id <input id="cid" type="number" min="0" value="${esc(p.get('customer') || '')}"></label> <button class="primary" type="submit">Show</button>`);
  form.addEventListener('submit', (e) => { e.preventDefault(); go({ customer: $('cid').value }); });
  parent.appendChild(form);
  if (!p.get('customer')) { parent.appendChild(el('p', { class: 'muted' }, 'A customer id from the transactions or customers table.')); return; }
  const r = await api(`/api/f/${encodeURIComponent(id)}/customer/${encodeURIComponent(p.get('customer'))}`);
  const who = r.customer?.rows?.[0];
  if (!who) { parent.appendChild(el('p', { class: 'error', id: 'no-customer' }, `No customer ${esc(p.get('customer'))} in this run.`)); return; }
  parent.appendChild(el('h2', {}, `Customer ${esc(who.customer_id)} · ${esc(label(m.meta, who.persona))}`));
  parent.appendChild(table(Object.entries(who).map(([k, v]) => ({ attribute: k, value: v }))));
  const tx = r.transactions?.rows || [];
  parent.appendChild(el('h2', {}, `Baskets (${tx.length})`));
  if (tx.length) {
    let total = 0;
    chart(parent, { tooltip: { trigger: 'axis', valueFormatter: money }, xAxis: { type: 'category', data: tx.map((t) => t.timestamp) }, yAxis: { type: 'value' }, series: [{ name: 'spent so far', type: 'line', step: 'end', data: tx.map((t) => (total += num(t.total))) }] }, 'chart small');
  }
  const t = table(tx);
  t.id = 'customer-transactions';
  parent.appendChild(t);
  if (r.lines) { parent.appendChild(el('h2', {}, 'Lines')); parent.appendChild(table(r.lines.rows)); }
  if (r.churn && r.churn.rows.length) { parent.appendChild(el('h2', {}, 'Left')); parent.appendChild(table(r.churn.rows)); }
  sqlNote(parent, r);
}

function showSql(parent, id, m) {
  const p = params();
  const sql = p.get('sql') || 'SELECT persona, COUNT(*) AS baskets, SUM(total) AS revenue\nFROM transactions\nGROUP BY persona\nORDER BY revenue DESC';
  parent.appendChild(el('p', { class: 'muted' }, `Read-only SQL (DataFusion) over this run's tables: ${m.tables.map((t) => `<code title="${esc(t.columns.map((c) => c[0]).join(', '))}">${esc(t.name)}</code>`).join(', ')}. The page shows the first 1,000 rows; downloads hold up to 1,000,000.`));
  const area = el('textarea', { id: 'sql', spellcheck: 'false', 'aria-label': 'SQL' });
  area.value = sql;
  parent.appendChild(area);
  const bar = el('div', { class: 'row noprint' }, '<button class="primary" id="run-sql" type="button">Run</button> <a id="dl-csv" href="#">Download CSV</a> <a id="dl-parquet" href="#">Download Parquet</a> <span id="sql-info" class="muted"></span>');
  parent.appendChild(bar);
  const out = el('div', { id: 'sql-result' });
  parent.appendChild(out);
  const links = () => {
    for (const f of ['csv', 'parquet']) $(`dl-${f}`).href = `/api/f/${encodeURIComponent(id)}/download?format=${f}&sql=${encodeURIComponent(area.value)}`;
  };
  area.addEventListener('input', links);
  links();
  const run = async () => {
    history.replaceState(null, '', `${location.pathname}?${(() => { const q = params(); q.set('sql', area.value); return q; })()}`);
    out.innerHTML = '';
    $('sql-info').textContent = 'Running…';
    try {
      const r = await api(`/api/f/${encodeURIComponent(id)}/sql`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sql: area.value }) });
      $('sql-info').textContent = `${count(r.rows.length)} rows${r.truncated ? ' (more not shown)' : ''} in ${r.ms.toFixed(0)} ms`;
      out.appendChild(table(r.rows, r.columns.map((c) => c.name)));
    } catch (e) {
      $('sql-info').textContent = '';
      out.appendChild(el('p', { class: 'error', id: 'sql-error' }, esc(e.message)));
    }
  };
  $('run-sql').addEventListener('click', run);
  if (p.get('sql')) run();
}

async function showCompare(parent, id, m) {
  const p = params();
  const others = state.folders.filter((f) => f.ready && !f.experiment && f.id !== id);
  const form = el('div', { class: 'row noprint' }, `<label>Compare with <select id="with"><option value="">—</option>${others.map((f) => `<option ${f.id === p.get('with') ? 'selected' : ''}>${esc(f.id)}</option>`).join('')}</select></label>`);
  parent.appendChild(form);
  $('with').addEventListener('change', (e) => go({ with: e.target.value }));
  const b = p.get('with');
  if (!b) { parent.appendChild(el('p', { class: 'muted' }, others.length ? 'Choose a second folder (another run to set against this one).' : 'Serve two folders to compare them: bazaar serve out/a out/b.')); return; }
  const r = await api(`/api/compare/${encodeURIComponent(id)}/${encodeURIComponent(b)}/daily?${filterQuery()}`);
  const rowsA = r.a.queries.daily.rows;
  const rowsB = r.b.queries.daily.rows;
  const dates = [...new Set([...rowsA, ...rowsB].map((x) => x.date))].sort();
  const total = (rows) => { const t = new Map(); for (const x of rows) t.set(x.date, (t.get(x.date) || 0) + num(x.revenue)); return t; };
  const ta = total(rowsA);
  const tb = total(rowsB);
  parent.appendChild(el('h2', {}, `Revenue by day: ${esc(id)} against ${esc(b)}`));
  chart(parent, {
    legend: { top: 5 }, tooltip: { trigger: 'axis', valueFormatter: money }, dataZoom: zoom, xAxis: { type: 'category', data: dates }, yAxis: [{ type: 'value' }, { type: 'value', name: 'difference' }],
    series: [
      { name: id, type: 'line', showSymbol: false, data: dates.map((d) => ta.get(d) ?? 0) },
      { name: b, type: 'line', showSymbol: false, data: dates.map((d) => tb.get(d) ?? 0) },
      { name: `${b} − ${id}`, type: 'bar', yAxisIndex: 1, data: dates.map((d) => (tb.get(d) ?? 0) - (ta.get(d) ?? 0)) },
    ],
  });
  const personas = [...new Set([...rowsA, ...rowsB].map((x) => x.persona))];
  const sum = (rows, persona, f) => rows.filter((x) => x.persona === persona).reduce((s, x) => s + num(x[f]), 0);
  const rows = personas.map((pp) => {
    const ra = sum(rowsA, pp, 'revenue');
    const rb = sum(rowsB, pp, 'revenue');
    return { persona: label(m.meta, pp), [`revenue ${id}`]: money(ra), [`revenue ${b}`]: money(rb), difference: money(rb - ra), change: ra ? `${(100 * (rb - ra) / ra).toFixed(2)}%` : '', [`baskets ${id}`]: count(sum(rowsA, pp, 'transactions')), [`baskets ${b}`]: count(sum(rowsB, pp, 'transactions')) };
  });
  parent.appendChild(el('h2', {}, 'By persona'));
  const t = table(rows);
  t.id = 'compare-table';
  parent.appendChild(t);
}

// ---- experiments (`bazaar ab` folders) --------------------------------------------------

const MONEY_METRICS = ['revenue', 'retention_cost', 'cost_of_goods', 'margin'];
const isMoney = (metric) => MONEY_METRICS.includes(metric.split('.')[0]) || metric.endsWith('.revenue') || metric.endsWith('.cost');
const figure = (metric, v) => (v === null || v === undefined ? '–' : isMoney(metric) ? money(v) : num(v).toLocaleString('en-IN', { maximumFractionDigits: 1 }));
const interval = (d) => (d.interval ? `${figure(d.metric, d.interval[0])} … ${figure(d.metric, d.interval[1])}` : '–');

function ignoredNote(r) {
  $('ignored').textContent = r.ignored.length ? `Not applied: ${r.ignored.join('; ')}.` : '';
}

function metricPicker(parent, design, chosen, extra = '') {
  const bar = el('div', { class: 'row noprint' }, `${extra}<label>Metric <select id="metric">${design.metrics.map((x) => `<option ${x === chosen ? 'selected' : ''}>${esc(x)}</option>`).join('')}</select></label>`);
  parent.appendChild(bar);
  $('metric').addEventListener('change', (e) => go({ metric: e.target.value }));
}

/// The fork as a line on a date axis, where the axis shows it.
function forkLine(dates, fork) {
  return dates.includes(fork) ? { silent: true, symbol: 'none', label: { formatter: 'fork' }, lineStyle: { type: 'solid', color: '#888' }, data: [{ xAxis: fork }] } : undefined;
}

/// The folder's days (with their calendar) that a view's dates are.
function daysOf(m, dates) {
  const at = new Map(m.meta.days.map((x) => [x.date, x]));
  return dates.map((x) => at.get(x) || { date: x, festival: false, weekend: false, events: [] });
}

function designLine(d) {
  return `${d.arms.length - 1} arm${d.arms.length === 2 ? '' : 's'} (${d.arms.slice(1).map(esc).join(', ')}) against the base, forked on ${esc(d.fork)}; ${d.replications} replication${d.replications === 1 ? '' : 's'}, ${Math.round(d.confidence * 100)}% intervals.`;
}

async function showExperiment(parent, id, m) {
  const p = params();
  const r = await api(`/api/f/${encodeURIComponent(id)}/experiment?${filterQuery()}`);
  ignoredNote(r);
  const d = r.design;
  const metric = d.metrics.includes(p.get('metric')) ? p.get('metric') : d.metrics[0];
  parent.appendChild(el('p', {}, designLine(d)));
  parent.appendChild(el('h2', {}, r.window ? `Verdicts over ${r.window.length} chosen day${r.window.length === 1 ? '' : 's'} after the fork` : 'Verdicts'));
  const list = el('ul', { id: 'verdicts' }, r.verdicts.map((v) => `<li>${esc(v)}.</li>`).join(''));
  parent.appendChild(list);
  metricPicker(parent, d, metric);
  const series = r.daily.filter((x) => x.metric === metric);
  parent.appendChild(el('h2', {}, `Each arm less the base, ${esc(metric)} by day`));
  const dashed = { type: 'dashed', width: 1 };
  chart(parent, banded({
    legend: { top: 5 }, tooltip: { trigger: 'axis', valueFormatter: (v) => figure(metric, v) }, dataZoom: zoom,
    xAxis: { type: 'category', data: r.dates }, yAxis: { type: 'value' },
    series: series.flatMap((s, i) => [
      { name: s.arm, type: 'line', showSymbol: false, data: s.difference, markLine: i === 0 ? forkLine(r.dates, d.fork) : undefined },
      { name: `${s.arm} low`, type: 'line', showSymbol: false, lineStyle: dashed, data: s.low },
      { name: `${s.arm} high`, type: 'line', showSymbol: false, lineStyle: dashed, data: s.high },
    ]),
  }, daysOf(m, r.dates)));
  parent.appendChild(el('p', { class: 'muted' }, `Dashed: the ${Math.round(d.confidence * 100)}% interval of each day's paired difference (replications share random numbers). Before the fork every arm is the base. Orange bands: festival days; grey: weekends.`));
  parent.appendChild(el('h2', {}, r.window ? 'Differences over the chosen days after the fork' : 'Differences from the fork to the end'));
  const rows = r.differences.map((x) => ({
    arm: x.arm, against: x.against, metric: x.metric, against_value: figure(x.metric, x.base), arm_value: figure(x.metric, x.value),
    difference: figure(x.metric, x.difference), interval: interval(x), effect_size: x.effect_size === null ? '–' : num(x.effect_size).toFixed(2), replications_needed: x.replications_needed ?? '–',
  }));
  const t = table(rows, ['arm', 'against', 'metric', 'against_value', 'arm_value', 'difference', 'interval', 'effect_size', 'replications_needed']);
  t.id = 'experiment-table';
  parent.appendChild(t);
  if (state.folders.find((f) => f.id === id)?.files?.includes('experiment.html')) parent.appendChild(el('p', { class: 'noprint' }, `<a href="/f/${encodeURIComponent(id)}/file/experiment.html" target="_blank">The experiment's static report</a>`));
}

async function showArms(parent, id, m) {
  const p = params();
  const d = m.design;
  const a = d.arms.includes(p.get('a')) ? p.get('a') : d.arms[0];
  const b = d.arms.includes(p.get('b')) ? p.get('b') : d.arms[1] ?? d.arms[0];
  const metric = d.metrics.includes(p.get('metric')) ? p.get('metric') : d.metrics[0];
  const pick = (key, chosen) => `<label>${key === 'b' ? 'Arm' : 'against'} <select id="arm-${key}">${d.arms.map((x) => `<option ${x === chosen ? 'selected' : ''}>${esc(x)}</option>`).join('')}</select></label> `;
  metricPicker(parent, d, metric, pick('b', b) + pick('a', a));
  $('arm-a').addEventListener('change', (e) => go({ a: e.target.value }));
  $('arm-b').addEventListener('change', (e) => go({ b: e.target.value }));
  const q = new URLSearchParams(filterQuery());
  q.set('metric', metric);
  const r = await api(`/api/f/${encodeURIComponent(id)}/arms/${encodeURIComponent(a)}/${encodeURIComponent(b)}?${q}`);
  ignoredNote(r);
  const o = r.overall;
  const cards = el('div', { class: 'cards', id: 'arms-overall' });
  cards.innerHTML = [
    [`${esc(a)}`, figure(metric, o.base)], [`${esc(b)}`, figure(metric, o.value)], [`${esc(b)} − ${esc(a)}`, figure(metric, o.difference)], ['Interval', interval(o)],
  ].map(([k, v]) => `<div class="card"><span class="muted">${k}</span><b>${esc(v)}</b></div>`).join('');
  parent.appendChild(el('h2', {}, `${esc(metric)} ${r.window ? `over ${r.window.length} chosen day${r.window.length === 1 ? '' : 's'} after the fork` : 'from the fork to the end'} (mean of replications)`));
  parent.appendChild(cards);
  parent.appendChild(el('h2', {}, `${esc(metric)} by day: ${esc(b)} against ${esc(a)}`));
  const dashed = { type: 'dashed', width: 1, color: '#777' };
  chart(parent, banded({
    legend: { top: 5 }, tooltip: { trigger: 'axis', valueFormatter: (v) => figure(metric, v) }, dataZoom: zoom,
    xAxis: { type: 'category', data: r.dates }, yAxis: [{ type: 'value', scale: true }, { type: 'value', name: 'difference' }],
    series: [
      { name: a, type: 'line', showSymbol: false, data: r.mean_a, markLine: forkLine(r.dates, d.fork) },
      { name: b, type: 'line', showSymbol: false, data: r.mean_b },
      { name: `${b} − ${a}`, type: 'bar', yAxisIndex: 1, barWidth: '40%', data: r.difference },
      { name: 'interval low', type: 'line', yAxisIndex: 1, showSymbol: false, lineStyle: dashed, itemStyle: { color: '#777' }, data: r.low },
      { name: 'interval high', type: 'line', yAxisIndex: 1, showSymbol: false, lineStyle: dashed, itemStyle: { color: '#777' }, data: r.high },
    ],
  }, daysOf(m, r.dates)));
  parent.appendChild(el('h2', {}, `By persona, from the fork to the end`));
  const rows = r.personas.map((x) => {
    const y = x.difference;
    return {
      persona: x.label, [`against: ${a}`]: figure(metric, y.base), [`arm: ${b}`]: figure(metric, y.value), difference: figure(metric, y.difference),
      change: y.base ? `${(100 * y.difference / y.base).toFixed(2)}%` : '–', interval: interval(y),
    };
  });
  const t = table(rows, ['persona', `against: ${a}`, `arm: ${b}`, 'difference', 'change', 'interval']);
  t.id = 'arms-table';
  parent.appendChild(t);
}

async function showLive(parent) {
  const box = el('div', { id: 'live' }, `<h2>Live: ${esc(state.live?.scenario || '')}</h2><div class="progress"><div id="live-bar"></div></div><p id="live-text" class="muted">Waiting for the run…</p>`);
  parent.appendChild(box);
  const c = chart(parent, { legend: { top: 5 }, tooltip: { trigger: 'axis', valueFormatter: money }, xAxis: { type: 'category', data: [] }, yAxis: { type: 'value' }, series: [] });
  const days = [];
  const draw = () => {
    const personas = days[0] ? days[0].personas.map((p) => p.persona) : [];
    c.setOption({ xAxis: { data: days.map((d) => d.date) }, series: personas.map((p, i) => ({ name: p, type: 'line', showSymbol: false, data: days.map((d) => d.personas[i].revenue) })) });
  };
  const source = new EventSource('/api/live');
  state.source = source;
  source.addEventListener('progress', (e) => {
    const p = JSON.parse(e.data);
    $('live-bar').style.width = `${(100 * p.done).toFixed(1)}%`;
    $('live-text').textContent = `${p.date} · ${(100 * p.done).toFixed(0)}% · ${count(Math.round(p.customers_per_s))} customer-days/s · ${count(p.transactions)} baskets · about ${Math.ceil(p.eta_s)} s left`;
  });
  source.addEventListener('day', (e) => { days.push(JSON.parse(e.data)); draw(); });
  // Too far behind to have every day: start again from what the server kept.
  source.addEventListener('lagged', () => location.reload());
  source.addEventListener('failed', (e) => { $('live-text').innerHTML = `<span class="error">${esc(JSON.parse(e.data).message)}</span>`; source.close(); });
  source.addEventListener('finished', async () => {
    source.close();
    $('live-text').textContent = 'Finished: opening the run…';
    await loadFolders();
    delete state.meta[state.live.folder];
    go({ folder: state.live.folder, view: 'overview' }, false);
  });
}

// ---- wiring ------------------------------------------------------------------------------

function chosen(id) { return [...$(id).selectedOptions].map((o) => o.value); }

function wire() {
  $('folder').addEventListener('change', (e) => go({ folder: e.target.value, view: null, customer: null, sql: null, with: null, a: null, b: null, metric: null }));
  $('tabs').addEventListener('click', (e) => {
    const a = e.target.closest('a[data-view]');
    if (!a) return;
    e.preventDefault();
    go({ view: a.dataset.view });
  });
  for (const id of ['from', 'to']) $(id).addEventListener('change', () => go({ [id]: $(id).value }));
  for (const id of ['persona', 'category', 'event', 'store']) $(id).addEventListener('change', () => go({ [id]: chosen(id) }));
  $('clear').addEventListener('click', () => go(Object.fromEntries(FILTERS.map((k) => [k, null]))));
  $('print').addEventListener('click', () => window.print());
  window.addEventListener('popstate', route);
  window.addEventListener('resize', () => state.charts.forEach((c) => c.resize()));
  window.addEventListener('beforeprint', () => state.charts.forEach((c) => c.resize({ width: 700 })));
  window.addEventListener('afterprint', () => state.charts.forEach((c) => c.resize()));
}

(async () => {
  wire();
  try { await loadFolders(); } catch (e) { $('status').innerHTML = `<span class="error">${esc(e.message)}</span>`; return; }
  route();
})();
