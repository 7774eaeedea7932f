/** Edits the server did not take, and lost offline edits: shown until the learner dismisses them. */
import type { SyncProblem } from '@shelf/sdk';
import { useEngineState, useSync } from '../sync/LibraryVersionSyncProvider';

export function Problems({ materialId }: { materialId?: string }) {
  const { engine } = useSync();
  const { problems } = useEngineState();
  const shown = materialId ? problems.filter((p) => p.materialId === materialId) : problems;
  if (shown.length === 0) return null;
  return (
    <section className="problems" aria-labelledby="problems-title">
      <h2 id="problems-title">Not synced</h2>
      <ul>
        {shown.map((problem: SyncProblem) => (
          <li key={problem.key} role="alert">
            <strong>{problem.title}</strong>
            <span>{problem.message}</span>
            <button type="button" className="link" onClick={() => void engine.dismissProblem(problem.key)}>
              Dismiss
            </button>
          </li>
        ))}
      </ul>
    </section>
  );
}
