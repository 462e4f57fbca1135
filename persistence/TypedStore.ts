/**
 * Typed values over the byte store: an Effect Schema codec turns `KeyValueStore` bytes into
 * values of one type for one namespace. A stored value that fails to decode is a typed
 * `ValueDecodeError` naming the key, never a crash; a value that fails to encode is an
 * `InvalidArgument` and nothing is written.
 */
import { Effect, Schema, Stream } from "effect"
import { fromBytes, toBytes } from "./internal/bytes.js"
import { type Bytes, KeyValueStore, type ScanOptions, type WriteOptions } from "./KeyValueStore.js"
import { InvalidArgument, type ReadError, ValueDecodeError, type WriteError } from "./StoreError.js"

/** Converts values of `A` to and from bytes. */
export interface ValueCodec<A> {
  readonly encode: (value: A) => Effect.Effect<Uint8Array, InvalidArgument>
  readonly decode: (bytes: Uint8Array, namespace: string, key: string) => Effect.Effect<A, ValueDecodeError>
}

const keyText = (key: Bytes): string => (typeof key === "string" ? key : Buffer.from(key).toString("hex"))

/** A codec storing the schema's JSON encoding as UTF-8. */
export const jsonCodec = <S extends Schema.Codec<any, any, never, never>>(schema: S): ValueCodec<S["Type"]> => {
  const json = Schema.fromJsonString(schema)
  const encode = Schema.encodeEffect(json)
  const decode = Schema.decodeUnknownEffect(json)
  return {
    encode: (value) =>
      Effect.map(
        Effect.mapError(encode(value), (error) => new InvalidArgument({ field: "value", message: String(error.message) })),
        (text) => toBytes(text as string)
      ),
    decode: (bytes, namespace, key) =>
      Effect.mapError(decode(fromBytes(bytes)), (error) => new ValueDecodeError({ namespace, key, message: String(error.message) }))
  }
}

/** A codec over a schema whose encoded side is already bytes. */
export const binaryCodec = <S extends Schema.Codec<any, Uint8Array, never, never>>(schema: S): ValueCodec<S["Type"]> => {
  const encode = Schema.encodeEffect(schema)
  const decode = Schema.decodeUnknownEffect(schema)
  return {
    encode: (value) =>
      Effect.mapError(encode(value), (error) => new InvalidArgument({ field: "value", message: String(error.message) })),
    decode: (bytes, namespace, key) =>
      Effect.mapError(decode(bytes), (error) => new ValueDecodeError({ namespace, key, message: String(error.message) }))
  }
}

/** One namespace of typed values. */
export interface TypedNamespace<A> {
  readonly get: (partition: string, key: Bytes) => Effect.Effect<A | undefined, ReadError | ValueDecodeError, KeyValueStore>
  readonly put: (partition: string, key: Bytes, value: A, options?: WriteOptions) => Effect.Effect<void, WriteError, KeyValueStore>
  readonly delete: (partition: string, key: Bytes, options?: WriteOptions) => Effect.Effect<void, WriteError, KeyValueStore>
  readonly scan: (
    partition: string,
    options?: ScanOptions
  ) => Effect.Effect<ReadonlyArray<{ readonly key: Uint8Array; readonly value: A }>, ReadError | ValueDecodeError, KeyValueStore>
  readonly stream: (
    partition: string,
    options?: ScanOptions
  ) => Stream.Stream<{ readonly key: Uint8Array; readonly value: A }, ReadError | ValueDecodeError, KeyValueStore>
  /** The op that puts `value` in a batch, once encoded. */
  readonly putOp: (key: Bytes, value: A) => Effect.Effect<{ readonly op: "put"; readonly namespace: string; readonly key: Bytes; readonly value: Uint8Array }, InvalidArgument>
}

/** A namespace of typed values with `codec`. */
export const namespace = <A>(name: string, codec: ValueCodec<A>): TypedNamespace<A> => {
  const decodeEntry = (entry: { readonly key: Uint8Array; readonly value: Uint8Array }) =>
    Effect.map(codec.decode(entry.value, name, keyText(entry.key)), (value) => ({ key: entry.key, value }))
  return {
    get: (partition, key) =>
      Effect.flatMap(KeyValueStore, (store) =>
        Effect.flatMap(store.get(partition, name, key), (bytes) =>
          bytes === undefined ? Effect.succeed(undefined) : codec.decode(bytes, name, keyText(key)))),
    put: (partition, key, value, options) =>
      Effect.flatMap(codec.encode(value), (bytes) =>
        Effect.flatMap(KeyValueStore, (store) => store.put(partition, name, key, bytes, options))),
    delete: (partition, key, options) => Effect.flatMap(KeyValueStore, (store) => store.delete(partition, name, key, options)),
    scan: (partition, options) =>
      Effect.flatMap(KeyValueStore, (store) =>
        Effect.flatMap(store.scan(partition, name, options), (entries) => Effect.forEach(entries, decodeEntry))),
    stream: (partition, options) =>
      Stream.unwrap(Effect.map(KeyValueStore, (store) => Stream.mapEffect(store.stream(partition, name, options), decodeEntry))),
    putOp: (key, value) => Effect.map(codec.encode(value), (bytes) => ({ op: "put" as const, namespace: name, key, value: bytes }))
  }
}
