/**
 * Network namespaces for the fleet test's hosts and the bad-network test:
 * each gets its own namespace joined to the root namespace (a veth pair, or
 * two TUN devices with a delaying, lossy forwarder between), which runs
 * PostgreSQL and Swift on 127.0.0.1. A relay in the host's namespace
 * listens on its 127.0.0.1 for the servers' ports (Swift hands out
 * 127.0.0.1 storage URLs) and forwards over the veth to a relay on the root
 * side, which forwards to the servers: every byte between host and servers
 * crosses the link. Everything is removed when the scope closes; where
 * `ip netns` (or TUN) is not permitted, they give undefined.
 */
import { Effect, type Scope } from "effect"
import { execFileSync, spawn, spawnSync, type ChildProcess } from "node:child_process"
import { randomBytes } from "node:crypto"
import { fileURLToPath } from "node:url"

const RELAY = fileURLToPath(new URL("./tcpRelay.mjs", import.meta.url))
const TUNLINK = fileURLToPath(new URL("./tunlink.py", import.meta.url))

const ip = (...args: ReadonlyArray<string>) => execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] })

/** Whether this process may open TUN devices (python3's fcntl does the ioctl Node cannot). */
const tunPermitted = () =>
  spawnSync("/usr/bin/python3", ["-I", "-c", "import os; os.close(os.open('/dev/net/tun', os.O_RDWR))"]).status === 0

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

/** Whether this process may make network namespaces (a namespace is added and removed to find out). */
const namespacesPermitted = (tag: string) => {
  const probe = `cb-probe-${tag}`
  try {
    ip("netns", "add", probe)
    ip("netns", "del", probe)
    return true
  } catch {
    return false
  }
}

/**
 * Namespace `name`, joined to the root namespace by the link `connect`
 * makes (it leaves device `inside` in the namespace and `outside` in the
 * root one), addressed point-to-point and relaying `ports`. Removed, with
 * its devices, when the scope closes.
 */
const joinedNamespace = (
  name: string,
  [outside, inside]: readonly [string, string],
  [rootAddress, hostAddress]: readonly [string, string],
  ports: ReadonlyArray<number>,
  connect: Effect.Effect<void, Error, Scope.Scope>
) =>
  Effect.gen(function* () {
    yield* Effect.acquireRelease(
      Effect.sync(() => ip("netns", "add", name)),
      () => Effect.sync(() => {
        // deleting the namespace deletes its end of the link (for a veth, the pair)
        try { ip("netns", "del", name) } catch { /* already gone */ }
        try { ip("link", "del", outside) } catch { /* went with the namespace or its process */ }
      })
    )
    yield* connect
    ip("addr", "add", rootAddress, "peer", hostAddress, "dev", outside)
    ip("link", "set", outside, "up")
    ip("-n", name, "addr", "add", hostAddress, "peer", rootAddress, "dev", inside)
    ip("-n", name, "link", "set", inside, "up")
    ip("-n", name, "link", "set", "lo", "up")
    yield* relay(undefined, rootAddress, "127.0.0.1", ports)
    yield* relay(name, "127.0.0.1", rootAddress, ports)
    return { name, exec: ["ip", "netns", "exec", name] } satisfies HostNamespace
  })

/** One namespace per host (10.231.0.0/24, a /30 each), joined by veth, relaying `ports`; undefined where namespaces are not permitted. */
export const hostNamespaces = (count: number, ports: ReadonlyArray<number>) =>
  Effect.gen(function* () {
    const tag = randomBytes(3).toString("hex")
    if (!namespacesPermitted(tag)) return undefined
    const hosts: Array<HostNamespace> = []
    for (let i = 0; i < count; i++) {
      const name = `cb-fleet-${tag}-${i}`
      const devices = [`cbf${tag}${i}a`, `cbf${tag}${i}b`] as const
      const veth = Effect.sync(() => {
        ip("link", "add", devices[0], "type", "veth", "peer", "name", devices[1])
        ip("link", "set", devices[1], "netns", name)
      })
      hosts.push(yield* joinedNamespace(name, devices, [`10.231.0.${4 * i + 1}`, `10.231.0.${4 * i + 2}`], ports, veth))
    }
    return hosts
  })

/** How the forwarder between the two TUN devices treats packets, per direction. */
export interface LinkQuality {
  readonly delayMs: number
  readonly jitterMs: number
  /** the fraction of packets dropped */
  readonly loss: number
  readonly seed: number
}

export interface BadLinkNamespace extends HostNamespace {
  /** The outage: every packet is dropped until `up`. */
  readonly down: Effect.Effect<void>
  readonly up: Effect.Effect<void>
}

/** Sends one command to the forwarder and waits for its "ok". */
const command = (forwarder: ChildProcess, line: string) =>
  Effect.async<void>((resume) => {
    forwarder.stdout!.once("data", () => resume(Effect.void))
    forwarder.stdin!.write(`${line}\n`)
  })

/**
 * One namespace joined to the root namespace through two TUN devices and
 * test/support/tunlink.py between them (delay, jitter, loss, outages),
 * relaying `ports`; undefined where namespaces or TUN devices are not
 * permitted. The forwarder is killed, by PID, when the scope closes.
 */
export const badLinkNamespace = (ports: ReadonlyArray<number>, quality: LinkQuality) =>
  Effect.gen(function* () {
    const tag = randomBytes(3).toString("hex")
    if (!namespacesPermitted(tag) || !tunPermitted()) return undefined
    const name = `cb-badnet-${tag}`
    const devices = [`cbt${tag}a`, `cbt${tag}b`] as const
    let forwarder: ChildProcess | undefined
    const tuns = Effect.gen(function* () {
      forwarder = yield* Effect.acquireRelease(
        Effect.async<ChildProcess, Error>((resume) => {
          const args = [...devices, quality.delayMs, quality.jitterMs, quality.loss, quality.seed].map(String)
          const child = spawn("/usr/bin/python3", ["-I", TUNLINK, ...args], { stdio: ["pipe", "pipe", "inherit"] })
          child.stdout!.setEncoding("utf8").once("data", () => resume(Effect.succeed(child)))
          child.once("exit", (code) => resume(Effect.fail(new Error(`tunlink.py exited with ${code}`))))
        }),
        (child) => Effect.sync(() => child.kill("SIGKILL"))
      )
      ip("link", "set", devices[1], "netns", name)
    })
    const host = yield* joinedNamespace(name, devices, ["10.232.0.1", "10.232.0.2"], ports, tuns)
    return { ...host, down: command(forwarder!, "down"), up: command(forwarder!, "up") } satisfies BadLinkNamespace
  })
