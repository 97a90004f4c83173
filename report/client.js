// The report page's script (report/render.ts inlines it after echarts): draws every section from
// the JSON in #report-data. Plain browser JavaScript, no modules, no network. Text from the tables
// goes into the page through textContent only. `window.streamrecReport` lists what was drawn
// (each chart's id, series and data points) for whoever checks the page (test/report.e2e.test.ts).
(function () {
  'use strict';
  const data = JSON.parse(document.getElementById('report-data').textContent);
  const drawn = { charts: [], sections: {} };
  window.streamrecReport = drawn;
  const palette = ['#2563eb', '#dc2626', '#16a34a', '#d97706', '#7c3aed', '#0891b2', '#db2777', '#65a30d', '#4b5563', '#ea580c'];

  // ---- helpers ------------------------------------------------------------------------------
  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function num(value, digits) {
    if (value === null || value === undefined || Number.isNaN(value)) return '';
    if (digits === undefined) return Number(value).toLocaleString('en-US');
    return Number(value).toFixed(digits);
  }
  function time(ms) {
    if (!ms) return '';
    return new Date(ms).toISOString().replace('T', ' ').slice(0, 19) + 'Z';
  }
  function shortRun(runId) {
    return runId.length > 14 ? runId.slice(0, 6) + '…' + runId.slice(-6) : runId;
  }
  function groupBy(rows, key) {
    const out = new Map();
    for (const row of rows) {
      const k = key(row);
      if (!out.has(k)) out.set(k, []);
      out.get(k).push(row);
    }
    return out;
  }
  function percentile(sorted, p) {
    if (sorted.length === 0) return NaN;
    const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1));
    return sorted[i];
  }

  function section(id) {
    const node = document.getElementById(id);
    return { node, body: node.querySelector('.body'), empty: node.querySelector('.empty') };
  }
  function markEmpty(id, isEmpty) {
    const s = section(id);
    s.empty.hidden = !isEmpty;
    drawn.sections[id] = isEmpty ? 'empty' : 'drawn';
    return s;
  }
  function note(parent, text) {
    parent.appendChild(el('p', { class: 'note' }, text));
  }
  function cards(parent, items) {
    const box = el('div', { class: 'cards' });
    for (const [label, value] of items) {
      const card = el('div', { class: 'card' });
      card.appendChild(el('b', {}, value));
      card.appendChild(el('span', {}, label));
      box.appendChild(card);
    }
    parent.appendChild(box);
  }

  /** One chart: `option` is echarts', its series already carrying data. Series without points are dropped. */
  function chart(grid, id, title, option) {
    const series = (option.series || []).filter((s) => Array.isArray(s.data) && s.data.length > 0);
    if (series.length === 0) return null;
    const box = el('div', { class: 'chart', id: 'chart-' + id, 'data-chart': id });
    grid.appendChild(box);
    const instance = echarts.init(box, null, { renderer: 'canvas' });
    instance.setOption(
      Object.assign(
        {
          animation: false,
          color: palette,
          title: { text: title, left: 8, top: 6, textStyle: { fontSize: 13, fontWeight: 600 } },
          tooltip: { trigger: series.some((s) => s.type === 'scatter') ? 'item' : 'axis', confine: true },
          legend: { type: 'scroll', bottom: 0 },
          grid: { left: 56, right: 56, top: 44, bottom: 56, containLabel: false },
        },
        option,
        { series },
      ),
    );
    drawn.charts.push({ id, title, series: series.length, points: series.reduce((n, s) => n + s.data.length, 0) });
    return instance;
  }

  /** A table whose columns sort on a click (numbers as numbers, empty cells last). */
  function table(parent, columns, rows) {
    const wrap = el('div', { class: 'scroll' });
    const t = el('table');
    const thead = el('thead');
    const head = el('tr');
    const tbody = el('tbody');
    columns.forEach((c, i) => {
      const th = el('th', { 'data-col': String(i) }, c.label);
      th.addEventListener('click', () => {
        const dir = th.getAttribute('data-sort') === 'asc' ? 'desc' : 'asc';
        head.querySelectorAll('th').forEach((h) => h.removeAttribute('data-sort'));
        th.setAttribute('data-sort', dir);
        const sign = dir === 'asc' ? 1 : -1;
        rows.sort((a, b) => {
          const x = c.value(a);
          const y = c.value(b);
          const xe = x === null || x === undefined || x === '';
          const ye = y === null || y === undefined || y === '';
          if (xe || ye) return xe === ye ? 0 : xe ? 1 : -1;
          return (typeof x === 'number' && typeof y === 'number' ? x - y : String(x).localeCompare(String(y))) * sign;
        });
        fill();
      });
      head.appendChild(th);
    });
    function fill() {
      tbody.textContent = '';
      for (const row of rows) {
        const tr = el('tr');
        for (const c of columns) {
          const v = c.value(row);
          tr.appendChild(el('td', typeof v === 'number' ? { class: 'num' } : {}, c.format ? c.format(v, row) : v));
        }
        tbody.appendChild(tr);
      }
    }
    thead.appendChild(head);
    t.appendChild(thead);
    t.appendChild(tbody);
    fill();
    wrap.appendChild(t);
    parent.appendChild(wrap);
    return t;
  }

  const compact = (v) => (Math.abs(v) >= 1000 ? Number(v).toLocaleString('en-US') : String(Number(Number(v).toPrecision(4))));
  const valueAxis = (name, extra) => Object.assign({ type: 'value', name, nameTextStyle: { align: 'left' }, scale: true, axisLabel: { formatter: compact } }, extra || {});
  const timeAxis = (name) => ({ type: 'time', name, axisLabel: { hideOverlap: true } });
  const stepAxis = (name) => ({ type: 'value', name, minInterval: 1, min: 'dataMin', max: 'dataMax' });
  const line = (name, points, extra) => Object.assign({ name, type: 'line', data: points, showSymbol: points.length < 60, connectNulls: true }, extra || {});

  // ---- header -------------------------------------------------------------------------------
  document.getElementById('meta').textContent =
    'Generated ' + time(data.generatedAt) + ' from ' + data.source + ' · streamrec ' + data.version + (data.runs.length > 0 ? ' · runs: ' + data.runs.join(', ') : '');

  // ---- training -----------------------------------------------------------------------------
  (function training() {
    const t = data.training;
    const s = markEmpty('training', t.runs.length === 0 && t.epochs.length === 0);
    if (t.runs.length === 0 && t.epochs.length === 0) return;
    const runLabel = new Map(t.runs.map((r) => [r.runId, r.model + ' ' + shortRun(r.runId)]));
    const label = (runId) => runLabel.get(runId) || shortRun(runId);
    const best = t.runs.filter((r) => r.test['ndcg@10'] !== undefined).sort((a, b) => b.test['ndcg@10'] - a.test['ndcg@10'])[0];
    cards(s.body, [
      ['runs', num(t.runs.length)],
      ['epochs recorded', num(t.epochs.length)],
      ['best test NDCG@10 (model alone)', best ? num(best.test['ndcg@10'], 4) + ' · ' + label(best.runId) : '–'],
    ]);
    // Settings that differ between the runs shown (at most 8), beside the fixed columns.
    const keys = new Set();
    for (const r of t.runs) for (const k of Object.keys(r.settings)) keys.add(k);
    const varying = [...keys].filter((k) => new Set(t.runs.map((r) => JSON.stringify(r.settings[k]))).size > 1).slice(0, 8);
    const metric = (field, m) => ({ label: (field === 'test' ? 'test ' : 'test+prior ') + m, value: (r) => (r[field][m] === undefined ? null : r[field][m]), format: (v) => num(v, 4) });
    table(
      s.body,
      [
        { label: 'run', value: (r) => r.runId },
        { label: 'model', value: (r) => r.model },
        { label: 'dataset', value: (r) => r.dataset },
        { label: 'status', value: (r) => r.status },
        { label: 'started', value: (r) => r.startedAt, format: (v) => time(v) },
        { label: 'epochs', value: (r) => r.epochs },
        { label: 'best epoch', value: (r) => r.bestEpoch },
        metric('test', 'ndcg@10'),
        metric('test', 'recall@10'),
        metric('testWithPrior', 'ndcg@10'),
        metric('testWithPrior', 'recall@10'),
        { label: 'train examples', value: (r) => r.trainExamples, format: (v) => num(v) },
        { label: 'backend', value: (r) => r.backend },
        ...varying.map((k) => ({ label: k, value: (r) => (r.settings[k] === undefined ? null : r.settings[k]) })),
      ],
      t.runs.slice(),
    );
    const grid = el('div', { class: 'grid' });
    s.body.appendChild(grid);
    const byRun = groupBy(t.valid, (v) => v.runId);
    for (const [m, name] of [
      ['ndcg@10', 'NDCG@10'],
      ['recall@10', 'Recall@10'],
    ]) {
      chart(grid, 'valid-' + m.replace('@', '-'), 'Validation ' + name + ' by epoch', {
        xAxis: stepAxis('epoch'),
        yAxis: valueAxis(m),
        series: [...byRun].map(([runId, rows]) => line(label(runId), rows.filter((r) => r.metric === m).map((r) => [r.epoch + 1, r.value]))),
      });
    }
    const epochsByRun = groupBy(t.epochs, (e) => e.runId);
    chart(grid, 'train-loss', 'Training loss by epoch', {
      xAxis: stepAxis('epoch'),
      yAxis: valueAxis('loss'),
      series: [...epochsByRun].map(([runId, rows]) => line(label(runId), rows.map((e) => [e.epoch + 1, e.loss]))),
    });
    const partSeries = [];
    for (const [runId, rows] of epochsByRun) {
      const parts = new Set();
      rows.forEach((e) => Object.keys(e.parts).forEach((p) => parts.add(p)));
      for (const p of parts) partSeries.push(line((epochsByRun.size > 1 ? label(runId) + ' ' : '') + p, rows.filter((e) => e.parts[p] !== undefined).map((e) => [e.epoch + 1, e.parts[p]])));
    }
    chart(grid, 'loss-parts', 'Loss parts by epoch', { xAxis: stepAxis('epoch'), yAxis: valueAxis('loss part'), series: partSeries });
    if (t.valid.length === 0) note(s.body, 'No per-epoch validation metrics were recorded for these runs.');
  })();

  // ---- live loop ----------------------------------------------------------------------------
  (function live() {
    const rows = data.live.microEpochs;
    const s = markEmpty('live', rows.length === 0);
    if (rows.length === 0) return;
    const runs = new Set(rows.map((r) => r.runId));
    const seriesName = (runId, method) => (runs.size > 1 ? shortRun(runId) + ' ' : '') + method;
    const groups = groupBy(rows, (r) => r.runId + '\u0000' + r.method);
    // A gate decision compares candidate and live version on held-out users; rows without them decided nothing.
    const gated = rows.filter((r) => r.gateMetric && r.holdout > 0);
    const published = rows.filter((r) => r.publishedVersion > 0);
    cards(s.body, [
      ['runs', num(runs.size)],
      ['micro-epochs', num(rows.length)],
      ['gate decisions', num(gated.length) + ' (' + num(gated.filter((r) => r.accepted).length) + ' accepted)'],
      ['versions published', num(published.length)],
    ]);
    const summary = [...groups].map(([, g]) => {
      const mean = (m) => {
        const v = g.map((r) => r.prequential[m]).filter((x) => x !== undefined);
        return v.length ? v.reduce((a, b) => a + b, 0) / v.length : null;
      };
      const decided = g.filter((r) => r.gateMetric && r.holdout > 0);
      return {
        runId: g[0].runId,
        method: g[0].method,
        dataset: g[0].dataset,
        model: g[0].model,
        windows: g.length,
        events: g.reduce((n, r) => n + r.events, 0),
        ndcg: mean('ndcg@10'),
        recall: mean('recall@10'),
        trainS: g.reduce((n, r) => n + r.trainS, 0),
        accepted: decided.filter((r) => r.accepted).length,
        refused: decided.filter((r) => !r.accepted).length,
      };
    });
    table(
      s.body,
      [
        { label: 'run', value: (r) => r.runId },
        { label: 'method', value: (r) => r.method },
        { label: 'dataset', value: (r) => r.dataset },
        { label: 'model', value: (r) => r.model },
        { label: 'micro-epochs', value: (r) => r.windows },
        { label: 'events', value: (r) => r.events, format: (v) => num(v) },
        { label: 'mean prequential NDCG@10', value: (r) => r.ndcg, format: (v) => num(v, 4) },
        { label: 'mean prequential Recall@10', value: (r) => r.recall, format: (v) => num(v, 4) },
        { label: 'train s', value: (r) => r.trainS, format: (v) => num(v, 1) },
        { label: 'gate: accepted', value: (r) => r.accepted },
        { label: 'gate: refused', value: (r) => r.refused },
      ],
      summary,
    );
    const rebuilds = data.live.rebuilds;
    if (rebuilds.length > 0) {
      s.body.appendChild(el('h3', {}, 'Full rebuilds (candidates trained from the archive, scored beside the live model)'));
      table(
        s.body,
        [
          { label: 'started', value: (r) => r.startedAt, format: time },
          { label: 'run', value: (r) => r.runId },
          { label: 'trigger', value: (r) => r.trigger },
          { label: 'reason', value: (r) => r.reason },
          { label: 'train s', value: (r) => r.trainS, format: (v) => num(v, 1) },
          { label: 'caught up', value: (r) => r.catchUpEvents, format: (v) => num(v) },
          { label: 'gate examples', value: (r) => r.gateExamples, format: (v) => num(v) },
          { label: 'live', value: (r) => r.liveValue, format: (v) => num(v, 4) },
          { label: 'candidate', value: (r) => r.candidateValue, format: (v) => num(v, 4) },
          { label: 'margin', value: (r) => r.margin },
          { label: 'decision', value: (r) => r.decision },
          { label: 'version', value: (r) => r.version },
          { label: 'detail', value: (r) => r.detail },
        ],
        rebuilds.slice(),
      );
    }
    const grid = el('div', { class: 'grid' });
    s.body.appendChild(grid);
    for (const [m, title] of [
      ['ndcg@10', 'Prequential NDCG@10 by micro-epoch'],
      ['recall@10', 'Prequential Recall@10 by micro-epoch'],
    ]) {
      chart(grid, 'prequential-' + m.replace('@', '-'), title, {
        xAxis: stepAxis('micro-epoch'),
        yAxis: valueAxis(m),
        series: [...groups].map(([, g]) => line(seriesName(g[0].runId, g[0].method), g.filter((r) => r.prequential[m] !== undefined).map((r) => [r.microEpoch, r.prequential[m]]))),
      });
    }
    const gateRuns = groupBy(gated, (r) => r.runId);
    const gateSeries = [];
    for (const [runId, g] of gateRuns) {
      const prefix = gateRuns.size > 1 ? shortRun(runId) + ' ' : '';
      gateSeries.push(line(prefix + 'live version', g.map((r) => [r.microEpoch, r.liveGate])));
      gateSeries.push({ name: prefix + 'candidate accepted', type: 'scatter', symbolSize: 10, itemStyle: { color: '#16a34a' }, data: g.filter((r) => r.accepted).map((r) => [r.microEpoch, r.candidateGate]) });
      gateSeries.push({ name: prefix + 'candidate refused', type: 'scatter', symbol: 'diamond', symbolSize: 12, itemStyle: { color: '#dc2626' }, data: g.filter((r) => !r.accepted).map((r) => [r.microEpoch, r.candidateGate]) });
    }
    const gateMetric = gated[0] ? gated[0].gateMetric : '';
    chart(grid, 'gate', 'Gate decisions on held-out ' + gateMetric + ': candidate against the live version', {
      xAxis: stepAxis('micro-epoch'),
      yAxis: valueAxis(gateMetric),
      series: gateSeries,
    });
    const publishedRuns = groupBy(published, (r) => r.runId);
    chart(grid, 'publications', 'Versions published', {
      xAxis: timeAxis('time'),
      yAxis: valueAxis('version', { minInterval: 1 }),
      series: [...publishedRuns].map(([runId, g]) => ({ name: (publishedRuns.size > 1 ? shortRun(runId) + ' ' : '') + 'published', type: 'line', step: 'end', data: g.map((r) => [r.endedAt, r.publishedVersion]) })),
    });
    const windows = [...new Set(rows.map((r) => r.microEpoch))].sort((a, b) => a - b);
    chart(grid, 'micro-compute', 'Training seconds per micro-epoch', {
      xAxis: { type: 'category', name: 'micro-epoch', data: windows.map(String) },
      yAxis: valueAxis('s', { scale: false, min: 0 }),
      series: [...groups].map(([, g]) => {
        const at = new Map(g.map((r) => [r.microEpoch, r.trainS]));
        return { name: seriesName(g[0].runId, g[0].method), type: 'bar', data: windows.map((w) => (at.has(w) ? at.get(w) : null)) };
      }),
    });
  })();

  // ---- semantic IDs -------------------------------------------------------------------------
  (function semanticIds() {
    const builds = data.semanticIds.builds;
    const s = markEmpty('semantic-ids', builds.length === 0);
    if (builds.length === 0) return;
    const labelOf = (b, i) => '#' + (i + 1) + ' ' + b.method + (b.kind === 'new_items' ? ' +' + b.newItems : '');
    const labels = builds.map(labelOf);
    const last = builds[builds.length - 1];
    cards(s.body, [
      ['builds', num(builds.length)],
      ['items (latest)', num(last.items)],
      ['collision rate (latest)', num(last.collisionRate * 100, 2) + '%'],
      ['reconstruction error (latest full rebuild)', (() => {
        const full = builds.filter((b) => b.relMse !== null).pop();
        return full ? num(full.relMse, 4) : '–';
      })()],
    ]);
    table(
      s.body,
      [
        { label: '#', value: (b) => builds.indexOf(b) + 1 },
        { label: 'semantic IDs', value: (b) => b.id },
        { label: 'kind', value: (b) => b.kind },
        { label: 'method', value: (b) => b.method },
        { label: 'built', value: (b) => b.builtAt, format: (v) => time(v) },
        { label: 'items', value: (b) => b.items, format: (v) => num(v) },
        { label: 'new items', value: (b) => b.newItems, format: (v) => num(v) },
        { label: 'codes', value: (b) => b.levels + ' x ' + b.codesPerLevel },
        { label: 'collision rate', value: (b) => b.collisionRate, format: (v) => num(v, 4) },
        { label: 'rel. reconstruction error', value: (b) => b.relMse, format: (v) => num(v, 4) },
        { label: 'new items rel. error', value: (b) => b.newItemsRelMse, format: (v) => num(v, 4) },
      ],
      builds.slice(),
    );
    const grid = el('div', { class: 'grid' });
    s.body.appendChild(grid);
    const levels = Math.max(...builds.map((b) => b.fractionUsed.length));
    const rotate = labels.length > 6;
    const category = { type: 'category', data: labels, axisLabel: { interval: 0, rotate: rotate ? 30 : 0, hideOverlap: true } };
    const room = { left: 56, right: 56, top: 44, bottom: rotate ? 100 : 56 };
    chart(grid, 'code-utilisation', 'Code utilisation per level (share of codes used)', {
      grid: room,
      xAxis: category,
      yAxis: valueAxis('used', { max: 1, min: 0, scale: false }),
      series: Array.from({ length: levels }, (_, l) => {
        const used = builds.map((b) => (b.fractionUsed[l] === undefined ? null : b.fractionUsed[l]));
        return { name: 'level ' + (l + 1), type: 'bar', data: used.some((x) => x !== null) ? used : [] };
      }),
    });
    chart(grid, 'collisions-error', 'Collision rate and reconstruction error per build', {
      grid: room,
      xAxis: category,
      yAxis: [valueAxis('collision rate', { scale: false, min: 0 }), valueAxis('rel. error', { scale: false, min: 0 })],
      series: [
        { name: 'collision rate', type: 'bar', data: builds.map((b) => b.collisionRate) },
        { name: 'reconstruction error', type: 'line', yAxisIndex: 1, data: builds.some((b) => b.relMse !== null) ? builds.map((b) => b.relMse) : [] },
        { name: 'new items error', type: 'line', yAxisIndex: 1, data: builds.some((b) => b.newItemsRelMse !== null) ? builds.map((b) => b.newItemsRelMse) : [] },
      ],
    });
  })();

  // ---- ingest -------------------------------------------------------------------------------
  (function ingest() {
    const g = data.ingest;
    const isEmpty = g.events.length === 0 && g.deadLetters.length === 0 && g.lag.length === 0;
    const s = markEmpty('ingest', isEmpty);
    if (isEmpty) return;
    const per = g.bucketS === 3600 ? 'hour' : 'minute';
    cards(s.body, [
      ['interactions archived', num(g.totals.interactions)],
      ['catalog events archived', num(g.totals.items)],
      ['dead letters', num(g.totals.deadLetters)],
    ]);
    if (g.bucketS !== 3600) note(s.body, 'Everything lies within 6 hours: counts per minute instead of per hour.');
    const grid = el('div', { class: 'grid' });
    s.body.appendChild(grid);
    chart(grid, 'events', 'Events archived per ' + per, {
      xAxis: timeAxis('ingested'),
      yAxis: valueAxis('events', { scale: false, min: 0 }),
      series: [...groupBy(g.events, (e) => e.stream)].map(([stream, rows]) => ({ name: stream, type: 'bar', stack: 'events', barMaxWidth: 40, data: rows.map((r) => [r.t, r.n]) })),
    });
    chart(grid, 'dead-letters', 'Dead letters per ' + per + ' by code', {
      xAxis: timeAxis('failed'),
      yAxis: valueAxis('dead letters', { scale: false, min: 0 }),
      series: [...groupBy(g.deadLetters, (d) => d.code)].map(([code, rows]) => ({ name: code, type: 'bar', stack: 'dl', barMaxWidth: 40, data: rows.map((r) => [r.t, r.n]) })),
    });
    if (g.deadLetters.length === 0) note(s.body, 'No dead letters recorded.');
    chart(grid, 'lag', 'Consumer lag (largest partition, from the broker\'s high-water marks)', {
      xAxis: timeAxis('measured'),
      yAxis: valueAxis('messages behind', { scale: false, min: 0 }),
      series: [...groupBy(g.lag, (l) => l.topic)].map(([topic, rows]) => line(topic, rows.map((r) => [r.t, r.lag]))),
    });
    if (g.lag.length === 0) note(s.body, 'Consumer lag was not recorded (streamrec ingest records it at each lag check).');
  })();

  // ---- freshness ----------------------------------------------------------------------------
  (function freshness() {
    const probes = data.freshness.probes;
    const s = markEmpty('freshness', probes.length === 0);
    if (probes.length === 0) return;
    const titles = {
      history: ['Event -> served history (one process)', 'ms', 1],
      changelog_history: ['Event -> served history (changelog replica)', 'ms', 1],
      model: ['Event -> in a published model', 's', 1000],
      new_item: ['New catalog item -> recommendable', 's', 1000],
    };
    // The summary table above the histograms; the grid is in the page before echarts measures it.
    const tableBox = el('div');
    const grid = el('div', { class: 'grid' });
    s.body.appendChild(tableBox);
    s.body.appendChild(grid);
    const rows = [];
    for (const [kind, list] of groupBy(probes, (p) => p.kind)) {
      const [title, unit, div] = titles[kind] || [kind, 'ms', 1];
      const values = list.map((p) => p.latencyMs / div);
      const sorted = values.slice().sort((a, b) => a - b);
      rows.push({ kind, n: sorted.length, p50: percentile(sorted, 0.5), p99: percentile(sorted, 0.99), max: sorted[sorted.length - 1], unit });
      // 30 equal bins from 0 to the largest probe; series per benchmark run.
      const top = sorted[sorted.length - 1] || 1;
      const width = top / 30;
      const runs = groupBy(list, (p) => p.benchId);
      chart(grid, 'freshness-' + kind, title + ' (p50 ' + num(percentile(sorted, 0.5), unit === 's' ? 1 : 0) + ' ' + unit + ', p99 ' + num(percentile(sorted, 0.99), unit === 's' ? 1 : 0) + ' ' + unit + ')', {
        xAxis: { type: 'value', name: unit, min: 0, axisLabel: { formatter: compact, hideOverlap: true } },
        yAxis: valueAxis('probes', { scale: false, min: 0, minInterval: 1 }),
        series: [...runs].map(([benchId, rs]) => {
          const counts = new Array(30).fill(0);
          for (const p of rs) counts[Math.min(29, Math.floor(p.latencyMs / div / width))]++;
          return { name: runs.size > 1 ? benchId : 'probes', type: 'bar', stack: 'f', barCategoryGap: '5%', data: counts.map((c, i) => [(i + 0.5) * width, c]) };
        }),
      });
    }
    table(
      tableBox,
      [
        { label: 'probe', value: (r) => r.kind },
        { label: 'n', value: (r) => r.n },
        { label: 'p50', value: (r) => r.p50, format: (v, r) => num(v, r.unit === 's' ? 2 : 1) + ' ' + r.unit },
        { label: 'p99', value: (r) => r.p99, format: (v, r) => num(v, r.unit === 's' ? 2 : 1) + ' ' + r.unit },
        { label: 'max', value: (r) => r.max, format: (v, r) => num(v, r.unit === 's' ? 2 : 1) + ' ' + r.unit },
      ],
      rows,
    );
  })();

  // Each chart took its box's size when it was drawn; a grid that gained columns since (or a
  // window resized later) changed the boxes: every chart is fitted to its box again.
  const fitAll = () =>
    document.querySelectorAll('.chart').forEach((node) => {
      const instance = echarts.getInstanceByDom(node);
      if (instance) instance.resize();
    });
  fitAll();
  window.addEventListener('resize', fitAll);
  drawn.done = true;
})();
