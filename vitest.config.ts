import { defineConfig } from "vitest/config"
import { BaseSequencer, type TestSpecification } from "vitest/node"

/**
 * Tests that hold wall-clock bounds (a cross-host cancel within 500 ms, a
 * signal taking effect within a second, a catalog outage noticed in time,
 * throughput over a slow link).
 * They run after the rest, one file at a time, so no other test file
 * competes with them for the two cores.
 */
const timed = [
  "test/fleet/fleet.test.ts",
  "test/cli/signals.test.ts",
  "test/cli/cli.test.ts",
  "test/catalog/pg.test.ts",
  "test/catalog/catalog.test.ts",
  "test/nbd/client.test.ts",
  "test/store/bad-network.test.ts"
]

/**
 * Files that run for a minute or more (the soak's 3 minutes first). Without
 * a results cache (a fresh clone) vitest starts the largest files first,
 * and the soak, a small file, ran last and alone for 3 minutes.
 */
const longest = [
  "test/soak/soak.test.ts",
  "test/store/crashed-servers.test.ts",
  "test/store/outages.test.ts",
  "test/driver/many-objects.test.ts",
  "test/cli/copy.test.ts",
  "test/package/installed.test.ts",
  "test/store/tls.test.ts",
  "test/cli/crash-consistency.test.ts",
  "test/golden/cinder.test.ts"
]

class LongestFirst extends BaseSequencer {
  override async sort(files: Array<TestSpecification>) {
    const rank = (file: TestSpecification) => {
      const at = longest.findIndex((path) => file.moduleId.endsWith(path))
      return at === -1 ? longest.length : at
    }
    // Array.prototype.sort is stable: the rest keep vitest's order.
    return (await super.sort(files)).sort((a, b) => rank(a) - rank(b))
  }
}

const common = {
  // Generous: a hang still fails, a slow machine running two files at once does not.
  testTimeout: 120_000,
  hookTimeout: 120_000
}

export default defineConfig({
  test: {
    // Two files at once (vitest's default on two cores is one): most files wait on servers and child processes.
    maxWorkers: 2,
    minWorkers: 1,
    sequence: { sequencer: LongestFirst },
    projects: [
      {
        test: {
          ...common,
          name: "parallel",
          include: ["test/**/*.test.ts", "examples/**/*.test.ts"],
          exclude: timed,
          sequence: { groupOrder: 0 }
        }
      },
      {
        test: {
          ...common,
          name: "timed",
          include: timed,
          // One process runs these files one after another.
          poolOptions: { forks: { singleFork: true } },
          sequence: { groupOrder: 1 }
        }
      }
    ]
  }
})
