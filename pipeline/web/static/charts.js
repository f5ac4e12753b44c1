// Minimal SVG time-series charts for the dashboard: lines or stacked areas, time axis in local
// time, hover read-out, HTML legend. No dependencies; every label is set with textContent.

const SVG_NS = "http://www.w3.org/2000/svg";
const MARGIN = { top: 10, right: 14, bottom: 24, left: 48 };
const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const TIME_STEPS = [
  MINUTE,
  2 * MINUTE,
  5 * MINUTE,
  10 * MINUTE,
  15 * MINUTE,
  30 * MINUTE,
  HOUR,
  2 * HOUR,
  3 * HOUR,
  6 * HOUR,
  12 * HOUR,
  DAY,
  2 * DAY,
  7 * DAY,
  14 * DAY,
  30 * DAY,
];

// Tableau 10 categorical palette; "other" is always grey.
const PALETTE = [
  "#4e79a7",
  "#f28e2b",
  "#59a14f",
  "#e15759",
  "#76b7b2",
  "#edc948",
  "#b07aa1",
  "#ff9da7",
  "#9c755f",
  "#bab0ac",
];
const OTHER_COLOUR = "#a0a7b4";

/** Stable colours per name: a series keeps its colour across refreshes and across charts. */
export class ColourMap {
  constructor() {
    this.assigned = new Map();
  }
  get(name) {
    if (name === "other") return OTHER_COLOUR;
    if (!this.assigned.has(name)) this.assigned.set(name, PALETTE[this.assigned.size % PALETTE.length]);
    return this.assigned.get(name);
  }
}

function svg(tag, attrs = {}, parent = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (parent) parent.appendChild(node);
  return node;
}

function html(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

/** About `count` round tick values covering [min, max]. */
function niceTicks(min, max, count = 5) {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const power = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * power).find((s) => s >= raw);
  const ticks = [];
  for (let v = Math.ceil(min / step) * step; v <= max + step * 1e-9; v += step) ticks.push(+v.toFixed(10));
  return ticks;
}

function timeTicks(start, end, maxTicks) {
  const step = TIME_STEPS.find((s) => (end - start) / s <= maxTicks) ?? TIME_STEPS[TIME_STEPS.length - 1];
  // Align ticks to local wall-clock multiples (e.g. 06:00, 12:00), not to UTC.
  const offset = -new Date(start).getTimezoneOffset() * MINUTE;
  const ticks = [];
  for (let t = Math.ceil((start + offset) / step) * step - offset; t <= end; t += step) ticks.push(t);
  return { ticks, step };
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", hour12: false });
const dayFormat = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const fullFormat = new Intl.DateTimeFormat(undefined, {
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
  hour12: false,
});

function timeLabel(t, step) {
  if (step >= DAY) return dayFormat.format(t);
  const date = new Date(t);
  return date.getHours() === 0 && date.getMinutes() === 0 ? dayFormat.format(t) : timeFormat.format(t);
}

/**
 * Draw a time-series chart into `container` (replacing its content) and redraw it on resize.
 * spec: { series: [{name, colour, points: [[tMs, value|null], ...]}], start, end,
 *         stacked?, yMin?, yMax?, format?(v) -> string, zeroLine?, dots?, height?, empty? }
 * Stacked charts expect every series to share the same timestamps.
 */
export function drawTimeSeries(container, spec) {
  container._chartSpec = spec;
  if (!container._resizeObserver) {
    let width = container.clientWidth;
    container._resizeObserver = new ResizeObserver(() => {
      if (container.clientWidth !== width) {
        width = container.clientWidth;
        render(container, container._chartSpec);
      }
    });
    container._resizeObserver.observe(container);
  }
  render(container, spec);
}

function stackedValues(series) {
  const lower = series.map(() => []);
  const upper = series.map(() => []);
  const length = series.length ? series[0].points.length : 0;
  for (let i = 0; i < length; i++) {
    let base = 0;
    series.forEach((s, k) => {
      lower[k].push(base);
      base += s.points[i][1] ?? 0;
      upper[k].push(base);
    });
  }
  return { lower, upper };
}

function render(container, spec) {
  const format = spec.format ?? ((v) => v.toLocaleString());
  const width = Math.max(container.clientWidth, 280);
  const height = spec.height ?? 220;
  const plotW = width - MARGIN.left - MARGIN.right;
  const plotH = height - MARGIN.top - MARGIN.bottom;
  const series = spec.series.filter((s) => s.points.length);
  container.replaceChildren();
  container.classList.add("chart-box");

  const values = [];
  const stack = spec.stacked ? stackedValues(series) : null;
  if (stack) stack.upper.forEach((u) => values.push(...u));
  else series.forEach((s) => s.points.forEach(([, v]) => v !== null && values.push(v)));
  if (!values.length) {
    container.appendChild(html("div", "chart-empty", spec.empty ?? "No data in this time range"));
    return;
  }
  let yMin = spec.yMin ?? Math.min(0, ...values);
  let yMax = spec.yMax ?? Math.max(...values);
  if (yMax === yMin) yMax = yMin + 1;
  const yTicks = niceTicks(yMin, yMax, 4);
  if (spec.yMax === undefined) yMax = Math.max(yMax, yTicks[yTicks.length - 1]);
  const { start, end } = spec;
  const x = (t) => MARGIN.left + ((t - start) / (end - start)) * plotW;
  const y = (v) => MARGIN.top + plotH - ((v - yMin) / (yMax - yMin)) * plotH;

  const root = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "chart", role: "img" });
  const clipId = `clip-${Math.random().toString(36).slice(2)}`;
  svg(
    "rect",
    { x: MARGIN.left, y: MARGIN.top, width: plotW, height: plotH },
    svg("clipPath", { id: clipId }, svg("defs", {}, root)),
  );

  const axes = svg("g", { class: "axes" }, root);
  for (const v of yTicks) {
    if (v < yMin || v > yMax) continue;
    svg(
      "line",
      {
        x1: MARGIN.left,
        x2: width - MARGIN.right,
        y1: y(v),
        y2: y(v),
        class: v === 0 && spec.zeroLine ? "zero" : "gridline",
      },
      axes,
    );
    svg("text", { x: MARGIN.left - 6, y: y(v) + 4, "text-anchor": "end" }, axes).textContent = format(v);
  }
  const { ticks, step } = timeTicks(start, end, Math.max(2, Math.floor(plotW / 80)));
  for (const t of ticks) {
    svg("line", { x1: x(t), x2: x(t), y1: MARGIN.top + plotH, y2: MARGIN.top + plotH + 4, class: "tick" }, axes);
    svg("text", { x: x(t), y: height - 6, "text-anchor": "middle" }, axes).textContent = timeLabel(t, step);
  }

  const plot = svg("g", { "clip-path": `url(#${clipId})` }, root);
  series.forEach((s, k) => {
    if (stack) {
      const top = s.points.map(([t], i) => `${x(t).toFixed(1)},${y(stack.upper[k][i]).toFixed(1)}`);
      const bottom = s.points.map(([t], i) => `${x(t).toFixed(1)},${y(stack.lower[k][i]).toFixed(1)}`).reverse();
      svg(
        "polygon",
        {
          points: [...top, ...bottom].join(" "),
          fill: s.colour,
          "fill-opacity": 0.8,
          stroke: s.colour,
          "stroke-width": 1,
        },
        plot,
      );
      return;
    }
    let d = "";
    let penDown = false;
    for (const [t, v] of s.points) {
      if (v === null) {
        penDown = false;
        continue;
      }
      d += `${penDown ? "L" : "M"}${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      penDown = true;
    }
    svg(
      "path",
      {
        d,
        fill: "none",
        stroke: s.colour,
        "stroke-width": 2,
        "stroke-linejoin": "round",
        "stroke-dasharray": s.dashed ? "5 4" : "none",
      },
      plot,
    );
    if (spec.dots)
      for (const [t, v] of s.points) if (v !== null) svg("circle", { cx: x(t), cy: y(v), r: 3, fill: s.colour }, plot);
  });

  container.appendChild(root);
  addHover(container, root, series, { x, start, end, plotW, plotH, format, stack });
  container.appendChild(legend(series));
}

function legend(series) {
  const list = html("ul", "legend");
  for (const s of series) {
    const item = html("li");
    const swatch = html("span", s.dashed ? "swatch dashed" : "swatch");
    swatch.style.setProperty("--colour", s.colour);
    item.append(swatch, html("span", null, s.label ?? s.name));
    list.appendChild(item);
  }
  return list;
}

function addHover(container, root, series, { x, start, end, plotW, plotH, format }) {
  const times = [...new Set(series.flatMap((s) => s.points.map(([t]) => t)))].sort((a, b) => a - b);
  if (!times.length) return;
  const cursor = svg("line", { y1: MARGIN.top, y2: MARGIN.top + plotH, class: "cursor", visibility: "hidden" }, root);
  const tip = html("div", "chart-tip");
  tip.hidden = true;
  container.appendChild(tip);
  const overlay = svg(
    "rect",
    { x: MARGIN.left, y: MARGIN.top, width: plotW, height: plotH, fill: "transparent" },
    root,
  );
  overlay.addEventListener("mouseleave", () => {
    cursor.setAttribute("visibility", "hidden");
    tip.hidden = true;
  });
  overlay.addEventListener("mousemove", (event) => {
    const box = root.getBoundingClientRect();
    const t = start + ((event.clientX - box.left - MARGIN.left) / plotW) * (end - start);
    const nearest = times.reduce((best, c) => (Math.abs(c - t) < Math.abs(best - t) ? c : best), times[0]);
    cursor.setAttribute("x1", x(nearest));
    cursor.setAttribute("x2", x(nearest));
    cursor.setAttribute("visibility", "visible");
    tip.replaceChildren(html("div", "tip-time", fullFormat.format(nearest)));
    for (const s of series) {
      const point = s.points.find(([pt]) => pt === nearest);
      if (!point || point[1] === null) continue;
      const row = html("div", "tip-row");
      const swatch = html("span", "swatch");
      swatch.style.setProperty("--colour", s.colour);
      row.append(swatch, html("span", "tip-name", s.label ?? s.name), html("span", "tip-value", format(point[1])));
      tip.appendChild(row);
    }
    tip.hidden = false;
    const left = x(nearest) + 12;
    tip.style.left = `${left + tip.offsetWidth > box.width ? x(nearest) - tip.offsetWidth - 12 : left}px`;
    tip.style.top = `${MARGIN.top}px`;
  });
}
