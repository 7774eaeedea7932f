/**
 * Settings: Web Push opt-in. Browsers show every push as a notification, so pushes are off until
 * the learner turns them on here; the permission prompt comes only from that click.
 */
import { useState } from 'react';
import { describeError, disablePush, enablePush, pushOptedIn, pushSupport, ShelfApiError } from '@shelf/sdk';
import { client } from '../session';
import { useSync } from '../sync/LibraryVersionSyncProvider';

function currentPermission(): NotificationPermission {
  return 'Notification' in window ? Notification.permission : 'default';
}

function errorText(error: unknown): string {
  if (error instanceof ShelfApiError) return describeError(error);
  return error instanceof Error ? error.message : String(error);
}

export function Settings() {
  const { session } = useSync();
  const support = pushSupport(window);
  const [permission, setPermission] = useState(currentPermission);
  const [on, setOn] = useState(() => pushOptedIn(localStorage, session.userId) && currentPermission() === 'granted');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | undefined>();

  const toggle = async (wanted: boolean) => {
    setBusy(true);
    setError(undefined);
    try {
      if (wanted) {
        const answer = await Notification.requestPermission();
        setPermission(answer);
        if (answer !== 'granted') return;
        await enablePush(client, await navigator.serviceWorker.ready, localStorage, session.userId);
        setOn(true);
      } else {
        await disablePush(client, await navigator.serviceWorker.getRegistration(), localStorage, session.userId);
        setOn(false);
      }
    } catch (caught) {
      setError(errorText(caught));
    } finally {
      setBusy(false);
    }
  };

  return (
    <main className="settings">
      <h1>Settings</h1>
      <section className="setting" aria-labelledby="notifications-heading">
        <h2 id="notifications-heading">Notifications</h2>
        <label className="switch">
          <input
            type="checkbox"
            role="switch"
            checked={on}
            disabled={busy || support !== 'supported' || permission === 'denied'}
            onChange={(event) => void toggle(event.target.checked)}
          />
          Notify me when my library changes on another device
        </label>
        <p className="hint">
          Shelf then tells this device about changes even while it is closed, and shows the new version as soon as you open it. Open apps
          update by themselves either way.
        </p>
        {support === 'needs-home-screen' && (
          <p className="note">
            On iPhone and iPad, notifications work only when Shelf is on your Home Screen: tap Share, then “Add to Home Screen”, and open
            Shelf from there.
          </p>
        )}
        {support === 'unsupported' && <p className="note">This browser cannot show notifications from Shelf. Your library still updates each time you open it.</p>}
        {support === 'supported' && permission === 'denied' && (
          <p className="note" role="alert">
            Notifications are blocked for this site. Allow them in your browser’s site settings, then turn this on. Your library still updates
            each time you open it.
          </p>
        )}
        {error && (
          <p className="field-error" role="alert">
            Could not change notifications: {error}
          </p>
        )}
      </section>
    </main>
  );
}
