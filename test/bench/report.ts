/**
 * Reporting for benchmarks: a readable table of rows, then one JSON line with every figure, so
 * that people read the table and scripts read the last line; and the drivers that keep N calls
 * in flight.
 */
import { Effect } from "effect"

/** One measured figure. */
export interface Row {
  readonly name: string
  readonly value: number
  readonly unit: string
  /** The figure this one is compared with, and the target ratio, when there is one. */
  readonly baseline?: string
  readonly ratio?: number
  readonly target?: string
}

/** Prints rows as an aligned table followed by a JSON line `{ benchmark, rows }`. */
export const report = (benchmark: string, rows: ReadonlyArray<Row>, extra: Record<string, unknown> = {}): void => {
  const format = (value: number) =>
    value >= 100 ? Math.round(value).toLocaleString("en-US") : value.toLocaleString("en-US", { maximumFractionDigits: 3 })
  const cells = rows.map((row) => [
    row.name,
    `${format(row.value)} ${row.unit}`,
    row.baseline ?? "",
    row.ratio === undefined ? "" : `${row.ratio.toFixed(2)}x`,
    row.target ?? ""
  ])
  const header = ["measure", "value", "against", "ratio", "target"]
  const widths = header.map((title, i) => Math.max(title.length, ...cells.map((cell) => cell[i]!.length)))
  const line = (cell: ReadonlyArray<string>) => cell.map((text, i) => text.padEnd(widths[i]!)).join("  ")
  console.log(`\n${benchmark}`)
  console.log(line(header))
  console.log(widths.map((width) => "-".repeat(width)).join("  "))
  for (const cell of cells) console.log(line(cell))
  console.log(JSON.stringify({ benchmark, node: process.version, ...extra, rows }))
}

/** Runs `f` repeatedly for about `millis` (after one warm-up call) and returns operations per second. */
export const throughput = async (f: () => Promise<number>, millis: number): Promise<number> => {
  await f()
  let operations = 0
  const started = performance.now()
  while (performance.now() - started < millis) operations += await f()
  return (operations * 1000) / (performance.now() - started)
}

/** Keeps `inFlight` calls running for `millis` (call `i` gets `i`); returns calls per second. */
export const drive = async (inFlight: number, millis: number, call: (i: number) => Promise<unknown>): Promise<number> => {
  let done = 0
  let next = 0
  const deadline = performance.now() + millis
  const started = performance.now()
  await Promise.all(Array.from({ length: inFlight }, async () => {
    while (performance.now() < deadline) {
      await call(next++)
      done++
    }
  }))
  return (done * 1000) / (performance.now() - started)
}

/**
 * `drive` for Effects: `inFlight` fibers of one program, each running its calls in turn (how an
 * Effect application calls; entering the runtime once per call is a driver's cost, not a call's).
 */
export const driveEffect = <R>(inFlight: number, millis: number, call: (i: number) => Effect.Effect<unknown, unknown, R>) =>
  Effect.suspend(() => {
    let done = 0
    let next = 0
    const deadline = performance.now() + millis
    const started = performance.now()
    const worker = Effect.whileLoop({
      while: () => performance.now() < deadline,
      body: () => call(next++),
      step: () => void done++
    })
    return Effect.forEach(Array.from({ length: inFlight }), () => worker, { concurrency: "unbounded", discard: true }).pipe(
      Effect.map(() => (done * 1000) / (performance.now() - started))
    )
  })

/** The `q` quantile (0..1) of a list of numbers. */
export const quantile = (values: ReadonlyArray<number>, q: number): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN
}

/** The median of a list of numbers (of rounds, say). */
export const median = (values: ReadonlyArray<number>): number => quantile(values, 0.5)

/** Parses `--name value` options. */
export const options = (args: ReadonlyArray<string>): Record<string, string> => {
  const out: Record<string, string> = {}
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!
    if (arg.startsWith("--")) out[arg.slice(2)] = args[i + 1] !== undefined && !args[i + 1]!.startsWith("--") ? args[++i]! : "true"
  }
  return out
}
