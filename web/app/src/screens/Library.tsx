/** The library: search by title and tag, newest first, opening from IndexedDB before the network. */
import { useEffect, useLayoutEffect, useState } from 'react';
import { useQuery } from '@tanstack/react-query';
import type { MaterialItem } from '@shelf/sdk';
import { linkTo, navigate } from '../router';
import { useEngineState, useSync } from '../sync/LibraryVersionSyncProvider';
import { listQuery } from '../sync/queries';
import { FirstSyncProgress } from '../components/SyncStatus';
import { Problems } from '../components/Problems';

const PAGE = 200;
/** Rows in the very first render: a screenful and some, so the first paint stays cheap. */
const FIRST_RENDER = 40;

declare global {
  interface Window {
    /** Milliseconds from navigation start to the first paint of a non-empty library (measured by the browser tests). */
    __shelfLibraryPaintMs?: number;
  }
}

export function Library() {
  const { engine, session } = useSync();
  const { ready } = useEngineState();
  const [search, setSearch] = useState('');
  const [shown, setShown] = useState(FIRST_RENDER);
  const { data: items = [] } = useQuery(listQuery(engine, session.userId, search));

  useLayoutEffect(() => {
    if (items.length > 0 && window.__shelfLibraryPaintMs === undefined) {
      requestAnimationFrame(() => (window.__shelfLibraryPaintMs ??= performance.now()));
    }
  }, [items.length]);
  // The rest of the first page right after the first paint.
  useEffect(() => {
    const timer = setTimeout(() => setShown(PAGE), 0);
    return () => clearTimeout(timer);
  }, [search]);

  return (
    <main className="library">
      <div className="toolbar">
        <div className="search">
          <label htmlFor="search">Search</label>
          <input id="search" type="search" placeholder="Title, or #tag" value={search} onChange={(e) => setSearch(e.target.value)} />
        </div>
        <button type="button" onClick={() => navigate('/new')}>
          New material
        </button>
      </div>
      <FirstSyncProgress />
      <Problems />
      {ready && items.length === 0 && <Empty searching={search.trim() !== ''} />}
      <ul className="materials" aria-label="Materials">
        {items.slice(0, shown).map((item) => (
          <Row key={item.id} item={item} />
        ))}
      </ul>
      {items.length > shown && (
        <button type="button" className="secondary more" onClick={() => setShown(shown + PAGE)}>
          Show more ({items.length - shown} left)
        </button>
      )}
    </main>
  );
}

function Row({ item }: { item: MaterialItem }) {
  const percent = Math.round(item.progress?.percentComplete ?? 0);
  return (
    <li>
      <a href={`/materials/${item.id}`} onClick={linkTo(`/materials/${item.id}`)}>
        <span className="title">{item.title}</span>
        <span className="meta">
          {item.tags.map((tag) => (
            <span key={tag} className="tag">
              #{tag}
            </span>
          ))}
          {item.conflicts.length > 0 && <span className="badge warn">Needs your decision</span>}
          {item.pending && <span className="badge">Not sent yet</span>}
        </span>
        <span className="progress-mini" aria-label={`${percent}% complete`}>
          <span style={{ width: `${percent}%` }} />
        </span>
      </a>
    </li>
  );
}

function Empty({ searching }: { searching: boolean }) {
  return <p className="empty">{searching ? 'No material matches this search.' : 'Your library is empty. Add your first material with “New material”.'}</p>;
}
