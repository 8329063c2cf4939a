// GitHub webhook verified with Web Crypto alone: HMAC-SHA256 of the raw
// body under the webhook's secret, compared in constant time by
// `crypto.subtle.verify` (GitHub's X-Hub-Signature-256 scheme).
//
// Secret: GITHUB_WEBHOOK_SECRET

import { rejected, verified } from "./_lib/reply";

function fromHex(hex: string): Uint8Array {
  if (!/^([0-9a-f]{2})*$/i.test(hex)) throw new Error("the signature is not hex");
  return new Uint8Array(hex.match(/../g)?.map((b) => parseInt(b, 16)) ?? []);
}

export default async function (request: Request, ctx: { env: Record<string, string> }) {
  const body = new Uint8Array(await request.arrayBuffer());
  try {
    const header = request.headers.get("x-hub-signature-256") ?? "";
    if (!header.startsWith("sha256=")) throw new Error("no X-Hub-Signature-256 header");
    const key = await crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(ctx.env.GITHUB_WEBHOOK_SECRET),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["verify"],
    );
    if (!(await crypto.subtle.verify("HMAC", key, fromHex(header.slice(7)), body))) {
      throw new Error("the signature does not match the body");
    }
    const payload = JSON.parse(new TextDecoder().decode(body));
    return verified("github", { event: request.headers.get("x-github-event"), action: payload.action });
  } catch (e) {
    return rejected("github", e);
  }
}
