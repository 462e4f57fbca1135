/**
 * Where the generic features live inside plain namespaces, identically on every backend:
 * topic entries, topic positions and versioned values use reserved namespaces whose names start
 * with U+0000, which user namespaces may not. Keeping this in one module means a backend only has
 * to know `topicEntryKey` and `positionKey` to carry out an `Append`.
 */
import { concat, readUint64, toBytes, uint64, writeUint64 } from "./bytes.js"

/** Namespace of all topic entries of a partition: key = length-prefixed topic + uint64 index. */
export const TOPIC_NAMESPACE = "\u0000t"
/** Namespace of topic positions: key = topic (UTF-8), value = last index as decimal ASCII. */
export const POSITION_NAMESPACE = "\u0000p"
/** Namespace of versioned values: key = length-prefixed namespace + length-prefixed key + uint64 timestamp. */
export const VERSION_NAMESPACE = "\u0000v"

/** Whether a namespace name is reserved for the store's own layout. */
export const isReserved = (namespace: string): boolean => namespace.charCodeAt(0) === 0

/** Two-byte big-endian length followed by the bytes: a prefix-free encoding. */
export const lengthPrefixed = (bytes: Uint8Array): Uint8Array => {
  const out = new Uint8Array(2 + bytes.length)
  out[0] = bytes.length >>> 8
  out[1] = bytes.length & 0xff
  out.set(bytes, 2)
  return out
}

/** The common prefix of every entry key of a topic. */
export const topicPrefix = (topic: string): Uint8Array => lengthPrefixed(toBytes(topic))

/** The key of one topic entry. */
export const topicEntryKey = (prefix: Uint8Array, index: number): Uint8Array => {
  const out = new Uint8Array(prefix.length + 8)
  out.set(prefix, 0)
  writeUint64(out, prefix.length, index)
  return out
}

/** The index encoded at the end of a topic entry key. */
export const topicEntryIndex = (key: Uint8Array): number => readUint64(key, key.length - 8)

/** The key under which a topic's position is kept. */
export const positionKey = (topic: string): Uint8Array => toBytes(topic)

/** Encodes a position value. */
export const encodePosition = (position: number): Uint8Array => toBytes(String(position))

/** Decodes a position value (absent = 0). */
export const decodePosition = (value: Uint8Array | undefined): number =>
  value === undefined ? 0 : Number(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString("latin1"))

/** The common prefix of every version of one key. */
export const versionPrefix = (namespace: string, key: Uint8Array): Uint8Array =>
  concat([lengthPrefixed(toBytes(namespace)), lengthPrefixed(key)])

/** The key of one version. */
export const versionKey = (prefix: Uint8Array, timestamp: number): Uint8Array => concat([prefix, uint64(timestamp)])

/** The timestamp encoded at the end of a version key. */
export const versionTimestamp = (key: Uint8Array): number => readUint64(key, key.length - 8)
