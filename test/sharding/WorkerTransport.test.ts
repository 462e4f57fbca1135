/**
 * Goal: the worker transport keeps one sender's order across many batches in flight at once,
 * answers every message (a reply or a typed error), and bounds what waits for a peer: past its
 * queue a message is answered `Overloaded` at once, and the ones within it are still delivered.
 * Method: a receiving runtime (the probe entities of test/actors on the memory store) served on
 * a loopback port, and a peer connection to it in the same process, with small batches so that
 * thousands of messages are many batches, several in flight.
 */
import { Effect, Exit, Layer, ManagedRuntime, Scope } from "effect"
import { SocketServer } from "effect/socket"
import { strict as assert } from "node:assert"
import { describe, it } from "vitest"
import * as WorkerTransport from "../../sharding/WorkerTransport.js"
import { Probes, runtimeLayer } from "../actors/fixtures.js"
import { errorTag } from "../support/errorTag.js"

interface Recorded {
  readonly overlapped: boolean
  readonly outOfOrder: boolean
  readonly count: number
}

const withPeer = async (probes: Probes, limits: { readonly batchMax: number; readonly queueMax: number }, body: (peer: WorkerTransport.Peer) => Promise<void>) => {
  const receiver = ManagedRuntime.make(WorkerTransport.layerServer({ host: "127.0.0.1", port: 0 }).pipe(Layer.provideMerge(runtimeLayer(probes))))
  const scope = Effect.runSync(Scope.make())
  try {
    const server = await receiver.runPromise(SocketServer.SocketServer)
    const port = (server.address as { readonly port: number }).port
    const peer = await Effect.runPromise(WorkerTransport.connect({ host: "127.0.0.1", port }, limits).pipe(Scope.provide(scope)))
    await body(peer)
  } finally {
    await Effect.runPromise(Scope.close(scope, Exit.void))
    await receiver.dispose()
  }
}

/** Sends `Record` messages for `seqs` of one sender to entity `id`, all at once; resolves with their exits in send order. */
const sendAll = (peer: WorkerTransport.Peer, id: string, seqs: ReadonlyArray<number>) =>
  Promise.all(seqs.map((seq) =>
    new Promise<Exit.Exit<unknown, unknown>>((resolve) =>
      peer.send({ type: "probe", id, tag: "Record", payload: { sender: 1, seq }, deadline: Date.now() + 30_000, reply: resolve }))))

describe("the worker transport", () => {
  it("keeps one sender's order across many batches in flight, and answers every message", async () => {
    const probes = new Probes()
    await withPeer(probes, { batchMax: 7, queueMax: 10_000 }, async (peer) => {
      const seqs = Array.from({ length: 3_000 }, (_, seq) => seq)
      const exits = await sendAll(peer, "ordered", seqs)
      assert.equal(exits.filter(Exit.isSuccess).length, seqs.length, "every message answered with its reply")
      const replies = exits.map((exit) => (exit as Exit.Success<Recorded>).value)
      assert.equal(replies.filter((reply) => reply.outOfOrder).length, 0, "handled in send order")
      assert.equal(probes.reorders, 0)
      assert.deepEqual(replies.map((reply) => reply.count), seqs.map((seq) => seq + 1), "each reply to its own message")
    })
  })

  it("answers Overloaded past its queue at once, and still delivers the messages within it", async () => {
    const probes = new Probes()
    await withPeer(probes, { batchMax: 10, queueMax: 50 }, async (peer) => {
      // All sent in one turn: the sender fiber has not taken any yet, so only 50 fit.
      const exits = await sendAll(peer, "flooded", Array.from({ length: 500 }, (_, seq) => seq))
      const overloaded = exits.filter((exit) => errorTag(exit) === "Overloaded").length
      const delivered = exits.filter(Exit.isSuccess).length
      assert.equal(overloaded + delivered, 500, "every message answered: a reply or Overloaded")
      assert.ok(delivered >= 50 && delivered < 500, `${delivered} delivered, ${overloaded} refused`)
      const counts = exits.filter(Exit.isSuccess).map((exit) => (exit.value as Recorded).count)
      assert.deepEqual(counts, counts.map((_, i) => i + 1), "the delivered ones in order, none twice")
    })
  })
})
