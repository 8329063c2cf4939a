// A Standard Webhooks delivery (Svix, and every sender that follows
// standardwebhooks.com) verified by the spec's reference library, the
// `standardwebhooks` npm package.
//
// Secret: STANDARD_WEBHOOK_SECRET (whsec_... as the sender shows it)

import { Webhook } from "standardwebhooks";
import { rejected, verified } from "./_lib/reply";

export default async function (request: Request, ctx: { env: Record<string, string> }) {
  const body = await request.text();
  const headers: Record<string, string> = {};
  request.headers.forEach((value, name) => {
    headers[name] = value;
  });
  try {
    const event = new Webhook(ctx.env.STANDARD_WEBHOOK_SECRET).verify(body, headers) as { type?: string };
    return verified("standard-webhooks", { id: headers["webhook-id"], type: event.type });
  } catch (e) {
    return rejected("standard-webhooks", e);
  }
}
