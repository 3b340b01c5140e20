// The market side panel: consolidated tickers kept live by the SSE stream, and the
// Fear & Greed index with its recent history. Market data needs no login.

import { json, url } from "./api.js";

const rows = new Map(); // symbol -> { exchanges: Map(exchange -> ticker), row: <tr> }
const $ = (id) => document.getElementById(id);

const median = (values) => {
  const sorted = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (!sorted.length) return NaN;
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
};

const formatPrice = (value) =>
  Number.isFinite(value)
    ? value.toLocaleString(undefined, { maximumFractionDigits: value >= 100 ? 2 : value >= 1 ? 4 : 6 })
    : "–";

function renderRow(symbol) {
  const entry = rows.get(symbol);
  const tickers = [...entry.exchanges.values()];
  const price = median(tickers.map((t) => Number(t.last)));
  const change = median(tickers.map((t) => Number(t.change_pct)));
  const [priceCell, changeCell] = [entry.row.children[1], entry.row.children[2]];
  const previous = Number(priceCell.dataset.value);
  priceCell.textContent = formatPrice(price);
  priceCell.dataset.value = String(price);
  changeCell.textContent = Number.isFinite(change) ? `${change > 0 ? "+" : ""}${change.toFixed(2)}%` : "–";
  changeCell.className = `num ${change > 0 ? "up" : change < 0 ? "down" : ""}`;
  if (Number.isFinite(previous) && previous !== price) {
    entry.row.classList.remove("tick-up", "tick-down");
    void entry.row.offsetWidth; // restart the flash animation
    entry.row.classList.add(price > previous ? "tick-up" : "tick-down");
  }
}

function ensureRow(symbol) {
  if (rows.has(symbol)) return rows.get(symbol);
  const row = document.createElement("tr");
  for (const cls of ["", "num", "num"]) row.appendChild(Object.assign(document.createElement("td"), { className: cls }));
  row.children[0].textContent = symbol;
  const entry = { exchanges: new Map(), row };
  rows.set(symbol, entry);
  const body = $("tickers");
  body.querySelector(".muted")?.closest("tr")?.remove();
  const after = [...body.children].find((tr) => tr.children[0].textContent > symbol);
  body.insertBefore(row, after ?? null);
  return entry;
}

function flag(symbol, { stale, diverged }) {
  const cell = ensureRow(symbol).row.children[0];
  cell.textContent = symbol;
  for (const [on, label, title] of [
    [stale, "stale", "no exchange has reported recently"],
    [diverged, "diverged", "exchanges disagree on the price"],
  ]) {
    if (on) cell.append(" ", Object.assign(document.createElement("span"), { className: `badge ${label}`, textContent: label, title }));
  }
}

async function loadTickers() {
  const data = await json("/api/v1/market/tickers");
  $("market-source").textContent = data.source === "live" ? "" : `(${data.source})`;
  for (const ticker of data.tickers) {
    const entry = ensureRow(ticker.symbol);
    for (const [name, exchange] of Object.entries(ticker.exchanges)) entry.exchanges.set(name, exchange);
    flag(ticker.symbol, ticker);
    renderRow(ticker.symbol);
  }
  if (!data.tickers.length) $("tickers").innerHTML = '<tr><td colspan="3" class="muted">no market data yet</td></tr>';
}

function follow() {
  const status = $("connection");
  const source = new EventSource(url("/api/v1/market/stream"));
  source.onopen = () => Object.assign(status, { textContent: "live", className: "badge live" });
  source.onerror = () => Object.assign(status, { textContent: "reconnecting…", className: "badge" });
  source.addEventListener("ticker", (event) => {
    const ticker = JSON.parse(event.data);
    ensureRow(ticker.symbol).exchanges.set(ticker.exchange, ticker);
    renderRow(ticker.symbol);
  });
}

function sparkline(history) {
  const points = history
    .slice()
    .reverse()
    .map((reading, index, all) => `${(index / Math.max(all.length - 1, 1)) * 100},${30 - (reading.value / 100) * 30}`)
    .join(" ");
  const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
  svg.setAttribute("viewBox", "0 0 100 30");
  svg.setAttribute("preserveAspectRatio", "none");
  svg.classList.add("sparkline");
  const line = document.createElementNS("http://www.w3.org/2000/svg", "polyline");
  line.setAttribute("points", points);
  svg.appendChild(line);
  return svg;
}

async function loadFearGreed() {
  const box = $("fear-greed");
  const data = await json("/api/v1/market/fear-greed");
  if (!data.current) {
    box.textContent = "no reading yet";
    return;
  }
  const { value, classification } = data.current;
  box.className = "fear-greed";
  box.replaceChildren(
    Object.assign(document.createElement("span"), { className: "fg-value", textContent: String(value) }),
    Object.assign(document.createElement("span"), { className: "fg-class", textContent: classification }),
    data.history.length > 1 ? sparkline(data.history) : "",
  );
  box.style.setProperty("--fg", String(value));
}

export async function startMarket() {
  const failed = (what) => (error) => console.warn(`Sage: ${what} unavailable:`, error.message);
  await Promise.all([loadTickers().catch(failed("tickers")), loadFearGreed().catch(failed("Fear & Greed"))]);
  follow();
  setInterval(() => loadFearGreed().catch(failed("Fear & Greed")), 5 * 60 * 1000);
}
