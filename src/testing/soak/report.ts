/**
 * The soak's summary as text, for people (the JSON line carries the same).
 */
import type { SoakReport } from "./soak.js"

/** The summary as text, after its JSON line. */
export const describeReport = (report: SoakReport) => {
  const lines = [`soak: seed ${report.seed}, ${report.seconds} s, ${report.violations} violation(s)`]
  for (const t of report.targets) {
    const ops = Object.entries(t.operations).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(", ")
    const total = Object.values(t.operations).reduce((a, b) => a + b, 0)
    lines.push(`  ${t.target} (${t.where}): ${t.steps} steps, ${total} operations in ${t.seconds} s (${ops})`)
    lines.push(`    faults: ${t.faults.kills} kill -9, ${t.faults.cancels} cancels; checks: ${t.checks.verifies} verify --full, ${t.checks.storeListings} store listings, ${t.checks.recordListings} record listings, ${t.checks.settles} settles`)
    lines.push(`    outcomes: ${Object.entries(t.outcomes).sort().map(([k, n]) => `${k} ${n}`).join(", ")}`)
    for (const v of t.violations) lines.push(`    VIOLATION step ${v.step}: ${v.what}`)
  }
  return lines.join("\n")
}
