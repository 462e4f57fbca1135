/**
 * The operational routes: `/health` (open without a token), `/v1/cluster`, `/metrics` in the
 * Prometheus text format (Effect's own exporter over Effect's metric registry, the one source of
 * truth), `/v1/stats` for the dashboard, and `/dashboard`.
 */
import { Effect, Metric } from "effect"
import { PrometheusMetrics } from "effect/observability"
import { EntityRuntime } from "../../actors/EntityRuntime.js"
import { ClusterView } from "../node/ClusterView.js"
import * as Dashboard from "./Dashboard.js"
import { json, type Route } from "./HttpServer.js"

const sum = (snapshots: ReadonlyArray<Metric.Metric.Snapshot>, id: string, filter: (attributes: Record<string, string>) => boolean = () => true) =>
  snapshots
    .filter((snapshot) => snapshot.id === id && filter((snapshot.attributes ?? {}) as Record<string, string>))
    .reduce((total, snapshot) => total + Number((snapshot.state as { count?: number }).count ?? 0), 0)

/** Counters for the dashboard: totals the page turns into rates. */
const stats = Effect.gen(function*() {
  const snapshots = yield* Metric.snapshot
  const runtime = yield* EntityRuntime
  const resident = runtime.stats().residentByType
  const types = new Set<string>(resident.keys())
  for (const snapshot of snapshots) {
    if (snapshot.id === "shardfeed_entity_messages_total" && typeof snapshot.attributes?.type === "string") types.add(snapshot.attributes.type)
  }
  const entities: Record<string, { resident: number; messages: number; errors: number; writes: number }> = {}
  for (const type of types) {
    entities[type] = {
      resident: resident.get(type) ?? 0,
      messages: sum(snapshots, "shardfeed_entity_messages_total", (a) => a.type === type),
      errors: sum(snapshots, "shardfeed_entity_messages_total", (a) => a.type === type && a.outcome !== "ok"),
      writes: sum(snapshots, "shardfeed_entity_writes_total", (a) => a.type === type)
    }
  }
  // Store writes committed, the same unit as each type's: the page's total is their sum.
  const writes = sum(snapshots, "shardfeed_entity_writes_total")
  return {
    time: Date.now(),
    entities,
    commits: { rounds: sum(snapshots, "shardfeed_commits_total"), writes },
    http: {
      requests: sum(snapshots, "shardfeed_http_requests_total"),
      errors: sum(snapshots, "shardfeed_http_requests_total", (a) => Number(a.status) >= 400)
    }
  }
})

/** The operational routes. */
export const routes: ReadonlyArray<Route<ClusterView | EntityRuntime>> = [
  {
    method: "GET",
    path: "/health",
    public: true,
    handler: () => Effect.map(ClusterView, (view) => json({ status: "ok", worker: view.workerId }))
  },
  {
    method: "GET",
    path: "/v1/cluster",
    handler: () => Effect.flatMap(ClusterView, (view) => Effect.map(view.snapshot, json))
  },
  {
    method: "GET",
    path: "/v1/cluster/holdings",
    handler: () =>
      Effect.gen(function*() {
        const view = yield* ClusterView
        const runtime = yield* EntityRuntime
        return json({ worker: view.workerId, now: Date.now(), holdings: runtime.holdings().map((h) => ({ ...h, until: h.until ?? null })) })
      })
  },
  {
    method: "GET",
    path: "/v1/stats",
    handler: () => Effect.map(stats, json)
  },
  {
    method: "GET",
    path: "/metrics",
    handler: () =>
      Effect.map(PrometheusMetrics.format(), (body) => ({ _tag: "Text" as const, status: 200, contentType: "text/plain; version=0.0.4", body }))
  },
  {
    method: "GET",
    path: "/dashboard",
    handler: () => Effect.succeed({ _tag: "Text" as const, status: 200, contentType: "text/html; charset=utf-8", body: Dashboard.html })
  }
]
