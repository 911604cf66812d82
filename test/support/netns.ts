/**
 * Network namespaces for the fleet test's hosts: each host gets its own
 * namespace joined by a veth pair to the root namespace, which runs
 * PostgreSQL and Swift on 127.0.0.1. A relay in the host's namespace
 * listens on its 127.0.0.1 for the servers' ports (Swift hands out
 * 127.0.0.1 storage URLs) and forwards over the veth to a relay on the root
 * side, which forwards to the servers: every byte between host and servers
 * crosses the veth. Everything is removed when the scope closes; where
 * `ip netns` is not permitted, `hostNamespaces` gives undefined.
 */
import { Effect } from "effect"
import { execFileSync, spawn, type ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import { fileURLToPath } from "node:url"

const RELAY = fileURLToPath(new URL("./tcpRelay.mjs", import.meta.url))

const ip = (...args: ReadonlyArray<string>) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] })

/** Starts a relay (optionally inside `namespace`) and waits for it to listen. */
const relay = (namespace: string | undefined, listen: string, target: string, ports: ReadonlyArray<number>) =>
  Effect.acquireRelease(
    Effect.async<ChildProcess, Error>((resume) => {
      const command = [process.execPath, RELAY, listen, target, ...ports.map(String)]
      const child = namespace === undefined
        ? spawn(command[0]!, command.slice(1), { stdio: ["ignore", "pipe", "inherit"] })
        : spawn("ip", ["netns", "exec", namespace, ...command], { stdio: ["ignore", "pipe", "inherit"] })
      child.stdout!.once("data", () => resume(Effect.succeed(child)))
      child.once("exit", (code) => resume(Effect.fail(new Error(`relay exited with ${code}`))))
    }),
    (child) => Effect.sync(() => child.kill("SIGKILL"))
  )

export interface HostNamespace {
  readonly name: string
  /** The argv prefix that runs a command inside the namespace. */
  readonly exec: ReadonlyArray<string>
}

/** One namespace per host (10.231.0.0/24, a /30 each), relaying `ports`; undefined where namespaces are not permitted. */
export const hostNamespaces = (count: number, ports: ReadonlyArray<number>) =>
  Effect.gen(function* () {
    const tag = randomBytes(3).toString("hex")
    const probe = `cb-probe-${tag}`
    try {
      ip("netns", "add", probe)
      ip("netns", "del", probe)
    } catch {
      return undefined
    }
    const hosts: Array<HostNamespace> = []
    for (let i = 0; i < count; i++) {
      const name = `cb-fleet-${tag}-${i}`
      const [outside, inside] = [`cbf${tag}${i}a`, `cbf${tag}${i}b`]
      const [rootAddress, hostAddress] = [`10.231.0.${4 * i + 1}`, `10.231.0.${4 * i + 2}`]
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          ip("netns", "add", name)
          ip("link", "add", outside, "type", "veth", "peer", "name", inside)
          ip("link", "set", inside, "netns", name)
          ip("addr", "add", `${rootAddress}/30`, "dev", outside)
          ip("link", "set", outside, "up")
          ip("-n", name, "addr", "add", `${hostAddress}/30`, "dev", inside)
          ip("-n", name, "link", "set", inside, "up")
          ip("-n", name, "link", "set", "lo", "up")
        }),
        () => Effect.sync(() => {
          // deleting the namespace deletes its end of the veth, and so the pair
          try { ip("netns", "del", name) } catch { /* already gone */ }
          try { ip("link", "del", outside) } catch { /* went with the namespace */ }
        })
      )
      yield* relay(undefined, rootAddress, "127.0.0.1", ports)
      yield* relay(name, "127.0.0.1", rootAddress, ports)
      hosts.push({ name, exec: ["ip", "netns", "exec", name] })
    }
    return hosts
  })
