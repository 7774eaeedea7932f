import { useEffect, useState } from 'react';
import { applyUpdateNow, onUpdateReady } from '../update';

/** "A new version of Shelf is ready": applied by itself once no typing can be lost. */
export function UpdateBanner() {
  const [ready, setReady] = useState(false);
  useEffect(() => onUpdateReady(setReady), []);
  if (!ready) return null;
  return (
    <div className="update-banner" role="note">
      A new version of Shelf is ready. It loads when you save or switch away.
      <button type="button" onClick={applyUpdateNow}>
        Reload now
      </button>
    </div>
  );
}
