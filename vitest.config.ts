import { defineConfig } from "vitest/config"

/**
<<<<<<< HEAD
 * Tests that hold tight wall-clock bounds (a cross-host cancel within
 * 500 ms, a signal taking effect within a second, a catalog outage noticed
 * in time). Looser bounds (seconds, to tell "not retried" from "retried")
 * stay in the parallel project.
=======
 * Tests that hold wall-clock bounds (a cross-host cancel within 500 ms, a
 * signal taking effect within a second, a catalog outage noticed in time,
 * throughput over a slow link).
>>>>>>> badnet
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
