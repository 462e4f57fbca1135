/**
 * Temporary directories for LevelDB and buffer tests, removed when the test process exits.
 */
import * as Fs from "node:fs"
import * as Os from "node:os"
import * as Path from "node:path"

const created: Array<string> = []
process.once("exit", () => {
  for (const dir of created) Fs.rmSync(dir, { recursive: true, force: true })
})

/** A new empty directory under the OS temp directory. */
export const tempDir = (label = "shardfeed"): string => {
  const dir = Fs.mkdtempSync(Path.join(Os.tmpdir(), `${label}-`))
  created.push(dir)
  return dir
}
