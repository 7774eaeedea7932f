/**
 * Edits that overlapped on two devices, side by side; the learner picks which text stays.
 * Materials carry only conflict summaries; the two texts come from
 * `GET /api/materials/{id}/conflicts`, so showing them needs a connection, while the choice
 * itself goes through the outbox and works offline.
 */
import { useQuery } from '@tanstack/react-query';
import { describeError, request, type MaterialItem } from '@shelf/sdk';
import { client } from '../session';
import { useSync } from '../sync/LibraryVersionSyncProvider';
import { libraryKeys } from '../sync/queries';

export function Conflicts({ item }: { item: MaterialItem }) {
  const { engine, session } = useSync();
  const texts = useQuery({
    queryKey: [...libraryKeys.material(session.userId, item.id), 'conflicts', item.conflicts.map((c) => c.id).join()],
    queryFn: () => request(client.GET('/api/materials/{id}/conflicts', { params: { path: { id: item.id } } })),
  });
  const byId = new Map((texts.data ?? []).map((conflict) => [conflict.id, conflict]));

  return (
    <section className="panel conflicts" aria-labelledby="conflicts-title">
      <h2 id="conflicts-title">Two devices edited the same text</h2>
      <p className="hint">Your library kept the first version. Choose which one to keep.</p>
      {texts.isError && <p className="field-error" role="alert">Both versions show when you are online. ({describeError(texts.error)})</p>}
      {item.conflicts.map((summary) => {
        const conflict = byId.get(summary.id);
        return (
          <article key={summary.id} className="conflict" aria-label={`Conflict in ${summary.field}`}>
            <h3>{summary.field === 'title' ? 'Title' : 'Body'}</h3>
            <div className="side-by-side">
              <figure>
                <figcaption>Kept in your library</figcaption>
                <pre>{conflict?.serverValue ?? '…'}</pre>
                <button type="button" className="secondary" onClick={() => void engine.resolveConflict(item.id, summary.id, 'server')}>
                  Keep this version
                </button>
              </figure>
              <figure>
                <figcaption>From another device</figcaption>
                <pre>{conflict?.deviceValue ?? '…'}</pre>
                <button type="button" className="secondary" onClick={() => void engine.resolveConflict(item.id, summary.id, 'device')}>
                  Use the other device’s version
                </button>
              </figure>
            </div>
          </article>
        );
      })}
    </section>
  );
}
