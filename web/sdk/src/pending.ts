/**
 * A copy of the outbox size in localStorage. IndexedDB can vanish (eviction, Safari's 7-day
 * rule) while localStorage survives or the reverse; comparing the two is how the engine notices
 * that unsent edits were lost, so it can say so instead of failing silently.
 */
const key = (userId: string) => `shelf.pending.${userId}`;

export function readPending(storage: Storage | undefined, userId: string): number {
  const value = Number(storage?.getItem(key(userId)) ?? 0);
  return Number.isFinite(value) ? value : 0;
}

export function writePending(storage: Storage | undefined, userId: string, count: number): void {
  try {
    storage?.setItem(key(userId), String(count));
  } catch {
    // Quota or private mode: only the loss warning depends on it.
  }
}
