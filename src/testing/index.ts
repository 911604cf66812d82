/**
 * chunked-backup/testing: for authors of other backend layers and for
 * property tests. The conformance suites every ObjectStore and
 * BackupCatalog layer must pass (they register @effect/vitest tests: call
 * them at a test file's top level), and the fast-check arbitraries the
 * project's own property tests use.
 */
export { objectStoreConformance, type ConformanceOptions } from "./objectStoreConformance.js"
export { catalogConformance } from "./catalogConformance.js"
export { applyEdits, chains, chainStates, compressionName, edits, sizes, volumeBytes, type ChainPlan, type Edit } from "./arbitraries.js"
