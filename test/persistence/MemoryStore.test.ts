/**
 * The memory backend against the shared conformance suite.
 */
import * as MemoryStore from "../../persistence/MemoryStore.js"
import { suite } from "../conformance/StoreSuite.js"

suite("memory backend", () => MemoryStore.layer)
