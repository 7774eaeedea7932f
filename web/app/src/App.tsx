/** The shell: login when signed out; otherwise the header (sync status, navigation) and a screen. */
import { useState } from 'react';
import { linkTo, navigate, useRoute } from './router';
import { forgetSession, loadSession, logOut, type Session } from './session';
import { LibraryVersionSyncProvider, useEngineState, useSync } from './sync/LibraryVersionSyncProvider';
import { ServerAheadNotice, SyncStatus } from './components/SyncStatus';
import { UpdateBanner } from './components/UpdateBanner';
import { Login } from './screens/Login';
import { Library } from './screens/Library';
import { Editor } from './screens/Editor';
import { Devices } from './screens/Devices';
import { Settings } from './screens/Settings';

export function App() {
  const [session, setSession] = useState<Session | null>(loadSession);
  const [notice, setNotice] = useState<string | undefined>();
  if (!session) {
    return (
      <Login
        notice={notice}
        onSession={(next) => {
          setNotice(undefined);
          setSession(next);
          navigate('/', { replace: true });
        }}
      />
    );
  }
  const end = async (message?: string) => {
    // Signed out elsewhere: keep the offline copy (and its unsent edits) for the next login.
    if (message) forgetSession();
    else await logOut(session);
    setNotice(message);
    setSession(null);
  };
  return (
    <LibraryVersionSyncProvider key={session.userId} session={session}>
      <Shell onLogOut={end} />
    </LibraryVersionSyncProvider>
  );
}

function Shell({ onLogOut: end }: { onLogOut: (message?: string) => Promise<void> }) {
  const route = useRoute();
  const { session, engine } = useSync();
  // Stop syncing before the offline copy is deleted, so the engine does not take the deletion
  // for an eviction and recreate the database.
  const onLogOut = (message?: string) => {
    engine.stop();
    return end(message);
  };
  const { authLost } = useEngineState();
  return (
    <>
      <header className="app-header">
        <a href="/" className="brand" onClick={linkTo('/')}>
          <img src="/icon-192.png" alt="" width={28} height={28} />
          Shelf
        </a>
        <nav aria-label="Main">
          <a href="/" onClick={linkTo('/')} aria-current={route.screen === 'library' ? 'page' : undefined}>
            Library
          </a>
          <a href="/devices" onClick={linkTo('/devices')} aria-current={route.screen === 'devices' ? 'page' : undefined}>
            Devices
          </a>
          <a href="/settings" onClick={linkTo('/settings')} aria-current={route.screen === 'settings' ? 'page' : undefined}>
            Settings
          </a>
        </nav>
        <SyncStatus />
        <div className="account">
          <span className="email">{session.email}</span>
          <button type="button" className="link" onClick={() => void onLogOut()}>
            Log out
          </button>
        </div>
      </header>
      <UpdateBanner />
      <ServerAheadNotice />
      {authLost && (
        <div className="update-banner" role="alert">
          This device was signed out. Your unsent edits stay here until you log in again.
          <button type="button" onClick={() => void onLogOut('Log in again to keep syncing.')}>
            Log in again
          </button>
        </div>
      )}
      {route.screen === 'library' && <Library />}
      {route.screen === 'new' && <Editor key="new" />}
      {route.screen === 'material' && <Editor key={route.id} id={route.id} />}
      {route.screen === 'devices' && <Devices />}
      {route.screen === 'settings' && <Settings />}
    </>
  );
}
