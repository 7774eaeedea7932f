/**
 * Unsaved typing, so an app update never reloads a page under the learner's fingers: editors
 * register while they hold unsaved changes and keep their draft in sessionStorage, which
 * survives the one reload an update needs.
 */
const dirty = new Set<string>();

export function setDirty(key: string, isDirty: boolean): void {
  if (isDirty) dirty.add(key);
  else dirty.delete(key);
}

export function hasUnsavedTyping(): boolean {
  return dirty.size > 0;
}

export function saveDraft(key: string, value: unknown): void {
  try {
    sessionStorage.setItem(`shelf.draft.${key}`, JSON.stringify(value));
  } catch {
    // No sessionStorage: the draft then only lives in memory.
  }
}

export function loadDraft<T>(key: string): T | null {
  try {
    return JSON.parse(sessionStorage.getItem(`shelf.draft.${key}`) ?? 'null') as T | null;
  } catch {
    return null;
  }
}

export function clearDraft(key: string): void {
  sessionStorage.removeItem(`shelf.draft.${key}`);
}
