/** The sync indicator: `role="status"` whose text names the state (tests and screen readers read it). */
import type { EngineState } from '@shelf/sdk';
import { useEngineState } from '../sync/LibraryVersionSyncProvider';

export function statusText(state: Pick<EngineState, 'status' | 'pendingCount' | 'lastError' | 'syncPercent'>): string {
  switch (state.status) {
    case 'offline':
      return `Offline · ${state.pendingCount} pending`;
    case 'syncing':
      return state.syncPercent !== null ? `Syncing… ${state.syncPercent}%` : 'Syncing…';
    case 'error':
      return state.lastError ?? 'Sync failed. Retrying shortly.';
    default:
      return 'Synced';
  }
}

export function SyncStatus() {
  const state = useEngineState();
  return (
    <p role="status" className={`sync-status sync-${state.status}`} title={state.isSSEConnected ? 'Live updates on' : 'Live updates off: checking regularly'}>
      <span className="dot" aria-hidden="true" />
      {statusText(state)}
    </p>
  );
}

/** A real progress bar during a long first sync (percent from the feed's paging). */
export function FirstSyncProgress() {
  const state = useEngineState();
  if (state.syncPercent === null) return null;
  return (
    <div className="first-sync">
      <label htmlFor="first-sync">Downloading your library</label>
      <progress id="first-sync" max={100} value={state.syncPercent}>
        {state.syncPercent}%
      </progress>
    </div>
  );
}

/** A push told this device of a newer version while it was closed (or offline): say so until it
 * is fetched, so an offline learner knows the library shown is not the latest. */
export function ServerAheadNotice() {
  const state = useEngineState();
  if (state.serverAhead === null || state.status === 'synced') return null;
  return (
    <div className="update-banner" role="note">
      Your library changed on another device (version {state.serverAhead}).{' '}
      {state.status === 'offline' ? 'It updates when you are back online.' : 'Updating…'}
    </div>
  );
}
