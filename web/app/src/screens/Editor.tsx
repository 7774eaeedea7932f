/**
 * A material: title, body and tags (saved through the outbox, so it works offline), then its
 * progress, conflicts and attachments. Typing is kept as a draft until saved.
 */
import { useEffect, useState, type FormEvent } from 'react';
import { useQuery } from '@tanstack/react-query';
import { markOpened, type MaterialItem } from '@shelf/sdk';
import { navigate } from '../router';
import { useEngineState, useSync } from '../sync/LibraryVersionSyncProvider';
import { materialQuery } from '../sync/queries';
import { clearDraft, loadDraft, saveDraft, setDirty } from '../drafts';
import { Problems } from '../components/Problems';
import { ProgressPanel } from './Progress';
import { Conflicts } from './Conflicts';
import { Attachments } from './Attachments';

interface Fields {
  title: string;
  body: string;
  tags: string;
}

const fieldsOf = (item: MaterialItem | null | undefined): Fields => ({ title: item?.title ?? '', body: item?.body ?? '', tags: item?.tags.join(', ') ?? '' });

export function parseTags(text: string): string[] {
  return [...new Set(text.split(',').map((tag) => tag.trim().replace(/^#/, '')).filter(Boolean))];
}

export function Editor({ id }: { id?: string }) {
  const { engine, session } = useSync();
  const { ready } = useEngineState();
  const { data: item } = useQuery({ ...materialQuery(engine, session.userId, id ?? 'new'), enabled: ready && id !== undefined });
  const draftKey = id ?? 'new';
  const [fields, setFields] = useState<Fields>(() => loadDraft<Fields>(draftKey) ?? fieldsOf(item));
  const [dirty, setDirtyState] = useState(() => loadDraft<Fields>(draftKey) !== null);
  const [error, setError] = useState<string | null>(null);
  // Arriving from "New material": say that it was saved.
  const [saved, setSaved] = useState(() => (history.state as { created?: boolean } | null)?.created === true);

  // Edits from other devices show up live while this form holds no unsaved typing.
  useEffect(() => {
    if (!dirty) setFields(fieldsOf(item));
  }, [item, dirty]);
  useEffect(() => {
    if (id) markOpened(localStorage, session.userId, id);
  }, [id, session.userId]);
  useEffect(() => () => setDirty(draftKey, false), [draftKey]);

  function change(patch: Partial<Fields>) {
    const next = { ...fields, ...patch };
    setFields(next);
    setDirtyState(true);
    setDirty(draftKey, true);
    saveDraft(draftKey, next);
    setSaved(false);
    setError(null);
  }

  async function save(event: FormEvent) {
    event.preventDefault();
    const title = fields.title.trim();
    if (title === '') return setError('Give the material a title.');
    if (title.length > 500) return setError('The title is too long: at most 500 characters.');
    const tags = parseTags(fields.tags);
    if (tags.length > 50 || tags.some((tag) => tag.length > 64)) return setError('Use at most 50 tags of at most 64 characters.');
    if (id) await engine.updateMaterial(id, { title, body: fields.body, tags });
    else {
      const created = await engine.createMaterial({ title, body: fields.body, tags });
      clearDraft(draftKey);
      setDirty(draftKey, false);
      return navigate(`/materials/${created}`, { replace: true, state: { created: true } });
    }
    clearDraft(draftKey);
    setDirty(draftKey, false);
    setDirtyState(false);
    setSaved(true);
  }

  async function remove() {
    if (!id || !window.confirm(`Delete “${item?.title ?? 'this material'}”? This removes it from all your devices.`)) return;
    await engine.deleteMaterial(id);
    navigate('/', { replace: true });
  }

  // Until the replica is open the material's body is unknown: show nothing rather than an empty form.
  if (id && !ready) return <main className="editor" aria-busy="true" />;

  if (id && ready && item === null) {
    return (
      <main className="editor">
        <p className="empty">This material is not in your library (it may have been deleted on another device).</p>
        <button type="button" onClick={() => navigate('/')}>Back to the library</button>
      </main>
    );
  }

  return (
    <main className="editor">
      <button type="button" className="link back" onClick={() => navigate('/')}>
        ← Library
      </button>
      {id && <Problems materialId={id} />}
      {item && item.conflicts.length > 0 && <Conflicts item={item} />}
      <form onSubmit={(event) => void save(event)} noValidate className="material-form">
        <h1>{id ? 'Edit material' : 'New material'}</h1>
        <label htmlFor="title">Title</label>
        <input id="title" value={fields.title} onChange={(e) => change({ title: e.target.value })} aria-invalid={error !== null} aria-describedby={error ? 'title-error' : undefined} />
        {error && (
          <p id="title-error" className="field-error" role="alert">
            {error}
          </p>
        )}
        <label htmlFor="body">Body</label>
        <textarea id="body" rows={10} value={fields.body} onChange={(e) => change({ body: e.target.value })} />
        <label htmlFor="tags">Tags</label>
        <input id="tags" value={fields.tags} placeholder="biology, exam" aria-describedby="tags-hint" onChange={(e) => change({ tags: e.target.value })} />
        <p id="tags-hint" className="hint">Separate tags with commas.</p>
        <div className="actions">
          <button type="submit">Save</button>
          {saved && !item?.pending && <span className="saved">Saved</span>}
          {saved && item?.pending && <span className="saved">Saved on this device</span>}
          {id && (
            <button type="button" className="danger" onClick={() => void remove()}>
              Delete
            </button>
          )}
        </div>
      </form>
      {item && <ProgressPanel item={item} />}
      {item && <Attachments item={item} />}
    </main>
  );
}
