/**
 * shardfeed's public API. Each module is a namespace named after its main export, as in Effect:
 * `import { KeyValueStore, LevelStore } from "shardfeed"`.
 */
export * from "../persistence/index.js"
