/**
 * Reconnect and polling timing. Pure functions of (attempt, state, random) so tests pin them.
 *
 * Reconnect: "full jitter" exponential backoff (a uniform wait in [0, min(cap, base·2^attempt)]),
 * so a server restart does not see every browser come back in the same second; never sooner than
 * the server's `retry:` hint.
 */
export interface BackoffOptions {
  baseMs: number;
  capMs: number;
}

export const STREAM_BACKOFF: BackoffOptions = { baseMs: 1_000, capMs: 60_000 };

export function fullJitterDelay(attempt: number, options: BackoffOptions = STREAM_BACKOFF, random: () => number = Math.random, retryHintMs = 0): number {
  const ceiling = Math.min(options.capMs, options.baseMs * 2 ** Math.min(attempt, 30));
  return Math.max(retryHintMs, Math.floor(random() * ceiling));
}

/**
 * Polling when streams are unavailable (a proxy that buffers, a browser without streaming
 * fetch): every ~15 s while the tab is visible, every ~2 min while hidden, not at all offline
 * (the `online` event triggers a check instead). ±20 % jitter spreads clients out.
 */
export const POLL_VISIBLE_MS = 15_000;
export const POLL_HIDDEN_MS = 120_000;

export function pollingDelay(state: { visible: boolean; online: boolean }, random: () => number = Math.random): number | null {
  if (!state.online) return null;
  const base = state.visible ? POLL_VISIBLE_MS : POLL_HIDDEN_MS;
  return Math.round(base * (0.8 + 0.4 * random()));
}

/** After this many stream failures in a row (no event received), poll instead. */
export const STREAM_FAILURES_BEFORE_POLLING = 3;
/** While polling, try the stream again after this long. */
export const STREAM_RETRY_WHILE_POLLING_MS = 5 * 60_000;
