/**
 * The write path of one partition: add or replace a batch of documents, remove documents, merge
 * thinned-out postings chunks.
 * An operation reads what it needs (meta, document and forward records, dictionary entries,
 * the sealed chunks it changes, numeric blocks) into operation-local state, changes that state,
 * and writes every record once at the end, in one ordered pass over the view.
 *
 * Merging (`mergeChunks`, maintenance) joins the neighbouring sealed chunks of terms that
 * removals thinned out, and points the moved postings' forward records at their new chunk.
 *
 * Adding appends postings to each term's tail chunk, which lives inside the term's dictionary
 * entry: one write per distinct term of the batch however many documents share it, plus a
 * sealed chunk (and its positions) each time a tail fills up. Batching documents is what makes
 * indexing fast. Removing reads the forward record, which names the chunk of every posting
 * (tail or sealed: a tail keeps its key when sealed), so no search is needed to find them.
 */
import { randomBytes } from "node:crypto"
import { Effect } from "effect"
import type { ReadError, WriteError } from "../../../persistence/StoreError.js"
import type { StoreView } from "../../../persistence/StoreView.js"
import type { IndexSchema } from "../IndexSchema.js"
import type { MergeOutcome } from "../SearchMessages.js"
import { SchemaMismatch } from "../SearchError.js"
import { ByteWriter, concat, fromUtf8, latin1, prefixSuccessor, utf8 } from "./codec.js"
import type { AnalyzedDocument, DocumentTerm } from "./documents.js"
import { readMany, Writes } from "./io.js"
import * as Layout from "./layout.js"
import {
  CHUNK_POSITIONS_BYTES_MAX,
  CHUNK_POSTINGS_MAX,
  ChunkBuilder,
  chunkRecord,
  decodeChunk,
  decodePositions,
  readHeader,
  withoutDocs
} from "./postings.js"

/** What the engine works with. */
export interface EngineContext {
  readonly schema: IndexSchema
  readonly namespaces: Layout.Namespaces
}

/**
 * A fresh write stamp: 48 random bits. Stamps key cached pages and lexicons; being random, the
 * stamp of a write that was lost is never given to a later write with other contents.
 */
export const newStamp = (): number => randomBytes(6).readUIntBE(0, 6)

const META_KEY = utf8(Layout.META_KEY)
const EMPTY = new Uint8Array(0)
/** A sealed chunk left with fewer postings than this by removals marks its term for merging. */
export const THIN_POSTINGS = CHUNK_POSTINGS_MAX / 2

/** Reads the partition's state, checking that it was written under the same definition. */
export const readMeta = (context: EngineContext, view: StoreView): Effect.Effect<Layout.Meta, ReadError | SchemaMismatch> =>
  Effect.flatMap(view.get(context.namespaces.meta, META_KEY), (bytes) => {
    if (bytes === undefined) return Effect.succeed(Layout.emptyMeta(context.schema.fingerprint))
    const meta = Layout.decodeMeta(bytes)
    return meta.fingerprint === context.schema.fingerprint
      ? Effect.succeed(meta)
      : Effect.fail(new SchemaMismatch({ field: "schema", stored: meta.fingerprint, given: context.schema.fingerprint }))
  })

/** A term's dictionary state during one operation (a class: one shape for every term). */
class TermState implements Layout.TermEntry {
  df: number
  stamp: number
  chunks: number
  tailFirst: number
  tail: Uint8Array | undefined
  tailPositions: Uint8Array | undefined
  /** The entry's bytes once an append encoded them (the tail fields are stale then). */
  encoded: Uint8Array | undefined = undefined
  changed = false

  constructor(readonly key: Uint8Array, readonly existed: boolean, readonly text: boolean, entry: Layout.TermEntry) {
    this.df = entry.df
    this.stamp = entry.stamp
    this.chunks = entry.chunks
    this.tailFirst = entry.tailFirst
    this.tail = entry.tail
    this.tailPositions = entry.tailPositions
  }
}

/** A numeric block during one operation. */
interface BlockState {
  readonly key: Uint8Array
  readonly existed: boolean
  readonly block: Layout.NumericBlock
}

/** One operation: its view, the meta it updates, its loaded state and its writes. */
interface Operation {
  readonly context: EngineContext
  readonly view: StoreView
  readonly meta: Layout.Meta
  readonly terms: Map<string, TermState>
  readonly blocks: Map<string, BlockState>
  readonly writes: Writes
}

const fieldTotals = (context: EngineContext, meta: Layout.Meta, fieldIndex: number): Layout.FieldTotals => {
  const name = context.schema.byIndex[fieldIndex]!.name
  return (meta.fields[name] ??= { docs: 0, length: 0 })
}

/** Loads the entries of terms not loaded yet (absent terms start empty). */
const loadTerms = (operation: Operation, ids: ReadonlyArray<string>): Effect.Effect<void, ReadError> => {
  const missing = ids.filter((id) => !operation.terms.has(id))
  const keys = missing.map(Layout.termKey)
  return Effect.map(readMany(operation.view, operation.context.namespaces.terms, keys), (stored) => {
    missing.forEach((id, i) => {
      const bytes = stored[i]
      const entry = bytes === undefined ? Layout.emptyEntry(0) : Layout.decodeEntry(bytes)
      const text = operation.context.schema.byIndex[Layout.termIdField(id)]?.type === "text"
      operation.terms.set(id, new TermState(keys[i]!, bytes !== undefined, text, entry))
    })
  })
}

/** Loads numeric blocks not loaded yet. */
const loadBlocks = (operation: Operation, keys: ReadonlyArray<Uint8Array>): Effect.Effect<void, ReadError> => {
  const missing = keys.filter((key) => !operation.blocks.has(latin1(key)))
  return Effect.map(readMany(operation.view, operation.context.namespaces.numeric, missing), (stored) => {
    missing.forEach((key, i) => {
      const bytes = stored[i]
      operation.blocks.set(latin1(key), { key, existed: bytes !== undefined, block: bytes === undefined ? Layout.emptyBlock() : Layout.decodeBlock(bytes) })
    })
  })
}

/** Sets or clears numeric values in their blocks. */
const setNumbers = (
  operation: Operation,
  values: ReadonlyArray<readonly [doc: number, field: number, value: number | undefined]>
): Effect.Effect<void, ReadError> => {
  const keys = values.map(([doc, field]) => Layout.numericKey(field, Layout.blockOf(doc)[0]))
  return Effect.map(loadBlocks(operation, keys), () => {
    values.forEach(([doc, , value], i) => Layout.setSlot(operation.blocks.get(latin1(keys[i]!))!.block, Layout.blockOf(doc)[1], value))
  })
}

// ---------------------------------------------------------------------------------------------
// Removing

/** Postings to remove: term id → chunk key → doc numbers. */
type Removals = Map<string, Map<number, Set<number>>>

const groupRemovals = (forwards: ReadonlyArray<readonly [number, Layout.Forward]>): Removals => {
  const removals: Removals = new Map()
  for (const [doc, forward] of forwards) {
    for (const [key, chunk] of forward.terms) {
      const id = Buffer.from(key).toString("utf8")
      let chunks = removals.get(id)
      if (chunks === undefined) removals.set(id, (chunks = new Map()))
      let docs = chunks.get(chunk)
      if (docs === undefined) chunks.set(chunk, (docs = new Set()))
      docs.add(doc)
    }
  }
  return removals
}

/** Removes postings from a term's tail. */
const removeFromTail = (state: TermState, docs: ReadonlySet<number>): void => {
  if (state.tail === undefined) throw new Error("search index: a forward record points at an empty tail")
  const { builder, removedCount } = withoutDocs(state.tailFirst, state.tail, state.text ? state.tailPositions ?? EMPTY : undefined, docs)
  state.df -= removedCount
  if (builder.count === 0) {
    state.tailFirst = 0
    state.tail = undefined
    state.tailPositions = undefined
  } else {
    state.tail = builder.chunk()
    state.tailPositions = builder.positionsRecord()
  }
}

/** Removes the postings of removed documents, from tails and sealed chunks. */
const removePostings = (operation: Operation, removals: Removals): Effect.Effect<void, ReadError> =>
  Effect.gen(function*() {
    const { namespaces } = operation.context
    yield* loadTerms(operation, [...removals.keys()])
    const sealed: Array<readonly [string, number]> = []
    for (const [id, chunks] of removals) {
      const state = operation.terms.get(id)!
      if (!state.existed) throw new Error("search index: missing dictionary entry of an indexed term")
      state.changed = true
      for (const first of chunks.keys()) if (first !== state.tailFirst) sealed.push([id, first])
    }
    const keys = sealed.map(([id, first]) => Layout.chunkKey(id, first))
    const chunks = yield* readMany(operation.view, namespaces.postings, keys)
    const positions = yield* readMany(operation.view, namespaces.positions, keys)
    // Terms left with a chunk under half full, worth merging with its neighbours (`mergeChunks`): marked once each.
    const thinned = new Set<TermState>()
    sealed.forEach(([id, first], j) => {
      const state = operation.terms.get(id)!
      const chunk = chunks[j]
      if (chunk === undefined) throw new Error(`search index: missing chunk ${first} of a term`)
      const { builder, removedCount } = withoutDocs(first, chunk, state.text ? positions[j] ?? EMPTY : undefined, removals.get(id)!.get(first)!)
      state.df -= removedCount
      if (builder.count === 0) {
        operation.writes.delete(namespaces.postings, keys[j]!)
        if (state.text) operation.writes.delete(namespaces.positions, keys[j]!)
        state.chunks--
        return
      }
      operation.writes.put(namespaces.postings, keys[j]!, builder.chunk())
      if (state.text) operation.writes.put(namespaces.positions, keys[j]!, builder.positionsRecord()!)
      if (builder.count < THIN_POSTINGS) thinned.add(state)
    })
    for (const state of thinned) operation.writes.put(namespaces.thin, state.key, EMPTY)
    for (const [id, chunks] of removals) {
      const state = operation.terms.get(id)!
      const inTail = chunks.get(state.tailFirst)
      if (inTail !== undefined && state.tailFirst !== 0) removeFromTail(state, inTail)
    }
  })

/** The forward records of documents that must have one (a missing one is a defect), with their keys. */
const readForwards = (operation: Operation, docs: ReadonlyArray<number>) => {
  const keys = docs.map(Layout.numberKey)
  return Effect.map(readMany(operation.view, operation.context.namespaces.forward, keys), (stored) =>
    docs.map((doc, i) => {
      if (stored[i] === undefined) throw new Error(`search index: missing forward record of doc ${doc}`)
      return { doc, key: keys[i]!, forward: Layout.decodeForward(doc, stored[i]!) }
    }))
}

/**
 * Removes documents by doc number: postings, numeric values and forward records, and their
 * share of the statistics. The caller deletes or overwrites their `docs` records.
 */
const removeDocs = (operation: Operation, docs: ReadonlyArray<number>): Effect.Effect<void, ReadError> =>
  Effect.gen(function*() {
    if (docs.length === 0) return
    const { namespaces } = operation.context
    const read = yield* readForwards(operation, docs)
    const forwards = read.map(({ doc, forward }) => [doc, forward] as const)
    const numbers: Array<readonly [number, number, number | undefined]> = []
    for (const [doc, forward] of forwards) {
      for (const [field, length] of forward.lengths) {
        const totals = fieldTotals(operation.context, operation.meta, field)
        totals.docs--
        totals.length -= length
      }
      for (const [field] of forward.numbers) numbers.push([doc, field, undefined])
    }
    yield* removePostings(operation, groupRemovals(forwards))
    yield* setNumbers(operation, numbers)
    for (const { key } of read) operation.writes.delete(namespaces.forward, key)
    operation.meta.docs -= docs.length
  })

// ---------------------------------------------------------------------------------------------
// Adding

/** The new postings of one term: parallel lists of doc numbers and the documents' term data. */
interface NewPostings {
  readonly docs: Array<number>
  readonly terms: Array<DocumentTerm>
}

/** Groups the new documents' postings by term, in doc order. */
const groupPostings = (docs: ReadonlyArray<readonly [number, AnalyzedDocument]>): Map<string, NewPostings> => {
  const byTerm = new Map<string, NewPostings>()
  for (const [doc, analyzed] of docs) {
    for (const [id, term] of analyzed.terms) {
      let list = byTerm.get(id)
      if (list === undefined) byTerm.set(id, (list = { docs: [], terms: [] }))
      list.docs.push(doc)
      list.terms.push(term)
    }
  }
  return byTerm
}

// Scratch encoders for the new postings of the term being appended. Appending a term never
// yields, so one pair serves every operation of the process.
const scratchBody = new ByteWriter(64 * 1024)
const scratchPositions = new ByteWriter(64 * 1024)

/**
 * Appends one term's new postings to its tail: a full tail is sealed into `postings` (and
 * `positions`) under its first doc number and a new tail opens. Sets each posting's chunk key
 * on the document's term, and the entry's new bytes on the state.
 */
const appendTerm = (operation: Operation, id: string, state: TermState, postings: NewPostings): void => {
  const { namespaces } = operation.context
  const body = scratchBody
  const positions = scratchPositions
  body.reset()
  positions.reset()
  let first = 0
  let count = 0
  let last = 0
  let baseBody: Uint8Array = EMPTY
  let basePositions: Uint8Array = EMPTY
  if (state.tail !== undefined) {
    const header = readHeader(state.tailFirst, state.tail)
    first = state.tailFirst
    count = header.count
    last = header.last
    baseBody = state.tail.subarray(header.bodyOffset)
    basePositions = state.tailPositions ?? EMPTY
  }
  for (let i = 0; i < postings.docs.length; i++) {
    const doc = postings.docs[i]!
    const term = postings.terms[i]!
    if (first === 0 || count >= CHUNK_POSTINGS_MAX || basePositions.length + positions.length >= CHUNK_POSITIONS_BYTES_MAX) {
      if (first !== 0) {
        const key = Layout.chunkKey(id, first)
        operation.writes.put(namespaces.postings, key, chunkRecord(count, last - first, [baseBody, body.view()]))
        if (state.text) operation.writes.put(namespaces.positions, key, concat([basePositions, positions.view()]))
        state.chunks++
      }
      first = doc
      count = 0
      baseBody = EMPTY
      basePositions = EMPTY
      body.reset()
      positions.reset()
    }
    if (doc <= last && count > 0) throw new Error(`postings out of order: ${doc} after ${last}`)
    body.uint(doc - (count === 0 ? first : last)).uint(term.tf).uint(term.length)
    if (state.text) {
      let previous = 0
      for (const position of term.positions!) {
        positions.uint(position - previous)
        previous = position
      }
    }
    count++
    last = doc
    term.chunk = first
    term.key = state.key
  }
  state.tailFirst = first
  state.df += postings.docs.length
  state.stamp = operation.meta.stamp
  state.changed = true
  state.encoded = Layout.encodeEntryParts(state, count, last - first, [baseBody, body.view()], [basePositions, positions.view()])
}

/** Appends new postings to their terms (setting each posting's chunk key on its document). */
const appendPostings = (operation: Operation, docs: ReadonlyArray<readonly [number, AnalyzedDocument]>): Effect.Effect<void, ReadError> =>
  Effect.suspend(() => {
    const byTerm = groupPostings(docs)
    return Effect.map(loadTerms(operation, [...byTerm.keys()]), () => {
      for (const [id, postings] of byTerm) appendTerm(operation, id, operation.terms.get(id)!, postings)
    })
  })

// ---------------------------------------------------------------------------------------------
// Operations

/** Starts an operation: reads meta and draws the new write stamp. */
const begin = (context: EngineContext, view: StoreView): Effect.Effect<Operation, ReadError | SchemaMismatch> =>
  Effect.map(readMeta(context, view), (meta) => {
    meta.stamp = newStamp()
    return { context, view, meta, terms: new Map(), blocks: new Map(), writes: new Writes() }
  })

/** Writes every changed entry and block, then meta (last), and flushes. */
const commit = (operation: Operation): Effect.Effect<void, WriteError> => {
  const { namespaces } = operation.context
  const { meta, writes } = operation
  let lexiconChanged = false
  for (const state of operation.terms.values()) {
    if (!state.changed) continue
    if (state.df > 0) {
      state.stamp = meta.stamp
      writes.put(namespaces.terms, state.key, state.encoded ?? Layout.encodeEntry(state))
      if (!state.existed) {
        writes.put(namespaces.lexicon, state.key, EMPTY)
        meta.terms++
        lexiconChanged = true
      }
    } else if (state.existed) {
      writes.delete(namespaces.terms, state.key)
      writes.delete(namespaces.lexicon, state.key)
      meta.terms--
      lexiconChanged = true
    }
  }
  for (const { key, existed, block } of operation.blocks.values()) {
    if (!Layout.isEmptyBlock(block)) writes.put(namespaces.numeric, key, Layout.encodeBlock(block))
    else if (existed) writes.delete(namespaces.numeric, key)
  }
  if (lexiconChanged) meta.lexicon = newStamp()
  writes.put(namespaces.meta, META_KEY, Layout.encodeMeta(meta))
  return writes.flush(operation.view)
}

/**
 * Adds documents (already validated, analyzed and free of duplicate ids) under new doc numbers,
 * first removing any previous version of each. Returns whether each replaced one.
 */
export const addDocs = (
  context: EngineContext,
  view: StoreView,
  documents: ReadonlyArray<AnalyzedDocument>
): Effect.Effect<ReadonlyArray<boolean>, ReadError | WriteError | SchemaMismatch> =>
  Effect.gen(function*() {
    const { namespaces } = context
    const operation = yield* begin(context, view)
    const { meta, writes } = operation
    const idKeys = documents.map((document) => utf8(document.id))
    const stored = yield* readMany(view, namespaces.docs, idKeys)
    const previous = stored.map((bytes) => (bytes === undefined ? undefined : Layout.documentNumber(bytes)))
    yield* removeDocs(operation, previous.filter((doc): doc is number => doc !== undefined))
    const numbered = documents.map((document): readonly [number, AnalyzedDocument] => [meta.nextDoc++, document])
    yield* appendPostings(operation, numbered)
    const numbers: Array<readonly [number, number, number | undefined]> = []
    numbered.forEach(([doc, document], i) => {
      for (const [field, value] of document.numbers) numbers.push([doc, field, value])
      for (const [field, length] of document.lengths) {
        const totals = fieldTotals(context, meta, field)
        totals.docs++
        totals.length += length
      }
      writes.put(namespaces.docs, idKeys[i]!, Layout.encodeDocument(doc, document.json))
      const forward = Layout.encodeForward(doc, { id: document.id, lengths: document.lengths, numbers: document.numbers }, document.terms.size, (write) => {
        for (const term of document.terms.values()) write(term.key!, term.chunk)
      })
      writes.put(namespaces.forward, Layout.numberKey(doc), forward)
    })
    yield* setNumbers(operation, numbers)
    meta.docs += documents.length
    yield* commit(operation)
    return previous.map((doc) => doc !== undefined)
  })

/** Removes a document by id; returns whether it existed. */
export const removeById = (
  context: EngineContext,
  view: StoreView,
  id: string
): Effect.Effect<boolean, ReadError | WriteError | SchemaMismatch> =>
  Effect.gen(function*() {
    const idKey = utf8(id)
    const stored = yield* view.get(context.namespaces.docs, idKey)
    if (stored === undefined) return false
    const operation = yield* begin(context, view)
    yield* removeDocs(operation, [Layout.documentNumber(stored)])
    operation.writes.delete(context.namespaces.docs, idKey)
    yield* commit(operation)
    return true
  })

// ---------------------------------------------------------------------------------------------
// Merging thinned chunks

/** Bounds of one `mergeChunks` step (one atomic write set). */
export interface MergeBudget {
  /** Sealed chunks read, at most (default 1,024). */
  readonly chunksMax?: number | undefined
  /**
   * Postings moved to another chunk (each rewrites its document's forward record): no page of
   * chunks is begun past this many (default 4,096), so a step moves at most this plus one page's
   * worth (64 chunks).
   */
  readonly movedMax?: number | undefined
}

/** Chunks read per store scan while merging. */
const MERGE_PAGE = 64

/** A sealed chunk as read for merging. */
interface SealedChunk {
  readonly key: Uint8Array
  readonly first: number
  readonly bytes: Uint8Array
  readonly count: number
  readonly positions: Uint8Array | undefined
}

/**
 * Merges runs of neighbouring sealed chunks of one term that fit in one chunk together, in this
 * page; records each moved posting's new chunk in `moves` (doc → term key → chunk). When more
 * chunks may follow (`last` false), the run still open at the page's end is left for the next
 * page (which starts at `resume`), so runs are not cut at page boundaries; a run that fills the
 * whole page is merged now. Answers the chunks that went away, the postings moved and where the
 * next page starts.
 */
const mergePage = (
  operation: Operation,
  state: TermState,
  page: ReadonlyArray<SealedChunk>,
  last: boolean,
  moves: Map<number, Map<string, number>>
): { readonly merged: number; readonly moved: number; readonly resume: number } => {
  const { namespaces } = operation.context
  const termKey = latin1(state.key)
  let merged = 0
  let moved = 0
  const close = (group: ReadonlyArray<SealedChunk>) => {
    if (group.length < 2) return
    const target = group[0]!
    const builder = new ChunkBuilder(target.first, state.text)
    for (const chunk of group) {
      const postings = decodeChunk(chunk.first, chunk.bytes)
      const positions = state.text ? decodePositions(chunk.positions ?? EMPTY, postings.tfs) : undefined
      for (let i = 0; i < postings.docs.length; i++) {
        const doc = postings.docs[i]!
        builder.add(doc, postings.tfs[i]!, postings.lengths[i]!, positions?.values.subarray(positions.offsets[i]!, positions.offsets[i + 1]!))
        if (chunk === target) continue
        let terms = moves.get(doc)
        if (terms === undefined) moves.set(doc, (terms = new Map()))
        terms.set(termKey, target.first)
        moved++
      }
      if (chunk === target) continue
      operation.writes.delete(namespaces.postings, chunk.key)
      if (state.text) operation.writes.delete(namespaces.positions, chunk.key)
    }
    operation.writes.put(namespaces.postings, target.key, builder.chunk())
    if (state.text) operation.writes.put(namespaces.positions, target.key, builder.positionsRecord()!)
    state.chunks -= group.length - 1
    state.changed = true
    merged += group.length - 1
  }
  // Greedy, in doc order: a run grows while its postings and positions still fit in one chunk.
  let group: Array<SealedChunk> = []
  let count = 0
  let positionBytes = 0
  for (const chunk of page) {
    const bytes = chunk.positions?.length ?? 0
    if (group.length > 0 && (count + chunk.count > CHUNK_POSTINGS_MAX || positionBytes + bytes > CHUNK_POSITIONS_BYTES_MAX)) {
      close(group)
      group = []
      count = 0
      positionBytes = 0
    }
    group.push(chunk)
    count += chunk.count
    positionBytes += bytes
  }
  if (!last && group.length < page.length) return { merged, moved, resume: group[0]!.first }
  close(group)
  return { merged, moved, resume: page[page.length - 1]!.first + 1 }
}

/** Rewrites the forward records of moved postings to name their new chunks. */
const rewriteForwards = (operation: Operation, moves: Map<number, Map<string, number>>): Effect.Effect<void, ReadError> =>
  Effect.map(readForwards(operation, [...moves.keys()]), (forwards) => {
    for (const { doc, key, forward } of forwards) {
      const changed = moves.get(doc)!
      operation.writes.put(operation.context.namespaces.forward, key, Layout.encodeForward(doc, forward, forward.terms.length, (write) => {
        for (const [term, chunk] of forward.terms) write(term, changed.get(latin1(term)) ?? chunk)
      }))
    }
  })

/**
 * One bounded step of merging: for the terms marked thin by removals, in key order, merges runs
 * of neighbouring sealed chunks that fit in one chunk together, and points the moved postings'
 * forward records at their new chunks. Results of every query are unchanged; a term read by
 * queries costs fewer chunks. A term not finished within the budget keeps its mark with the doc
 * number to resume from. Writes nothing when no term is marked.
 */
export const mergeChunks = (
  context: EngineContext,
  view: StoreView,
  budget: MergeBudget = {}
): Effect.Effect<MergeOutcome, ReadError | WriteError | SchemaMismatch> =>
  Effect.gen(function*() {
    const { namespaces } = context
    const chunksMax = budget.chunksMax ?? 1_024
    const movedMax = budget.movedMax ?? 4_096
    // One term per chunk of budget at most: every term costs at least one scan.
    const termsMax = Math.max(1, Math.min(chunksMax, 1_000))
    const marked = yield* view.scan(namespaces.thin, { limit: termsMax })
    if (marked.length === 0) return { merged: 0, more: false }
    const operation = yield* begin(context, view)
    // Every marked term's entry in one read; a term the budget does not reach stays unchanged.
    yield* loadTerms(operation, marked.map(({ key }) => fromUtf8(key)))
    const moves = new Map<number, Map<string, number>>()
    let read = 0
    let moved = 0
    let merged = 0
    let finished = 0
    // Bounded: each round reads at least one chunk page or finishes a term, within the budget.
    for (const { key, value } of marked) {
      if (read >= chunksMax || moved >= movedMax) break
      const id = fromUtf8(key)
      const state = operation.terms.get(id)!
      const prefix = Layout.chunkPrefix(id)
      let from = value.length === 8 ? Layout.decodeNumber(value) : 0
      let done = !state.existed
      while (!done && read < chunksMax && moved < movedMax) {
        const limit = Math.min(MERGE_PAGE, chunksMax - read)
        const entries = yield* view.scan(namespaces.postings, { gte: Layout.chunkKey(id, from), lt: prefixSuccessor(prefix)!, limit })
        read += entries.length
        const positions = state.text ? yield* readMany(view, namespaces.positions, entries.map((entry) => entry.key)) : []
        const page = entries.map((entry, i): SealedChunk => {
          const first = Layout.chunkKeyFirst(entry.key)
          return { key: entry.key, first, bytes: entry.value, count: readHeader(first, entry.value).count, positions: positions[i] }
        })
        done = entries.length < limit
        if (page.length === 0) break
        const step = mergePage(operation, state, page, done, moves)
        merged += step.merged
        moved += step.moved
        from = step.resume
      }
      if (done) {
        operation.writes.delete(namespaces.thin, key)
        finished++
      } else {
        operation.writes.put(namespaces.thin, key, Layout.numberKey(from))
      }
    }
    yield* rewriteForwards(operation, moves)
    yield* commit(operation)
    return { merged, more: finished < marked.length || marked.length === termsMax }
  })
