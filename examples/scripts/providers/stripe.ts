// Stripe webhook verified by Stripe's own SDK (the `stripe` npm package),
// with its Web Crypto provider: the code Stripe documents for Cloudflare
// Workers and Deno, unchanged.
//
// Secrets: STRIPE_WEBHOOK_SECRET (whsec_...); STRIPE_API_KEY if the
// handler also calls Stripe's API (through fetch).
// Push: cubby scripts push examples/scripts/providers --project P --bundle

import Stripe from "stripe";
import { rejected, verified } from "./_lib/reply";

const cryptoProvider = Stripe.createSubtleCryptoProvider();

export default async function (request: Request, ctx: { env: Record<string, string> }) {
  const stripe = new Stripe(ctx.env.STRIPE_API_KEY ?? "sk_unused", { httpClient: Stripe.createFetchHttpClient() });
  const body = await request.text();
  try {
    const event = await stripe.webhooks.constructEventAsync(
      body,
      request.headers.get("stripe-signature") ?? "",
      ctx.env.STRIPE_WEBHOOK_SECRET,
      undefined,
      cryptoProvider,
    );
    return verified("stripe", { id: event.id, type: event.type });
  } catch (e) {
    return rejected("stripe", e);
  }
}
