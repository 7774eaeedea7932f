/**
 * What the learner sees: the replica with the outbox applied on top, in order (optimistic
 * updates). When a receipt arrives the entry leaves the outbox and the feed's row replaces the
 * guess; a rejected entry simply stops being applied, which is the rollback.
 */
import type { AttachmentView, MaterialFields, MaterialItem, OutboxEntry, ProgressView } from './types';

export function buildView(materials: MaterialFields[], progress: ProgressView[], attachments: AttachmentView[], outbox: OutboxEntry[]): Map<string, MaterialItem> {
  const progressById = new Map(progress.map((p) => [p.materialId, p]));
  const attachmentsById = new Map<string, AttachmentView[]>();
  for (const attachment of attachments) {
    const list = attachmentsById.get(attachment.materialId) ?? [];
    list.push(attachment);
    attachmentsById.set(attachment.materialId, list);
  }
  const items = new Map<string, MaterialItem>();
  for (const material of materials) {
    items.set(material.id, { ...material, progress: progressById.get(material.id) ?? null, attachments: attachmentsById.get(material.id) ?? [], pending: false });
  }
  for (const entry of outbox) applyEntry(items, entry);
  return items;
}

export function applyEntry(items: Map<string, MaterialItem>, entry: OutboxEntry): void {
  const data = (entry.data ?? {}) as Record<string, unknown>;
  const now = new Date(entry.createdAt).toISOString();
  const current = items.get(entry.id);
  switch (entry.type) {
    case 'material.create': {
      items.set(entry.id, {
        id: entry.id,
        title: String(data.title ?? ''),
        body: String(data.body ?? ''),
        tags: (data.tags as string[] | undefined) ?? [],
        createdAt: now,
        updatedAt: now,
        version: 0,
        conflicts: [],
        progress: data.progress ? progressFrom(entry.id, null, data.progress as Record<string, unknown>) : null,
        attachments: [],
        pending: true,
      });
      return;
    }
    case 'material.delete':
      items.delete(entry.id);
      return;
  }
  if (!current) return;
  const next: MaterialItem = { ...current, pending: true, updatedAt: now };
  switch (entry.type) {
    case 'material.update':
      if (typeof data.title === 'string') next.title = data.title;
      if (typeof data.body === 'string') next.body = data.body;
      if (Array.isArray(data.tags)) next.tags = data.tags as string[];
      if (data.progress) next.progress = progressFrom(entry.id, current.progress, data.progress as Record<string, unknown>);
      break;
    case 'progress.set':
      next.progress = progressFrom(entry.id, current.progress, data);
      break;
    case 'progress.delete':
      next.progress = null;
      break;
    case 'tags.add':
      next.tags = [...new Set([...current.tags, ...((data.tags as string[]) ?? [])])];
      break;
    case 'tags.remove': {
      const removed = new Set((data.tags as string[]) ?? []);
      next.tags = current.tags.filter((tag) => !removed.has(tag));
      break;
    }
    case 'conflict.resolve':
      next.conflicts = current.conflicts.filter((conflict) => conflict.id !== data.conflictId);
      break;
    case 'attachment.add': {
      const { attachmentId, sha256, filename, contentType, size } = data as { attachmentId: string; sha256: string; filename: string; contentType: string; size: number };
      next.attachments = [...current.attachments, { id: attachmentId, materialId: entry.id, sha256, filename, contentType, size, createdAt: now, version: 0 }];
      break;
    }
    case 'attachment.remove':
      next.attachments = current.attachments.filter((attachment) => attachment.id !== data.attachmentId);
      break;
  }
  items.set(entry.id, next);
}

function progressFrom(materialId: string, current: ProgressView | null, input: Record<string, unknown>): ProgressView {
  const base: ProgressView = current ?? { materialId, percentComplete: 0, position: '', studySeconds: 0, completed: false, lastStudiedAt: null, version: 0 };
  return {
    ...base,
    percentComplete: typeof input.percentComplete === 'number' ? input.percentComplete : base.percentComplete,
    position: typeof input.position === 'string' ? input.position : base.position,
    completed: typeof input.completed === 'boolean' ? input.completed : base.completed,
    studySeconds: base.studySeconds + (typeof input.studySecondsDelta === 'number' ? input.studySecondsDelta : 0),
    lastStudiedAt: new Date().toISOString(),
  };
}

/** Newest first, as the library list shows them. */
export function sortForList(items: Iterable<MaterialItem>): MaterialItem[] {
  return [...items].sort((a, b) => (a.updatedAt < b.updatedAt ? 1 : a.updatedAt > b.updatedAt ? -1 : a.id.localeCompare(b.id)));
}

/** Search by title (case-insensitive substring) and by tag (exact, `#tag` or `tag:x`). */
export function searchItems(items: MaterialItem[], query: string): MaterialItem[] {
  const words = query.trim().toLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return items;
  return items.filter((item) =>
    words.every((word) => {
      const tag = word.startsWith('#') ? word.slice(1) : word.startsWith('tag:') ? word.slice(4) : null;
      if (tag !== null) return item.tags.some((t) => t.toLowerCase() === tag);
      return item.title.toLowerCase().includes(word) || item.tags.some((t) => t.toLowerCase() === word);
    }),
  );
}
