/**
 * `LibraryVersionSyncProvider` (mounted at the root) runs the sync engine of the signed-in user
 * and adapts it to TanStack Query: when the engine reports which materials changed, exactly
 * those queries (and the list) are invalidated. `useLibraryVersionSync()` exposes the state of
 * the product documents: `{currentVersion, isSSEConnected, status, pendingCount, lastError}`.
 */
import { createContext, useContext, useEffect, useState, useSyncExternalStore, type ReactNode } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import { SyncEngine, warmAttachments, type CachedVersion, type EngineState } from '@shelf/sdk';
import { startBackgroundUpdates } from '../push';
import { client, type Session } from '../session';
import { libraryKeys } from './queries';

interface SyncContext {
  engine: SyncEngine;
  session: Session;
}

const Context = createContext<SyncContext | null>(null);

export function LibraryVersionSyncProvider({ session, children }: { session: Session; children: ReactNode }) {
  const queryClient = useQueryClient();
  // Created during the first render (not in an effect) so the list paints in that render.
  const [engine] = useState(() => new SyncEngine({ userId: session.userId, client, storage: localStorage, window }));

  useEffect(() => {
    let lastStatus = engine.state.status;
    const unsubscribe = engine.subscribe((change) => {
      if (change.ids === 'all') {
        void queryClient.invalidateQueries({ queryKey: libraryKeys.all(session.userId) });
      } else if (change.ids.size > 0) {
        for (const id of change.ids) void queryClient.invalidateQueries({ queryKey: libraryKeys.material(session.userId, id) });
        void queryClient.invalidateQueries({ queryKey: libraryKeys.list(session.userId) });
      }
      if (engine.state.status === 'synced' && lastStatus !== 'synced') void warmAttachments(localStorage, session.userId, engine.items);
      lastStatus = engine.state.status;
    });
    void engine.start();
    void startBackgroundUpdates(session.userId).catch((error: unknown) => console.warn('Shelf: background updates not set up', error));
    // The Service Worker relays Web Push: note the version and check, as on focus.
    const onPush = (event: MessageEvent) => {
      const data = event.data as { type?: string; version?: CachedVersion | null } | null;
      if (data?.type !== 'shelf-push') return;
      if (data.version) void engine.onPushedVersion(data.version);
      else void engine.checkVersion();
    };
    navigator.serviceWorker?.addEventListener('message', onPush);
    return () => {
      unsubscribe();
      navigator.serviceWorker?.removeEventListener('message', onPush);
      engine.stop();
    };
  }, [engine, queryClient, session.userId]);

  return <Context.Provider value={{ engine, session }}>{children}</Context.Provider>;
}

export function useSync(): SyncContext {
  const context = useContext(Context);
  if (!context) throw new Error('useSync outside LibraryVersionSyncProvider');
  return context;
}

/** The engine's state, re-rendering on every change. */
export function useEngineState(): EngineState {
  const { engine } = useSync();
  return useSyncExternalStore(
    (listener) => engine.subscribe(listener),
    () => engine.state,
  );
}

export function useLibraryVersionSync() {
  const state = useEngineState();
  return {
    currentVersion: state.currentVersion,
    isSSEConnected: state.isSSEConnected,
    status: state.status,
    pendingCount: state.pendingCount,
    lastError: state.lastError,
  };
}
