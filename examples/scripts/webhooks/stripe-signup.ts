// @concurrent false
// Stripe webhook → one container per customer → the customer's URL.
//
// Project secrets (cubby scripts secrets <project> NAME=VALUE ...):
//   STRIPE_WEBHOOK_SECRET  the endpoint's signing secret (whsec_...)
//   TEMPLATE_CONTAINER_ID  the container every customer starts from
//
// Point Stripe at http://<project>.exec.<domain>/webhooks/stripe-signup.
// `@concurrent false` runs deliveries one at a time, so a retry racing the
// first delivery finds the container instead of making a second one.

interface StripeObject {
  id: string;
  customer?: string | null;
  email?: string | null;
}

interface StripeEvent {
  id: string;
  type: string;
  data: { object: StripeObject };
}

interface Container {
  id: string;
  name: string;
  url: string;
}

/** Stripe's default tolerance for the signature's timestamp. */
const TOLERANCE_SECONDS = 300;

/** Checks `Stripe-Signature: t=<unix>,v1=<hex hmac>[,v1=...]`. */
function verifySignature(header: string | null, payload: string, secret: string, now: number): string | null {
  if (!header) return "missing Stripe-Signature header";
  const pairs = header.split(",").map((part) => {
    const i = part.indexOf("=");
    return [part.slice(0, i).trim(), part.slice(i + 1).trim()] as [string, string];
  });
  const timestamp = pairs.find(([k]) => k === "t")?.[1];
  const signatures: string[] = pairs.filter(([k]) => k === "v1").map(([, v]) => v);
  if (!timestamp || signatures.length === 0) return "malformed Stripe-Signature header";
  if (Math.abs(now - Number(timestamp)) > TOLERANCE_SECONDS) return "timestamp outside the tolerance";
  const expected = crypto.hmacSha256(secret, `${timestamp}.${payload}`);
  return signatures.some((s) => crypto.timingSafeEqual(s, expected)) ? null : "signature mismatch";
}

/**
 * A container name for a customer. Stripe ids are case-sensitive and
 * container names are lowercase, so the name is derived from a hash of the
 * id: two customers can never map to the same container.
 */
function containerName(customer: string): string {
  return `cust-${crypto.sha256(customer).slice(0, 20)}`;
}

export default async function (request: Request, ctx: any) {
  if (request.method !== "POST") {
    return Response.json({ error: "POST a Stripe event here" }, { status: 405 });
  }
  const payload = await request.text();
  const now = Math.floor(Date.now() / 1000);
  const problem = verifySignature(request.headers.get("stripe-signature"), payload, ctx.env.STRIPE_WEBHOOK_SECRET, now);
  if (problem) {
    console.warn(`refused a delivery: ${problem}`);
    return Response.json({ error: problem }, { status: 400 });
  }

  const event = JSON.parse(payload) as StripeEvent;
  if (event.type !== "customer.created" && event.type !== "checkout.session.completed") {
    return { ignored: event.type };
  }
  const object = event.data.object;
  const customer = event.type === "customer.created" ? object.id : object.customer;
  if (!customer) {
    return Response.json({ error: "the event names no customer" }, { status: 400 });
  }

  const name = containerName(customer);
  let container: Container;
  try {
    container = await ctx.cubby.containers.copy(ctx.env.TEMPLATE_CONTAINER_ID, {
      name,
      environment_vars: { CUSTOMER_ID: customer },
    });
    console.log(`event ${event.id}: made ${name} for ${customer}`);
  } catch (err: any) {
    if (err.code !== "container_already_exists") throw err;
    // The same event (or another event for this customer) came before.
    const page = await ctx.cubby.containers.list({ name });
    container = page.items[0];
    console.log(`event ${event.id}: ${name} already exists`);
  }

  const access = await ctx.cubby.containers.authorize(container.id, { subject: customer });
  return { customer, container_id: container.id, url: access.url, expires_at: access.expires_at };
}
