// A nats.ws client under Node: the test's Python side answers and publishes.
// Usage: node node_client.mjs ws://127.0.0.1:PORT
// Prints one JSON line with what it received.
import WebSocket from "ws";
globalThis.WebSocket = WebSocket; // Node 20 has no global WebSocket

const { connect, StringCodec, headers } = await import("nats.ws");
const sc = StringCodec();
const nc = await connect({ servers: process.argv[2], timeout: 5000 });
const sub = nc.subscribe("to.js", { max: 1 });
await nc.flush();
console.log(JSON.stringify({ ready: true }));
const h = headers();
h.set("X-From", "js");
nc.publish("from.js", sc.encode("hello from js"), { headers: h });
const answer = await nc.request("svc.py", sc.encode("question"), { timeout: 5000 });
let pushed = "";
for await (const m of sub) {
  pushed = sc.decode(m.data);
}
console.log(JSON.stringify({ answer: sc.decode(answer.data), pushed }));
await nc.drain();
