/**
 * The shapes the sync engine (engine.ts) takes and hands out: its options, its state, what a
 * change names, and the messages its tabs exchange.
 */
import type { ShelfClient } from './api/client';
import type { LockManagerLike } from './leader';
import type { CachedVersion, SyncProblem, SyncStatus } from './types';

export interface EngineOptions {
  userId: string;
  client: ShelfClient;
  fetch?: typeof fetch;
  storage?: Storage;
  locks?: LockManagerLike;
  /** The page's events (online, focus, visibility); absent in tests that drive the engine. */
  window?: Pick<Window, 'addEventListener' | 'removeEventListener'> & { navigator: Navigator; document: Document };
  feedPageSize?: number;
}

export interface EngineState {
  status: SyncStatus;
  pendingCount: number;
  lastError: string | null;
  currentVersion: number | null;
  isSSEConnected: boolean;
  /** 0–100 while a long pull runs (the first sync of a large library), else null. */
  syncPercent: number | null;
  problems: SyncProblem[];
  ready: boolean;
  authLost: boolean;
  /** A newer server version known from a push (or a periodic check) and not synced yet. */
  serverAhead: number | null;
}

/** What changed: material ids whose data changed, and whether the engine state did. */
export interface EngineChange {
  ids: Set<string> | 'all';
}

/** What the tabs of one user tell each other over their BroadcastChannel. */
export type Message =
  | { type: 'version'; version: CachedVersion }
  | { type: 'connection'; streaming: boolean }
  | { type: 'changed'; ids: string[] | 'all' }
  | { type: 'hello' };
