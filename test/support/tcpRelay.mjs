// A TCP relay for the fleet test's network namespaces: listens on
// LISTEN_HOST:PORT for each PORT and forwards to TARGET_HOST:PORT. Prints
// "ready" once every port listens; runs until killed.
//   node tcpRelay.mjs LISTEN_HOST TARGET_HOST PORT...
import { connect, createServer } from "node:net"

const [listenHost, targetHost, ...ports] = process.argv.slice(2)
let listening = 0
for (const port of ports.map(Number)) {
  const server = createServer((client) => {
    const upstream = connect(port, targetHost)
    client.on("error", () => upstream.destroy())
    upstream.on("error", () => client.destroy())
    client.pipe(upstream).pipe(client)
  })
  server.listen(port, listenHost, () => {
    if (++listening === ports.length) console.log("ready")
  })
}
