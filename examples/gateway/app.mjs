// A WeChat Official Account bot in plain Node (no dependencies), behind
// `wemp serve --forward` (docs/gateway.md).
//
//   WEMP_FORWARD_SECRET=change-me node app.mjs          # listens on 127.0.0.1:5000
//   wemp serve --forward http://127.0.0.1:5000/wechat   # with the same WEMP_FORWARD_SECRET
import { createHmac, timingSafeEqual } from "node:crypto";
import { createServer } from "node:http";

const SECRET = process.env.WEMP_FORWARD_SECRET ?? "";
const API = process.env.WEMP_API ?? "http://127.0.0.1:8080/api";
const API_TOKEN = process.env.WEMP_API_PROXY_TOKEN ?? "";

// X-Wemp-Signature is "sha256=" + hex HMAC-SHA256 of the raw body.
function verified(body, header) {
  if (!SECRET) return true;
  const expected = Buffer.from("sha256=" + createHmac("sha256", SECRET).update(body).digest("hex"));
  const given = Buffer.from(header ?? "");
  return given.length === expected.length && timingSafeEqual(given, expected);
}

// WeChat's API through wemp's proxy: the app never holds the access_token.
async function api(path, payload) {
  const res = await fetch(API + path, {
    method: payload === undefined ? "GET" : "POST",
    headers: { Authorization: `Bearer ${API_TOKEN}`, "Content-Type": "application/json" },
    body: payload === undefined ? undefined : JSON.stringify(payload),
  });
  return res.json();
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function answer(msg) {
  if (msg.msg_type === "event") {
    return msg.event === "subscribe" ? { type: "text", content: "Welcome!" } : null;
  }
  const content = (msg.content ?? "").trim();
  if (content === "who am i") {
    const user = await api(`/cgi-bin/user/info?openid=${encodeURIComponent(msg.openid)}`);
    return { type: "text", content: `You are ${user.nickname ?? user.openid}` };
  }
  if (content === "slow") {
    // Past WeChat's 5 seconds: wemp answers WeChat in time and sends this reply
    // through the customer-service API.
    await sleep(6000);
    return { type: "text", content: "Sorry for the wait" };
  }
  if (content === "fail") throw new Error("failing on purpose");
  return msg.msg_type === "text" ? { type: "text", content: `You said: ${content}` } : null;
}

createServer(async (req, res) => {
  const chunks = [];
  for await (const c of req) chunks.push(c);
  const body = Buffer.concat(chunks);
  if (req.method !== "POST" || !verified(body, req.headers["x-wemp-signature"])) {
    res.writeHead(401).end();
    return;
  }
  // X-Wemp-Dedup-Key is the same for WeChat's retries of one message; wemp calls this app
  // once per message, so it is only needed by apps that also retry on their own.
  console.error(`message ${req.headers["x-wemp-dedup-key"]}`);
  try {
    const reply = await answer(JSON.parse(body));
    res.writeHead(200, { "Content-Type": "application/json" }).end(JSON.stringify({ reply }));
  } catch (e) {
    console.error(e);
    res.writeHead(500).end();
  }
}).listen(Number(process.env.PORT ?? 5000), "127.0.0.1");
