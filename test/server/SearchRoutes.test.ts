/**
 * Goal: the search routes follow HTTP-API.md: documents by id, searches with every parameter,
 * the index's size, and typed errors naming the field with nothing written.
 * Method: a node on a temp LevelDB directory, driven with fetch.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest"
import { call, startNode, type TestNode } from "./support.js"

describe("search routes", () => {
  let node: TestNode
  beforeAll(async () => {
    node = await startNode()
  })
  afterAll(() => node.close())

  const put = (index: string, id: string, document: unknown) => call(node.base, "PUT", `/v1/indexes/${index}/docs/${encodeURIComponent(id)}`, document)
  const search = (index: string, query: string) => call(node.base, "GET", `/v1/indexes/${index}/search?${query}`)

  it("indexes, gets, searches, replaces and removes documents with the contract's shapes", async () => {
    expect((await put("books", "1", { title: "The Black Cat", body: "a black cat and a dog", tags: ["horror"], year: 1843 })).body).toEqual({ id: "1" })
    expect((await put("books", "2", { title: "White Dog", body: "the dog barked at the cat", tags: ["fable"], year: 1900 })).body).toEqual({ id: "2" })
    expect((await put("books", "a/b é", { title: "Cats", body: "catalogue", tags: [], year: 2000 })).body).toEqual({ id: "a/b é" })

    const cats = await search("books", "q=cat")
    expect(cats.status).toBe(200)
    expect(cats.body.total).toBe(2)
    expect(cats.body.hits.map((hit: { id: string }) => hit.id)).toEqual(["1", "2"])
    expect(cats.body.hits[0].score).toBeGreaterThan(cats.body.hits[1].score)

    expect((await search("books", "q=%22black%20cat%22")).body.hits.map((hit: { id: string }) => hit.id)).toEqual(["1"])
    expect((await search("books", "q=cat&prefix=true")).body.total).toBe(3)
    expect((await search("books", "q=cat&prefix=true&filter=year:1800..1950&filter=tags:fable")).body.hits.map((hit: { id: string }) => hit.id)).toEqual(["2"])
    expect((await search("books", "q=dgo&fuzzy=2")).body.total).toBe(2)
    expect((await search("books", "q=cat%20-dog")).body.total).toBe(0)
    expect((await search("books", "q=cat%20OR%20catalogue&limit=1&offset=1")).body.hits.length).toBe(1)
    expect((await search("books", "q=black&fields=body")).body.total).toBe(1)
    expect((await search("books", "q=title:dog")).body.hits.map((hit: { id: string }) => hit.id)).toEqual(["2"])

    expect((await call(node.base, "GET", "/v1/indexes/books/docs/1")).body).toEqual({ title: "The Black Cat", body: "a black cat and a dog", tags: ["horror"], year: 1843 })
    expect((await call(node.base, "GET", "/v1/indexes/books")).body).toMatchObject({ docs: 3 })

    await put("books", "1", { title: "Gone", body: "nothing here", tags: [], year: 1 })
    expect((await search("books", "q=cat")).body.hits.map((hit: { id: string }) => hit.id)).toEqual(["2"])
    expect((await call(node.base, "DELETE", "/v1/indexes/books/docs/2")).body).toEqual({ removed: true })
    expect((await call(node.base, "DELETE", "/v1/indexes/books/docs/2")).body).toEqual({ removed: false })
    expect((await search("books", "q=cat")).body).toEqual({ total: 0, hits: [] })
    const gone = await call(node.base, "GET", "/v1/indexes/books/docs/2")
    expect(gone.status).toBe(404)
    expect(gone.body.error.code).toBe("DocumentNotFound")
    expect((await call(node.base, "GET", "/v1/indexes/books")).body.docs).toBe(2)
  })

  it("creates an index with declared fields and keeps its definition", async () => {
    const definition = { fields: { title: { type: "text", boost: 2 }, body: { type: "text", stopWords: "english" }, year: { type: "numeric" } }, partitions: 3 }
    const created = await call(node.base, "PUT", "/v1/indexes/declared", definition)
    expect(created.status).toBe(201)
    expect(created.body).toEqual({ index: "declared", created: true })
    expect((await call(node.base, "PUT", "/v1/indexes/declared", definition)).body).toEqual({ index: "declared", created: false })
    const conflict = await call(node.base, "PUT", "/v1/indexes/declared", { ...definition, partitions: 4 })
    expect(conflict.status).toBe(409)
    expect(conflict.body.error.code).toBe("IndexExists")
    await put("declared", "x", { title: "the theory", year: 3 })
    expect((await search("declared", "q=the")).body.total).toBe(1) // title keeps stop words
    expect((await search("declared", "q=body:the")).body.total).toBe(0)
  })

  it("answers bad input with typed errors naming the field, and writes nothing", async () => {
    await put("errors", "1", { title: "one", n: 1 })
    const cases: Array<[string, number, string, string]> = [
      ["q=one&fuzzy=3", 400, "InvalidQuery", "fuzzy"],
      ["q=one&limit=1001", 400, "InvalidQuery", "limit"],
      ["q=one&limit=abc", 400, "InvalidQuery", "limit"],
      ["q=one&offset=-1", 400, "InvalidQuery", "offset"],
      ["q=one&prefix=maybe", 400, "InvalidQuery", "prefix"],
      ["q=one&filter=nope:1", 400, "InvalidQuery", "filter"],
      ["q=one&fields=n", 400, "InvalidQuery", "fields"],
      ["q=%22one", 400, "InvalidQuery", "q"],
      ["q=one%20OR", 400, "InvalidQuery", "q"],
      ["q=nope:one", 400, "InvalidQuery", "q"],
      ["limit=3", 400, "InvalidQuery", "q"]
    ]
    for (const [query, status, code, field] of cases) {
      const answer = await search("errors", query)
      expect([query, answer.status, answer.body?.error?.code, answer.body?.error?.field]).toEqual([query, status, code, field])
    }
    const missing = await search("never", "q=x")
    expect([missing.status, missing.body.error.code]).toEqual([404, "IndexNotFound"])

    const badDocs: Array<[unknown, string]> = [
      [{ title: 5 }, "title"],
      [{ title: "x", extra: "y" }, "extra"],
      [{ title: "x", n: "not a number" }, "n"],
      [[1, 2], "document"]
    ]
    for (const [document, field] of badDocs) {
      const answer = await put("errors", "bad", document)
      expect([answer.status, answer.body.error.code, answer.body.error.field]).toEqual([400, "InvalidDocument", field])
    }
    expect((await call(node.base, "GET", "/v1/indexes/errors/docs/bad")).status).toBe(404)
    expect((await call(node.base, "GET", "/v1/indexes/errors")).body.docs).toBe(1)

    // A first document refused leaves no index behind; so does one with a reserved field name.
    const tooLong = await put("unborn", "a", { t: "x", k: ["a".repeat(300)] })
    expect([tooLong.status, tooLong.body.error.field]).toEqual([400, "k"])
    const reserved = await put("unborn", "a", { toString: "hello" })
    expect([reserved.status, reserved.body.error.field]).toEqual([400, "fields.toString"])
    expect((await call(node.base, "GET", "/v1/indexes/unborn")).status).toBe(404)
    // A definition that is no object is bad input, not a bug.
    for (const body of [undefined, null, [1]]) {
      const answer = await call(node.base, "PUT", "/v1/indexes/shapeless", body === undefined ? undefined : JSON.stringify(body))
      expect([answer.status, answer.body.error.field]).toEqual([400, "definition"])
    }

    const invalidDefinition = await call(node.base, "PUT", "/v1/indexes/bad-def", { fields: { t: { type: "text", boost: -1 } } })
    expect([invalidDefinition.status, invalidDefinition.body.error.code, invalidDefinition.body.error.field]).toEqual([400, "InvalidSchema", "fields.t.boost"])
    expect((await call(node.base, "GET", "/v1/indexes/bad-def")).status).toBe(404)
  })
})
