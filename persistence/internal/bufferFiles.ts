/**
 * File-system plumbing of the persistent buffer: the one place where Node's errno errors become
 * `BufferIoError`, the directory lock, and small-file helpers. Everything here is synchronous on
 * purpose: these calls are metadata operations or page-cache copies that take microseconds, and
 * keeping them synchronous makes every state change of the buffer atomic on the event loop.
 *
 * The lock is a file holding the holder's pid, created atomically (written aside, then
 * hard-linked into place, so it is never seen empty). A lock whose pid is not a live process is
 * stale and is taken over; two processes taking over the same stale lock at the same instant
 * can both succeed (a window of microseconds that only an OS lock would close).
 */
import * as Fs from "node:fs"
import * as Path from "node:path"
import { BufferIoError, BufferLocked } from "../BufferError.js"
import { LOCK_FILE } from "./bufferFormat.js"

/** Translates a thrown Node error into `BufferIoError`: the one place errno codes are read. */
export const ioError = (directory: string, operation: string, cause: unknown): BufferIoError => {
  const code = (cause as { code?: unknown } | undefined)?.code
  return new BufferIoError({
    directory,
    operation,
    code: typeof code === "string" ? code : "UNKNOWN",
    detail: cause instanceof Error ? cause.message : String(cause)
  })
}

/** Runs a synchronous file operation, returning its result or the translated error. */
export const attempt = <A>(directory: string, operation: string, f: () => A): A | BufferIoError => {
  try {
    return f()
  } catch (cause) {
    return ioError(directory, operation, cause)
  }
}

/** Reads a whole small file; `undefined` when it does not exist. */
export const readSmallFile = (directory: string, name: string, bytesMax: number): Buffer | undefined | BufferIoError =>
  attempt(directory, `read ${name}`, () => {
    const path = Path.join(directory, name)
    let fd: number
    try {
      fd = Fs.openSync(path, "r")
    } catch (cause) {
      if ((cause as { code?: unknown }).code === "ENOENT") return undefined
      throw cause
    }
    try {
      const size = Math.min(Fs.fstatSync(fd).size, bytesMax)
      const out = Buffer.alloc(size)
      let read = 0
      while (read < size) {
        const n = Fs.readSync(fd, out, read, size - read, read)
        if (n === 0) break
        read += n
      }
      return out.subarray(0, read)
    } finally {
      Fs.closeSync(fd)
    }
  })

/** fsyncs the directory itself, so that created, renamed and deleted entries are durable. */
export const syncDirectory = (directory: string): void | BufferIoError =>
  attempt(directory, "fsync directory", () => {
    const fd = Fs.openSync(directory, "r")
    try {
      Fs.fsyncSync(fd)
    } finally {
      Fs.closeSync(fd)
    }
  })

/** Directories locked by buffers open in this process, so a pid equal to ours is told apart from a stale lock of an earlier process with the same pid. */
const lockedHere = new Set<string>()

const isAlive = (pid: number): boolean => {
  if (!Number.isSafeInteger(pid) || pid <= 0) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (cause) {
    // EPERM: the process exists but belongs to someone else; only ESRCH means it is gone.
    return (cause as { code?: unknown }).code === "EPERM"
  }
}

const readLockPid = (path: string): number => {
  try {
    return Number.parseInt(Fs.readFileSync(path, "latin1").trim(), 10)
  } catch {
    return Number.NaN
  }
}

/**
 * Creates the directory when missing and takes its lock. Returns the pid of a dead holder whose
 * stale lock was taken over (or `undefined`), `BufferLocked` when a live process holds it, or
 * `BufferIoError` when the directory cannot be created or written.
 */
export const acquireLock = (directory: string): { readonly staleLockPid: number | undefined } | BufferLocked | BufferIoError => {
  if (lockedHere.has(directory)) return new BufferLocked({ directory, pid: process.pid })
  const made = attempt(directory, "create directory", () => Fs.mkdirSync(directory, { recursive: true }))
  if (made instanceof BufferIoError) return made
  const lock = Path.join(directory, LOCK_FILE)
  const aside = Path.join(directory, `${LOCK_FILE}.${process.pid}.tmp`)
  const written = attempt(directory, "write lock file", () => Fs.writeFileSync(aside, `${process.pid}\n`))
  if (written instanceof BufferIoError) return written
  try {
    const linked = attempt(directory, "create lock file", () => {
      try {
        Fs.linkSync(aside, lock)
        return true
      } catch (cause) {
        if ((cause as { code?: unknown }).code === "EEXIST") return false
        throw cause
      }
    })
    if (linked instanceof BufferIoError) return linked
    if (linked) {
      lockedHere.add(directory)
      return { staleLockPid: undefined }
    }
    const holder = readLockPid(lock)
    // Our own pid in a lock no buffer of this process holds: an earlier process with the same
    // pid (common for pid 1 in containers) died holding it.
    if (holder !== process.pid && isAlive(holder)) return new BufferLocked({ directory, pid: holder })
    const taken = attempt(directory, "take over stale lock file", () => Fs.renameSync(aside, lock))
    if (taken instanceof BufferIoError) return taken
    const now = readLockPid(lock)
    if (now !== process.pid) return new BufferLocked({ directory, pid: now })
    lockedHere.add(directory)
    return { staleLockPid: Number.isSafeInteger(holder) ? holder : -1 }
  } finally {
    Fs.rmSync(aside, { force: true })
  }
}

/** Releases the lock when it is still ours; never fails (a missing lock is already released). */
export const releaseLock = (directory: string): void => {
  lockedHere.delete(directory)
  const lock = Path.join(directory, LOCK_FILE)
  if (readLockPid(lock) === process.pid) Fs.rmSync(lock, { force: true })
}
