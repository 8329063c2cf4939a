// Cubby's HTTP API, typed: `openapi-fetch` over the paths that
// `openapi-typescript` generates from openapi/cubby.json (src/schema.d.ts).
import createFetchClient from "openapi-fetch";

/**
 * A client of one daemon with one token.
 *
 * @param {{ baseUrl: string, token?: string, fetch?: typeof fetch }} options
 *   `baseUrl` is the API's address (`http://127.0.0.1:7070`); `token` an
 *   admin or project token.
 */
export function createClient({ baseUrl, token, fetch }) {
  const client = createFetchClient({ baseUrl: baseUrl.replace(/\/+$/, ""), fetch });
  if (token) {
    client.use({
      onRequest({ request }) {
        request.headers.set("Authorization", `Bearer ${token}`);
        return request;
      },
    });
  }
  return client;
}

/**
 * The error of a failed call, as every Cubby answer has it:
 * `{ error: { code, message, details? } }`.
 */
export class CubbyError extends Error {
  /** @param {number} status @param {{ error?: { code?: string, message?: string, details?: unknown } }} body */
  constructor(status, body) {
    super(body?.error?.message ?? `HTTP ${status}`);
    this.name = "CubbyError";
    this.status = status;
    this.code = body?.error?.code ?? "unknown";
    this.details = body?.error?.details;
  }
}

/**
 * The data of an answer, or a `CubbyError`.
 *
 * @template T
 * @param {Promise<{ data?: T, error?: any, response: Response }>} call
 * @returns {Promise<T>}
 */
export async function unwrap(call) {
  const { data, error, response } = await call;
  if (error !== undefined || !response.ok) {
    throw new CubbyError(response.status, error);
  }
  return /** @type {T} */ (data);
}
