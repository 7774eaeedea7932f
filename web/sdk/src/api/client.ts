/**
 * The typed API client. Types come from `schema.ts`, generated from the server's OpenAPI
 * document by `scripts/gen-web-api`; nothing here retypes a request or response by hand.
 *
 * Every call goes through {@link request}, which checks the status and turns the server's
 * `{code, message}` body into a {@link ShelfApiError}, so callers branch on `code`, never on text.
 */
import createClient, { type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema';

export type Schemas = components['schemas'];
export type ShelfClient = ReturnType<typeof createShelfClient>;

/** An error answer of the server, or a network failure (`status` 0, `code` "network"). */
export class ShelfApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly body?: unknown,
  ) {
    super(message);
    this.name = 'ShelfApiError';
  }

  /** The request never reached the server (offline, DNS, connection refused). */
  get isNetwork(): boolean {
    return this.status === 0;
  }

  /** Worth retrying later unchanged: network failures, 5xx, 429. */
  get isTransient(): boolean {
    return this.status === 0 || this.status >= 500 || this.status === 429;
  }
}

/**
 * Cookie authentication for browsers: the session cookie rides along (same origin), and the
 * `X-Shelf-Csrf` header marks our own requests so the server accepts cookie-authenticated writes.
 */
const csrf: Middleware = {
  onRequest({ request }) {
    request.headers.set('X-Shelf-Csrf', '1');
    return request;
  },
};

export function createShelfClient(options: { baseUrl?: string; fetch?: typeof fetch } = {}) {
  const client = createClient<paths>({
    baseUrl: options.baseUrl ?? '',
    credentials: 'same-origin',
    fetch: options.fetch,
  });
  client.use(csrf);
  return client;
}

interface FetchResult<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

/** Awaits an openapi-fetch call and returns its data, or throws a {@link ShelfApiError}. */
export async function request<T>(call: Promise<FetchResult<T>>): Promise<T> {
  let result: FetchResult<T>;
  try {
    result = await call;
  } catch (cause) {
    throw new ShelfApiError(0, 'network', 'Cannot reach the Shelf server. Check your connection.', cause);
  }
  if (!result.response.ok) {
    throw errorFromBody(result.response.status, result.error);
  }
  return result.data as T;
}

export function errorFromBody(status: number, body: unknown): ShelfApiError {
  const fields = (body ?? {}) as { code?: unknown; message?: unknown };
  const code = typeof fields.code === 'string' ? fields.code : `http_${status}`;
  const message = typeof fields.message === 'string' ? fields.message : `The server answered ${status}.`;
  return new ShelfApiError(status, code, message, body);
}
