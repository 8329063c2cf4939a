// Shared by the endpoints of this folder: imported, never routed (the
// leading `_` keeps it from being an endpoint of its own).

/** 200 with what was verified. */
export function verified(provider: string, event: Record<string, unknown>): Response {
  return Response.json({ verified: true, provider, ...event });
}

/** 400 with why: the provider retries, and the log says what failed. */
export function rejected(provider: string, error: unknown): Response {
  const message = error instanceof Error ? error.message : String(error);
  console.warn(`${provider}: signature rejected: ${message}`);
  return Response.json({ verified: false, provider, error: message }, { status: 400 });
}
