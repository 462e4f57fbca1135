/**
 * A full garbage collection, so a heap figure measures what is live. Test processes and
 * benchmarks run without `--expose-gc`; V8 exposes `gc` to a new context once the flag is set.
 */
import * as V8 from "node:v8"
import * as Vm from "node:vm"

export const collectGarbage = (): void => {
  V8.setFlagsFromString("--expose-gc")
  ;(Vm.runInNewContext("gc") as () => void)()
}
