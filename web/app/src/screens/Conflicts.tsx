/** Edits that overlapped on two devices, side by side; the learner picks which text stays. */
import { useState } from 'react';
import { describeError, type MaterialItem } from '@shelf/sdk';
import { useSync } from '../sync/LibraryVersionSyncProvider';

export function Conflicts({ item }: { item: MaterialItem }) {
  const { engine } = useSync();
  const [error, setError] = useState<string | null>(null);

  async function resolve(conflictId: string, resolution: 'server' | 'device') {
    try {
      setError(null);
      await engine.resolveConflict(item.id, conflictId, resolution);
    } catch (caught) {
      setError(`Could not settle this conflict: ${describeError(caught)} Resolving needs a connection.`);
    }
  }

  return (
    <section className="panel conflicts" aria-labelledby="conflicts-title">
      <h2 id="conflicts-title">Two devices edited the same text</h2>
      <p className="hint">Your library kept the first version. Choose which one to keep.</p>
      {item.conflicts.map((conflict) => (
        <article key={conflict.id} className="conflict" aria-label={`Conflict in ${conflict.field}`}>
          <h3>{conflict.field === 'title' ? 'Title' : 'Body'}</h3>
          <div className="side-by-side">
            <figure>
              <figcaption>Kept in your library</figcaption>
              <pre>{conflict.serverValue}</pre>
              <button type="button" className="secondary" onClick={() => void resolve(conflict.id, 'server')}>
                Keep this version
              </button>
            </figure>
            <figure>
              <figcaption>From another device</figcaption>
              <pre>{conflict.deviceValue}</pre>
              <button type="button" className="secondary" onClick={() => void resolve(conflict.id, 'device')}>
                Use the other device’s version
              </button>
            </figure>
          </div>
        </article>
      ))}
      {error && <p className="field-error" role="alert">{error}</p>}
    </section>
  );
}
