/**
 * The live dashboard: one self-contained HTML page (inline style and script, no request beyond
 * this worker) that polls `/v1/cluster` and `/v1/stats` every second and shows the workers, the
 * shard map as a grid coloured by owner, and message, write (store operations committed) and
 * error rates per entity type;
 * plus queue depths and maintenance schedules where the worker serves `/v1/durable` and
 * `/v1/maintenance`.
 */

/** The dashboard page. */
export const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>shardfeed</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; color: #1d2330; background: #f7f8fa; }
  h1 { font-size: 1.3rem; margin: 0 0 1rem; }
  h2 { font-size: 1rem; margin: 1.5rem 0 .5rem; }
  table { border-collapse: collapse; background: #fff; }
  th, td { padding: .3rem .8rem; border-bottom: 1px solid #e3e6eb; text-align: left; }
  th { font-weight: 600; }
  td.number { text-align: right; font-variant-numeric: tabular-nums; }
  #shards { display: grid; grid-template-columns: repeat(64, 10px); gap: 1px; }
  #shards div { width: 10px; height: 10px; background: #d0d4db; }
  .swatch { display: inline-block; width: .8rem; height: .8rem; margin-right: .4rem; vertical-align: middle; }
  #status { color: #6b7280; }
</style>
</head>
<body>
<h1>shardfeed <span id="status">connecting…</span></h1>
<h2>Workers (<span id="worker-count">0</span>)</h2>
<table id="workers"><thead><tr><th>worker</th><th>address</th><th>weight</th><th>shards</th><th>last heartbeat</th></tr></thead><tbody></tbody></table>
<h2>Shard map (<span id="shard-count">0</span> shards, <span id="unowned-count">0</span> moving)</h2>
<div id="shards"></div>
<h2>Entities</h2>
<table id="rates"><thead><tr><th>type</th><th>resident</th><th>messages/s</th><th>writes/s</th><th>errors/s</th></tr></thead><tbody></tbody></table>
<section id="durable" hidden>
<h2>Durable work</h2>
<p>waiting <span id="durable-waiting">0</span> · active <span id="durable-active">0</span> · delayed <span id="durable-delayed">0</span> · dead letters <span id="durable-dead">0</span></p>
<table id="maintenance" hidden><thead><tr><th>schedule</th><th>next run</th><th>runs here (ok / error)</th><th>last run (any worker)</th></tr></thead><tbody></tbody></table>
</section>
<p>writes/s: <span id="writes">0</span> · commits/s: <span id="commits">0</span> · HTTP requests/s: <span id="requests">0</span> · HTTP errors/s: <span id="http-errors">0</span></p>
<script>
"use strict";
const palette = ["#2563eb", "#16a34a", "#dc2626", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777", "#4b5563", "#65a30d"];
const colours = new Map();
const colour = (id) => {
  if (!colours.has(id)) colours.set(id, palette[colours.size % palette.length]);
  return colours.get(id);
};
const cell = (text, number) => { const td = document.createElement("td"); td.textContent = text; if (number) td.className = "number"; return td; };
let previous;
async function fetchJson(path) {
  const response = await fetch(path, { credentials: "same-origin" });
  if (!response.ok) throw new Error(path + ": " + response.status);
  return response.json();
}
function renderCluster(cluster) {
  document.getElementById("worker-count").textContent = String(cluster.workers.length);
  const body = document.querySelector("#workers tbody");
  body.replaceChildren(...cluster.workers.map((worker) => {
    const row = document.createElement("tr");
    row.className = "worker";
    const name = cell(worker.id);
    const swatch = document.createElement("span");
    swatch.className = "swatch";
    swatch.style.background = colour(worker.id);
    name.prepend(swatch);
    row.append(name, cell(worker.address), cell(String(worker.weight), true), cell(String(worker.shards), true),
      cell(new Date(worker.lastSeen).toLocaleTimeString()));
    return row;
  }));
  const grid = document.getElementById("shards");
  if (grid.children.length !== cluster.owners.length) {
    grid.replaceChildren(...cluster.owners.map(() => document.createElement("div")));
  }
  let unowned = 0;
  cluster.owners.forEach((owner, shard) => {
    const square = grid.children[shard];
    square.className = "shard";
    square.dataset.owner = owner ?? "";
    square.title = "shard " + shard + ": " + (owner ?? "moving");
    square.style.background = owner === null ? "#d0d4db" : colour(owner);
    if (owner === null) unowned++;
  });
  document.getElementById("shard-count").textContent = String(cluster.owners.length);
  document.getElementById("unowned-count").textContent = String(unowned);
}
function rate(now, before, pick) {
  if (before === undefined) return 0;
  const seconds = (now.time - before.time) / 1000;
  return seconds > 0 ? Math.max(0, (pick(now) - pick(before)) / seconds) : 0;
}
function renderStats(stats) {
  const body = document.querySelector("#rates tbody");
  const types = Object.keys(stats.entities).sort();
  body.replaceChildren(...types.map((type) => {
    const row = document.createElement("tr");
    const pick = (field) => (s) => (s.entities[type] ? s.entities[type][field] : 0);
    row.className = "entity-type";
    row.dataset.type = type;
    row.append(cell(type), cell(String(stats.entities[type].resident), true),
      cell(rate(stats, previous, pick("messages")).toFixed(1), true), cell(rate(stats, previous, pick("writes")).toFixed(1), true),
      cell(rate(stats, previous, pick("errors")).toFixed(1), true));
    return row;
  }));
  document.getElementById("writes").textContent = rate(stats, previous, (s) => s.commits.writes).toFixed(1);
  document.getElementById("commits").textContent = rate(stats, previous, (s) => s.commits.rounds).toFixed(1);
  document.getElementById("requests").textContent = rate(stats, previous, (s) => s.http.requests).toFixed(1);
  document.getElementById("http-errors").textContent = rate(stats, previous, (s) => s.http.errors).toFixed(1);
  previous = stats;
}
// Durable work and maintenance are optional: shown when the worker serves them.
async function renderDurable() {
  const durable = await fetchJson("/v1/durable").catch(() => undefined);
  const maintenance = await fetchJson("/v1/maintenance").catch(() => undefined);
  document.getElementById("durable").hidden = durable === undefined && maintenance === undefined;
  if (durable !== undefined) {
    document.getElementById("durable-waiting").textContent = String(durable.waiting);
    document.getElementById("durable-active").textContent = String(durable.active);
    document.getElementById("durable-delayed").textContent = String(durable.delayed);
    document.getElementById("durable-dead").textContent = String(durable.deadLetters);
  }
  const table = document.getElementById("maintenance");
  table.hidden = maintenance === undefined;
  if (maintenance !== undefined) {
    table.querySelector("tbody").replaceChildren(...maintenance.schedules.map((schedule) => {
      const row = document.createElement("tr");
      row.append(cell(schedule.task), cell(schedule.next === null ? "—" : new Date(schedule.next).toLocaleTimeString()),
        cell(schedule.runs.ok + " / " + schedule.runs.error, true),
        cell(schedule.lastRun === null ? "—" : new Date(schedule.lastRun.at).toLocaleTimeString() + " (" + schedule.lastRun.outcome + ")"));
      return row;
    }));
  }
}
async function tick() {
  try {
    const [cluster, stats] = await Promise.all([fetchJson("/v1/cluster"), fetchJson("/v1/stats")]);
    renderCluster(cluster);
    renderStats(stats);
    await renderDurable();
    document.getElementById("status").textContent = "live · " + new Date().toLocaleTimeString();
  } catch (error) {
    document.getElementById("status").textContent = "unreachable: " + error.message;
  }
}
tick();
setInterval(tick, 1000);
</script>
</body>
</html>
`
