import type { Client } from "openapi-fetch";
import type { components, paths } from "./schema.js";

export type { components, operations, paths } from "./schema.js";

/** The API's schemas by name: `Schemas["Container"]`, ... */
export type Schemas = components["schemas"];

/** A typed client of one daemon with one token. */
export function createClient(options: { baseUrl: string; token?: string; fetch?: typeof fetch }): Client<paths>;

/** The error of a failed call (`{ error: { code, message, details? } }`). */
export class CubbyError extends Error {
  readonly status: number;
  /** Stable: `container_not_found`, `rule_shadowed`, ... */
  readonly code: string;
  readonly details: unknown;
  constructor(status: number, body: unknown);
}

/** The data of an answer, or a thrown `CubbyError`. */
export function unwrap<T>(call: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T>;
