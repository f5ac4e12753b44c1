// Live dashboard: polls /api/views/<name> every few seconds and redraws charts, tables and key
// figures. Post and alert text is untrusted: it only ever reaches the page through textContent.

import { ColourMap, drawTimeSeries } from "./charts.js";

const query = new URLSearchParams(location.search);
const REFRESH_MS = Math.max(1000, Number(query.get("refresh")) || 5000);
const TOP_SERIES = 8; // volume charts: the biggest series, the rest summed as "other"
const SENTIMENT_SERIES = 6; // sentiment charts: lines for the biggest series only
const WATCH_KEYS = 4;
const PATH_COLOURS = { learned: "#59a14f", transformer: "#4e79a7", lexical: "#f28e2b", empty: "#bab0ac" };
const REST = { name: "\u0000rest", colour: "#cfd5de" }; // the summed smaller series (never a real name)
// Points per time series: coarser for sentiment, whose per-bucket means are noisy on few posts.
const POINTS = {
  volume_by_topic: 60,
  volume_by_country: 60,
  sentiment_by_topic: 40,
  sentiment_by_country: 40,
  pipeline_health: 60,
};

const colours = { topic: new ColourMap(), country: new ColourMap(), key: new ColourMap() };
const rangeSelect = document.getElementById("range");
const watchSelect = document.getElementById("watch");
const statusLine = document.getElementById("status");
const state = { cycle: 0, timer: null, refreshes: 0, watch: query.get("watch") ?? "" };

if (query.get("range") && [...rangeSelect.options].some((o) => o.value === query.get("range"))) {
  rangeSelect.value = query.get("range");
}

// ---------------------------------------------------------------------------------------------
// formatting

const dateTime = new Intl.DateTimeFormat(undefined, {
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  hour12: false,
});
const clock = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hour12: false });
const number = new Intl.NumberFormat(undefined, { maximumFractionDigits: 1 });
const regionNames = new Intl.DisplayNames([navigator.language, "en"], { type: "region" });

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

const fmt = {
  time(iso) {
    if (!iso) return "";
    const t = Date.parse(iso);
    return new Date(t).toDateString() === new Date().toDateString() ? clock.format(t) : dateTime.format(t);
  },
  num: (v) => (v === null || v === undefined ? "–" : number.format(v)),
  pct: (v) =>
    v === null || v === undefined || Number.isNaN(v) ? "–" : `${(v * 100).toFixed(v < 0.1 && v > 0 ? 1 : 0)}%`,
  signed: (v) => (v === null || v === undefined ? "–" : `${v > 0 ? "+" : ""}${v.toFixed(2)}`),
  seconds: (v) => (v === null || v === undefined ? "–" : v < 120 ? `${v.toFixed(1)} s` : `${(v / 60).toFixed(1)} min`),
};

function countryLabel(code) {
  try {
    const name = /^[A-Z]{2}$/.test(code) ? regionNames.of(code) : null;
    return name && name !== code ? `${code} · ${name}` : code;
  } catch {
    return code;
  }
}

const cell = {
  sentiment(v) {
    const span = el("span", `sentiment ${v < -0.2 ? "neg" : v > 0.2 ? "pos" : "neu"}`, fmt.signed(v));
    return span;
  },
  severity(v) {
    return el("span", `badge sev-${v}`, v);
  },
  state(v) {
    return el("span", `state state-${v}`, v);
  },
  chips(values, label = (x) => x) {
    const box = el("span", "chips");
    for (const value of values ?? []) box.appendChild(el("span", "chip", label(value)));
    return box;
  },
  headline(text, row) {
    const safeUrl = /^https?:\/\//i.test(row.url ?? "") ? row.url : null;
    const node = safeUrl ? el("a", "headline", text) : el("span", "headline", text);
    if (safeUrl) {
      node.href = safeUrl;
      node.target = "_blank";
      node.rel = "noopener noreferrer";
    }
    node.title = text;
    return node;
  },
  share(v) {
    const box = el("span", "share");
    const bar = el("span", "share-bar");
    bar.style.width = `${Math.round((v ?? 0) * 100)}%`;
    box.append(bar, el("span", "share-text", fmt.pct(v)));
    return box;
  },
  versus(v, baseline, format) {
    return cell.stack(format(v), `baseline ${format(baseline)}`);
  },
  /** A main line and a muted detail line in one cell. */
  stack(main, detail) {
    const box = el("div", "stack");
    const line = (content, className) => (content instanceof Node ? content : el("div", className, content));
    box.append(line(main, "main"), line(detail, "detail"));
    return box;
  },
};

// ---------------------------------------------------------------------------------------------
// data

function viewUrl(name, extra = {}) {
  const params = new URLSearchParams({ from: `now-${rangeSelect.value}`, to: "now", ...extra });
  if (POINTS[name]) params.set("points", POINTS[name]);
  return `/api/views/${encodeURIComponent(name)}?${params}`;
}

async function fetchJson(url, label) {
  const response = await fetch(url, { cache: "no-store" });
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(`${label}: ${body.error ?? `HTTP ${response.status}`}`);
  return body;
}

async function fetchView(name, extra) {
  const body = await fetchJson(viewUrl(name, extra), name);
  for (const heading of document.querySelectorAll(`[data-title-of="${name}"]`)) heading.textContent = body.title;
  return body;
}

/** Bucket start times (ms) covering the requested range, aligned like toStartOfInterval. */
function timeGrid(params) {
  const bucket = params.bucket * 1000;
  const end = Date.parse(params.end);
  const grid = [];
  for (let t = Math.floor(Date.parse(params.start) / bucket) * bucket; t < end; t += bucket) grid.push(t);
  return grid;
}

function rankByTotal(rows, dimension, value) {
  const totals = new Map();
  for (const row of rows) totals.set(row[dimension], (totals.get(row[dimension]) ?? 0) + (row[value] ?? 0));
  return [...totals.entries()].sort((a, b) => b[1] - a[1] || String(a[0]).localeCompare(String(b[0]))).map(([n]) => n);
}

function byTime(rows, dimension, value) {
  const series = new Map();
  for (const row of rows) {
    const name = dimension ? row[dimension] : "";
    if (!series.has(name)) series.set(name, new Map());
    series.get(name).set(Date.parse(row.t), row[value]);
  }
  return series;
}

function gridSeries(grid, values, { name, label, colour, fill = null }) {
  return { name, label, colour, points: grid.map((t) => [t, values?.get(t) ?? fill]) };
}

function domain(payload, grid) {
  return {
    start: Math.min(grid[0] ?? Infinity, Date.parse(payload.params.start)),
    end: Date.parse(payload.params.end),
  };
}

// ---------------------------------------------------------------------------------------------
// panels

function drawVolume(slotId, payload, dimension, colourMap, label) {
  const grid = timeGrid(payload.params);
  const ranked = rankByTotal(payload.rows, dimension, "posts");
  const shown = ranked.length > TOP_SERIES + 1 ? ranked.slice(0, TOP_SERIES) : ranked;
  const values = byTime(payload.rows, dimension, "posts");
  const series = shown.map((name) =>
    gridSeries(grid, values.get(name), { name, label: label(name), colour: colourMap.get(name), fill: 0 }),
  );
  if (shown.length < ranked.length) {
    const other = new Map();
    for (const name of ranked.slice(TOP_SERIES))
      for (const [t, v] of values.get(name)) other.set(t, (other.get(t) ?? 0) + v);
    series.push(gridSeries(grid, other, { ...REST, label: `${ranked.length - TOP_SERIES} more`, fill: 0 }));
  }
  drawTimeSeries(document.getElementById(slotId), { series, ...domain(payload, grid), stacked: true, format: fmt.num });
  return ranked;
}

function drawSentiment(slotId, payload, dimension, ranked, colourMap, label) {
  const grid = timeGrid(payload.params);
  const values = byTime(payload.rows, dimension, "mean_sentiment");
  const series = ranked
    .slice(0, SENTIMENT_SERIES)
    .map((name) => gridSeries(grid, values.get(name), { name, label: label(name), colour: colourMap.get(name) }));
  drawTimeSeries(document.getElementById(slotId), {
    series,
    ...domain(payload, grid),
    yMin: -1,
    yMax: 1,
    zeroLine: true,
    format: fmt.signed,
  });
}

function drawHealth(payload) {
  const grid = timeGrid(payload.params);
  const rate = byTime(payload.rows, null, "posts_per_min").get("");
  drawTimeSeries(document.getElementById("chart-throughput"), {
    series: [gridSeries(grid, rate, { name: "posts / min", colour: PATH_COLOURS.transformer, fill: 0 })],
    ...domain(payload, grid),
    format: fmt.num,
  });
  const paths = Object.entries(PATH_COLOURS).map(([path, colour]) =>
    gridSeries(grid, byTime(payload.rows, null, `${path}_share`).get(""), { name: path, colour, fill: 0 }),
  );
  drawTimeSeries(document.getElementById("chart-model-path"), {
    series: paths,
    ...domain(payload, grid),
    stacked: true,
    yMin: 0,
    yMax: 1,
    format: fmt.pct,
  });
}

function renderTable(slotId, rows, columns, { empty = "Nothing in this time range", onRowClick, limit = 200 } = {}) {
  const slot = document.getElementById(slotId);
  let scroller = slot.querySelector(".table-scroll");
  if (!scroller) {
    scroller = el("div", "table-scroll");
    slot.replaceChildren(scroller);
  }
  const table = el("table");
  const headRow = el("tr");
  for (const column of columns) headRow.appendChild(el("th", column.className, column.label));
  table.appendChild(el("thead")).appendChild(headRow);
  const body = table.appendChild(el("tbody"));
  for (const row of rows.slice(0, limit)) {
    const tr = body.appendChild(el("tr"));
    for (const column of columns) {
      const td = tr.appendChild(el("td", column.className));
      const value = row[column.key];
      const content = column.render ? column.render(value, row) : value;
      if (content instanceof Node) td.appendChild(content);
      else td.textContent = content ?? "";
    }
    if (onRowClick) {
      tr.classList.add("clickable");
      tr.addEventListener("click", () => onRowClick(row));
    }
  }
  if (!rows.length) {
    const td = body.appendChild(el("tr")).appendChild(el("td", "empty", empty));
    td.colSpan = columns.length;
  }
  scroller.replaceChildren(table);
}

const watchAndKey = (v, r) => cell.stack(v, r.key);
const severityAndState = (v, r) => cell.stack(cell.severity(v), cell.state(r.state));

const ALERT_COLUMNS = [
  { key: "severity", label: "Severity", render: severityAndState },
  { key: "watch", label: "Watch / key", render: watchAndKey, className: "wrap" },
  { key: "opened_at", label: "Opened", render: fmt.time, className: "nowrap" },
  { key: "observed", label: "Posts", render: (v, r) => cell.versus(v, r.baseline, fmt.num), className: "num" },
  {
    key: "negative_share",
    label: "Negative",
    render: (v, r) => cell.stack(fmt.pct(v), `score ${fmt.num(r.score)}`),
    className: "num",
  },
  { key: "top_terms", label: "Top terms", render: (v) => cell.chips((v ?? []).slice(0, 3)) },
];

const POST_COLUMNS = [
  { key: "created_at", label: "Time", render: fmt.time, className: "nowrap" },
  { key: "sentiment_score", label: "Score", render: cell.sentiment, className: "num" },
  {
    key: "headline",
    label: "Post",
    className: "text",
    render: (v, r) =>
      cell.stack(
        cell.headline(v, r),
        [
          r.source,
          r.account,
          r.topic,
          (r.countries ?? []).join(" "),
          r.pageviews === null ? null : `${fmt.num(r.pageviews)} views`,
        ]
          .filter(Boolean)
          .join(" · "),
      ),
  },
];

const TRANSITION_COLUMNS = [
  { key: "updated_at", label: "Time", render: fmt.time, className: "nowrap" },
  { key: "severity", label: "Severity", render: severityAndState },
  { key: "watch", label: "Watch / key", render: watchAndKey, className: "wrap" },
  { key: "observed", label: "Posts", render: (v, r) => cell.versus(v, r.baseline, fmt.num), className: "num" },
  { key: "score", label: "Score", render: fmt.num, className: "num" },
];

const WATCH_COLUMNS = [
  { key: "window_end", label: "Window end", render: fmt.time, className: "nowrap" },
  { key: "key", label: "Key", className: "wrap" },
  { key: "severity", label: "Severity", render: severityAndState },
  { key: "observed", label: "Posts", render: (v, r) => cell.versus(v, r.baseline, fmt.num), className: "num" },
  {
    key: "negative_share",
    label: "Negative",
    render: (v, r) => cell.versus(v, r.baseline_negative_share, fmt.pct),
    className: "num",
  },
  { key: "score", label: "Score", render: fmt.num, className: "num" },
  { key: "top_terms", label: "Top terms", render: (v) => cell.chips((v ?? []).slice(0, 3)) },
];

const TOPIC_COLUMNS = [
  { key: "topic", label: "Topic / secondary", render: (v, r) => cell.stack(v, r.secondary_topic), className: "wrap" },
  { key: "posts", label: "Posts", render: fmt.num, className: "num" },
  { key: "share", label: "Share", render: cell.share },
  { key: "mean_sentiment", label: "Sentiment", render: cell.sentiment, className: "num" },
  { key: "negative_share", label: "Negative", render: fmt.pct, className: "num" },
];

function selectWatch(watch) {
  if (watch === state.watch) return;
  state.watch = watch;
  watchSelect.value = watch;
  refresh();
}

function updateWatchOptions(openAlerts, transitions) {
  const watches = [...new Set([...openAlerts, ...transitions].map((a) => a.watch))].sort();
  if (!state.watch && openAlerts.length) state.watch = openAlerts[0].watch;
  if (state.watch && !watches.includes(state.watch)) watches.unshift(state.watch);
  const current = [...watchSelect.options].map((o) => o.value).join("\n");
  if (watches.length && current !== watches.join("\n")) {
    watchSelect.replaceChildren(
      ...watches.map((w) => {
        const o = el("option", null, w);
        o.value = w;
        return o;
      }),
    );
  }
  watchSelect.value = state.watch;
}

function drawWatch(payload) {
  const rows = [...payload.rows].reverse(); // oldest first for the chart
  const keys = rankByTotal(
    rows.map((r) => ({ ...r, n: 1 })),
    "key",
    "n",
  ).slice(0, WATCH_KEYS);
  const series = keys.flatMap((key) => {
    const own = rows.filter((r) => r.key === key);
    const colour = colours.key.get(key);
    return [
      { name: key, label: `${key} posts`, colour, points: own.map((r) => [Date.parse(r.window_end), r.observed]) },
      {
        name: `${key} baseline`,
        label: `${key} baseline`,
        colour,
        dashed: true,
        points: own.map((r) => [Date.parse(r.window_end), r.baseline]),
      },
    ];
  });
  drawTimeSeries(document.getElementById("chart-watch"), {
    series,
    start: Date.parse(payload.params.start),
    end: Date.parse(payload.params.end),
    dots: true,
    format: fmt.num,
    empty: "No alert windows for this watch in the time range",
  });
  renderTable("table-watch", payload.rows, WATCH_COLUMNS, { limit: 50 });
}

function setKpi(id, value, sub) {
  document.getElementById(id).textContent = value;
  if (sub !== undefined) document.getElementById(`${id}-sub`).textContent = sub;
}

function weighted(rows, value, weight) {
  let sum = 0;
  let total = 0;
  for (const row of rows) {
    if (row[value] === null || row[weight] === null) continue;
    sum += row[value] * row[weight];
    total += row[weight];
  }
  return total ? sum / total : null;
}

function drawDeadLetters({ dlq_total: total, dlq_by_reason: byReason }) {
  const top = Object.entries(byReason)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 2)
    .map(([reason, n]) => `${reason} ${fmt.num(n)}`);
  setKpi("kpi-dlq", fmt.num(total), top.length ? top.join(" · ") : "since worker start");
}

function drawKpis({ volume, topics, health, openAlerts }) {
  const posts = volume.rows.reduce((sum, r) => sum + r.posts, 0);
  setKpi("kpi-posts", fmt.num(posts), `${new Set(volume.rows.map((r) => r.topic)).size} topics`);

  const grid = timeGrid(health.params);
  const bucketMs = health.params.bucket * 1000;
  const lastFull = grid.filter((t) => t + bucketMs <= Date.now()).pop();
  const rate = byTime(health.rows, null, "posts_per_min").get("");
  setKpi("kpi-rate", fmt.num(rate?.get(lastFull) ?? 0), `last full ${health.params.bucket / 60} min`);

  const negative = weighted(topics.rows, "negative_share", "posts");
  const sentiment = weighted(topics.rows, "mean_sentiment", "posts");
  setKpi("kpi-negative", fmt.pct(negative), sentiment === null ? "" : `sentiment ${fmt.signed(sentiment)}`);

  const bySeverity = (s) => openAlerts.rows.filter((a) => a.severity === s).length;
  setKpi(
    "kpi-alerts",
    String(openAlerts.rows.length),
    `${bySeverity("critical")} critical · ${bySeverity("warning")} warning`,
  );
  document.getElementById("kpi-alerts").classList.toggle("alarm", bySeverity("critical") > 0);

  const bar = document.getElementById("kpi-path");
  const shares = Object.keys(PATH_COLOURS).map((path) => [
    path,
    weighted(health.rows, `${path}_share`, "posts_per_min") ?? 0,
  ]);
  bar.replaceChildren(
    ...shares
      .filter(([, s]) => s > 0)
      .map(([path, s]) => {
        const segment = el("span", "path-seg");
        segment.style.width = `${s * 100}%`;
        segment.style.background = PATH_COLOURS[path];
        segment.title = `${path} ${fmt.pct(s)}`;
        return segment;
      }),
  );
  if (!bar.childElementCount) bar.appendChild(el("span", "path-empty", "no posts in range"));
  document.getElementById("kpi-path-sub").textContent = shares.map(([path, s]) => `${path} ${fmt.pct(s)}`).join(" · ");
  setKpi("kpi-lag", fmt.seconds(weighted(health.rows, "mean_lag_s", "posts_per_min")));
}

// ---------------------------------------------------------------------------------------------
// refresh loop

const VIEWS = [
  "volume_by_topic",
  "sentiment_by_topic",
  "volume_by_country",
  "sentiment_by_country",
  "topic_breakdown",
  "open_alerts",
  "recent_alerts",
  "top_negative_posts",
  "pipeline_health",
];

function setStatus(text, kind) {
  statusLine.textContent = text;
  statusLine.className = `status ${kind}`;
}

/** One poll: fetch every view, redraw what arrived, then schedule the next poll. */
async function refresh() {
  clearTimeout(state.timer);
  const cycle = ++state.cycle;
  if (document.hidden) {
    setStatus("paused (tab hidden)", "paused");
    return;
  }
  try {
    await update(cycle);
  } catch (error) {
    setStatus(`error: ${error.message} · retrying`, "error");
  } finally {
    if (cycle === state.cycle) state.timer = setTimeout(refresh, REFRESH_MS);
  }
}

async function update(cycle) {
  const results = await Promise.allSettled([
    ...VIEWS.map((name) => fetchView(name)),
    fetchJson("/api/process", "process counters"),
  ]);
  if (cycle !== state.cycle) return; // a newer refresh (range change) owns the page now
  const data = Object.fromEntries([...VIEWS, "process"].map((name, i) => [name, results[i].value]));
  const errors = results.filter((r) => r.status === "rejected").map((r) => r.reason.message);
  const draw = (names, fn) => {
    if (names.every((n) => data[n])) fn();
  };

  draw(["process"], () => drawDeadLetters(data.process));
  draw(["volume_by_topic", "sentiment_by_topic"], () => {
    const ranked = drawVolume("chart-volume-topic", data.volume_by_topic, "topic", colours.topic, (n) => n);
    drawSentiment("chart-sentiment-topic", data.sentiment_by_topic, "topic", ranked, colours.topic, (n) => n);
  });
  draw(["volume_by_country", "sentiment_by_country"], () => {
    const ranked = drawVolume("chart-volume-country", data.volume_by_country, "country", colours.country, countryLabel);
    drawSentiment(
      "chart-sentiment-country",
      data.sentiment_by_country,
      "country",
      ranked,
      colours.country,
      countryLabel,
    );
  });
  draw(["open_alerts"], () =>
    renderTable("table-open-alerts", data.open_alerts.rows, ALERT_COLUMNS, {
      empty: "No open alerts",
      onRowClick: (row) => selectWatch(row.watch),
    }),
  );
  draw(["top_negative_posts"], () =>
    renderTable("table-negative-posts", data.top_negative_posts.rows, POST_COLUMNS, { limit: 50 }),
  );
  draw(["recent_alerts"], () =>
    renderTable("table-recent-alerts", data.recent_alerts.rows, TRANSITION_COLUMNS, {
      onRowClick: (row) => selectWatch(row.watch),
    }),
  );
  draw(["topic_breakdown"], () => renderTable("table-topics", data.topic_breakdown.rows, TOPIC_COLUMNS));
  draw(["pipeline_health"], () => drawHealth(data.pipeline_health));
  draw(["volume_by_topic", "topic_breakdown", "pipeline_health", "open_alerts"], () =>
    drawKpis({
      volume: data.volume_by_topic,
      topics: data.topic_breakdown,
      health: data.pipeline_health,
      openAlerts: data.open_alerts,
    }),
  );
  draw(["open_alerts", "recent_alerts"], () => updateWatchOptions(data.open_alerts.rows, data.recent_alerts.rows));

  if (state.watch) {
    try {
      const detail = await fetchView("watch_detail", { watch: state.watch });
      if (cycle !== state.cycle) return;
      drawWatch(detail);
    } catch (error) {
      errors.push(error.message);
    }
  }

  state.refreshes += 1;
  document.body.dataset.refreshes = String(state.refreshes);
  if (errors.length) {
    setStatus(`error: ${errors[0]}${errors.length > 1 ? ` (+${errors.length - 1} more)` : ""} · retrying`, "error");
  } else {
    document.body.dataset.ready = "true";
    setStatus(`live · updated ${new Date().toLocaleTimeString(undefined, { hour12: false })}`, "live");
  }
}

rangeSelect.addEventListener("change", () => {
  const url = new URL(location.href);
  url.searchParams.set("range", rangeSelect.value);
  history.replaceState(null, "", url);
  refresh();
});
watchSelect.addEventListener("change", () => selectWatch(watchSelect.value));
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) refresh();
});
refresh();
