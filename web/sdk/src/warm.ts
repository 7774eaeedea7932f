/**
 * Selective cache warming: after a sync, fetch the attachments of the materials the learner
 * opened most recently into Cache Storage (the Service Worker answers downloads from there), so
 * they open instantly offline. Bounded by a byte budget; newest-opened first.
 */
import type { MaterialItem } from './types';

export const ATTACHMENT_CACHE = 'shelf-attachments';
const RECENT_KEY = (userId: string) => `shelf.recent.${userId}`;
const RECENT_MAX = 20;

export function attachmentUrl(materialId: string, attachmentId: string): string {
  return `/api/materials/${materialId}/attachments/${attachmentId}/content`;
}

/** Remembers that the learner opened a material (most recent first). */
export function markOpened(storage: Storage | undefined, userId: string, materialId: string): void {
  try {
    const recent = recentlyOpened(storage, userId).filter((id) => id !== materialId);
    storage?.setItem(RECENT_KEY(userId), JSON.stringify([materialId, ...recent].slice(0, RECENT_MAX)));
  } catch {
    // Warming is an optimisation; without storage it simply does less.
  }
}

export function recentlyOpened(storage: Storage | undefined, userId: string): string[] {
  try {
    const parsed = JSON.parse(storage?.getItem(RECENT_KEY(userId)) ?? '[]') as unknown;
    return Array.isArray(parsed) ? parsed.filter((id): id is string => typeof id === 'string') : [];
  } catch {
    return [];
  }
}

/** Which attachments to fetch: recent materials first, skipping cached ones, within budget. */
export function planWarming(recent: string[], items: Map<string, MaterialItem>, cached: Set<string>, budgetBytes: number): { url: string; size: number }[] {
  const plan: { url: string; size: number }[] = [];
  let used = 0;
  for (const id of recent) {
    for (const attachment of items.get(id)?.attachments ?? []) {
      const url = attachmentUrl(id, attachment.id);
      if (cached.has(url)) continue;
      if (used + attachment.size > budgetBytes) continue;
      used += attachment.size;
      plan.push({ url, size: attachment.size });
    }
  }
  return plan;
}

export async function warmAttachments(storage: Storage | undefined, userId: string, items: Map<string, MaterialItem>, budgetBytes = 25 * 1024 * 1024): Promise<number> {
  if (typeof caches === 'undefined') return 0;
  const cache = await caches.open(ATTACHMENT_CACHE);
  const cached = new Set((await cache.keys()).map((req) => new URL(req.url).pathname));
  let fetched = 0;
  for (const { url } of planWarming(recentlyOpened(storage, userId), items, cached, budgetBytes)) {
    try {
      const response = await fetch(url, { credentials: 'same-origin' });
      if (response.ok) {
        await cache.put(url, response);
        fetched++;
      }
    } catch {
      return fetched; // offline again: try after the next sync
    }
  }
  return fetched;
}
