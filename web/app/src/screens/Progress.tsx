/** Progress on one material: percent, completed, study time (adds minutes studied). */
import { useEffect, useState, type FormEvent } from 'react';
import type { MaterialItem } from '@shelf/sdk';
import { useSync } from '../sync/LibraryVersionSyncProvider';

export function formatStudyTime(seconds: number): string {
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

export function ProgressPanel({ item }: { item: MaterialItem }) {
  const { engine } = useSync();
  const progress = item.progress;
  const [percent, setPercent] = useState(String(Math.round(progress?.percentComplete ?? 0)));
  const [completed, setCompleted] = useState(progress?.completed ?? false);
  const [minutes, setMinutes] = useState('');
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    setPercent(String(Math.round(progress?.percentComplete ?? 0)));
    setCompleted(progress?.completed ?? false);
  }, [progress?.percentComplete, progress?.completed]);

  async function save(event: FormEvent) {
    event.preventDefault();
    const value = Number(percent);
    const studied = minutes.trim() === '' ? 0 : Number(minutes);
    if (!Number.isFinite(value) || value < 0 || value > 100) return setError('Percent complete is a number from 0 to 100.');
    if (!Number.isFinite(studied) || studied < 0 || studied > 24 * 60) return setError('Study time is a number of minutes, up to 1440.');
    setError(null);
    const goesBack = value < (progress?.percentComplete ?? 0) || (!completed && progress?.completed);
    await engine.setProgress(item.id, { percentComplete: value, completed, studySecondsDelta: Math.round(studied * 60), reset: Boolean(goesBack) });
    setMinutes('');
  }

  return (
    <section className="panel" aria-labelledby="progress-title">
      <h2 id="progress-title">Progress</h2>
      <div className="progress-bar" role="img" aria-label={`${Math.round(progress?.percentComplete ?? 0)}% complete`}>
        <span style={{ width: `${progress?.percentComplete ?? 0}%` }} />
      </div>
      <p className="hint">
        {Math.round(progress?.percentComplete ?? 0)}% complete{progress?.completed ? ' · completed' : ''} · studied {formatStudyTime(progress?.studySeconds ?? 0)}
      </p>
      <form onSubmit={(event) => void save(event)} className="progress-form" noValidate>
        <div>
          <label htmlFor="percent">Percent complete</label>
          <input id="percent" type="number" min={0} max={100} inputMode="numeric" value={percent} onChange={(e) => setPercent(e.target.value)} />
        </div>
        <div>
          <label htmlFor="minutes">Minutes studied</label>
          <input id="minutes" type="number" min={0} inputMode="numeric" placeholder="0" value={minutes} onChange={(e) => setMinutes(e.target.value)} />
        </div>
        <div className="check">
          <input id="completed" type="checkbox" checked={completed} onChange={(e) => setCompleted(e.target.checked)} />
          <label htmlFor="completed">Completed</label>
        </div>
        {error && <p className="field-error" role="alert">{error}</p>}
        <button type="submit" className="secondary">
          Save progress
        </button>
      </form>
    </section>
  );
}
