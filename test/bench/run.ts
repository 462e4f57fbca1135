/**
 * `npm run bench -- <name> [options]`: runs the benchmark `test/bench/<name>.js` (compiled from
 * TypeScript by the bench script). Each benchmark measures shardfeed and its peers or baselines
 * in the same run, prints a readable table, and ends with one JSON line.
 */
import * as Path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"

const names = ["store", "entities", "feed", "http", "cluster", "zset", "search", "search-scale", "buffer", "bullmq"]
const [name, ...rest] = process.argv.slice(2)
if (name === undefined || !names.includes(name)) {
  console.error(`usage: npm run bench -- <${names.join("|")}> [options]`)
  process.exit(2)
}
const here = Path.dirname(fileURLToPath(import.meta.url))
const module = (await import(pathToFileURL(Path.join(here, `${name}.js`)).href)) as { main: (args: ReadonlyArray<string>) => Promise<void> }
await module.main(rest)
