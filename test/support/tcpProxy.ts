/**
 * A TCP proxy on loopback for fault injection: it forwards every connection to `target`, and on
 * demand swallows what the target answers (the requests still arrive and run) and cuts every
 * connection — the "it ran, and the reply was lost" fault, which CLIENT KILL cannot time.
 */
import * as Net from "node:net"

export interface TcpProxy {
  readonly port: number
  /** While on, bytes from the target are dropped instead of forwarded. */
  readonly swallowReplies: (on: boolean) => void
  /** Bytes forwarded to the target so far (to tell when a request went through). */
  readonly forwarded: () => number
  /** Bytes from the target dropped so far (to tell when an answer was made, and lost). */
  readonly swallowed: () => number
  /** Destroys every open connection (both sides); answers how many. */
  readonly cutAll: () => number
  readonly close: () => Promise<void>
}

export const tcpProxy = async (target: { readonly host: string; readonly port: number }): Promise<TcpProxy> => {
  let swallowing = false
  let forwarded = 0
  let swallowed = 0
  const pairs = new Set<{ readonly client: Net.Socket; readonly upstream: Net.Socket }>()
  const server = Net.createServer((client) => {
    const upstream = Net.connect(target)
    const pair = { client, upstream }
    pairs.add(pair)
    client.setNoDelay(true)
    upstream.setNoDelay(true)
    client.on("data", (chunk) => {
      forwarded += chunk.length
      upstream.write(chunk)
    })
    upstream.on("data", (chunk) => {
      if (swallowing) swallowed += chunk.length
      else client.write(chunk)
    })
    const end = () => {
      pairs.delete(pair)
      client.destroy()
      upstream.destroy()
    }
    client.on("close", end)
    upstream.on("close", end)
    client.on("error", end)
    upstream.on("error", end)
  })
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
  return {
    port: (server.address() as Net.AddressInfo).port,
    swallowReplies: (on) => {
      swallowing = on
    },
    forwarded: () => forwarded,
    swallowed: () => swallowed,
    cutAll: () => {
      const cut = pairs.size
      for (const { client, upstream } of [...pairs]) {
        client.destroy()
        upstream.destroy()
      }
      pairs.clear()
      return cut
    },
    close: () => {
      for (const { client, upstream } of pairs) {
        client.destroy()
        upstream.destroy()
      }
      return new Promise((resolve) => server.close(() => resolve()))
    }
  }
}
