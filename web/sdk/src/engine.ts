/**
 * The sync engine of one signed-in user in one tab: the replica and outbox in IndexedDB, the
 * optimistic view, the leader election and the version follower. Push the outbox, then pull the
 * feed — see docs/sync-protocol.md. Knows no React: the app subscribes and renders.
 */
import { request, ShelfApiError } from './api/client';
import { LeaderElection } from './leader';
import { VersionFollower } from './follower';
import { enqueue, pendingCount, requeueJournal, setAside, settle, takeBatch, toInput, type NewMutation } from './outbox';
import { applyPage, clearLibrary, deleteProblem, openReplica, putProblem, readCursor, readSnapshot, type ReplicaDB } from './replica';
import { buildView } from './view';
import { getLatestCachedVersion, serverIsAhead, shouldRefreshCache, writeLocalVersion, type VersionStores } from './version-manager';
import type { CachedVersion, MaterialItem, ProgressInput } from './types';
import { readPending, writePending } from './pending';
import { PUSHED_VERSION_KEY } from './push';
import { loadListSnapshot, saveListSnapshot } from './list-snapshot';
import type { EngineChange, EngineOptions, EngineState, Message } from './engine-types';

export type { EngineChange, EngineOptions, EngineState } from './engine-types';

export class SyncEngine {
  state: EngineState = { status: 'syncing', pendingCount: 0, lastError: null, currentVersion: null, isSSEConnected: false, syncPercent: null, problems: [], ready: false, authLost: false, serverAhead: null };
  items = new Map<string, MaterialItem>();
  private db: ReplicaDB | undefined;
  private listeners = new Set<(change: EngineChange) => void>();
  private channel: BroadcastChannel;
  private election: LeaderElection | undefined;
  private follower: VersionFollower;
  private syncQueued: Promise<void> | null = null;
  private syncAgain = false;
  private retryTimer: ReturnType<typeof setTimeout> | undefined;
  private retryAttempt = 0;
  private stopped = false;
  private readonly versions: VersionStores;

  constructor(private readonly options: EngineOptions) {
    // Paint the list from localStorage before IndexedDB opens; `state.ready` stays false until
    // the replica replaced it (screens that need bodies wait for it).
    this.items = loadListSnapshot(options.storage, options.userId);
    this.channel = new BroadcastChannel(`shelf-sync-${options.userId}`);
    this.channel.addEventListener('message', this.onMessage);
    this.versions = {
      local: options.storage,
      readIndexedDb: async () => ((await (await this.database()).get('meta', 'version')) as CachedVersion | undefined) ?? null,
      writeIndexedDb: async (version) => void (await (await this.database()).put('meta', version, 'version')),
      readPushed: async () => ((await (await this.database()).get('meta', PUSHED_VERSION_KEY)) as CachedVersion | undefined) ?? null,
    };
    const win = options.window;
    this.follower = new VersionFollower(
      {
        fetch: options.fetch ?? fetch.bind(globalThis),
        poll: () => request(options.client.GET('/api/library/version')),
        isOnline: () => win?.navigator.onLine ?? true,
        isVisible: () => win?.document.visibilityState !== 'hidden',
      },
      {
        version: (version) => {
          this.broadcast({ type: 'version', version });
          this.onServerVersion(version);
        },
        connection: ({ streaming }) => {
          this.broadcast({ type: 'connection', streaming });
          this.update({ isSSEConnected: streaming });
        },
        authLost: () => this.onAuthLost(),
      },
    );
  }

  subscribe(listener: (change: EngineChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Opens the replica and shows it (before any network), then elects, follows and syncs. */
  async start(): Promise<void> {
    const cached = await getLatestCachedVersion(this.versions, this.options.userId);
    await this.reload('all');
    if (cached.indexedDbLost) await this.noteStorageLost();
    this.update({
      ready: true,
      currentVersion: cached.latest?.libraryVersion ?? null,
      status: this.offline() ? 'offline' : 'syncing',
      serverAhead: cached.serverAhead?.libraryVersion ?? null,
    });
    for (const [target, type, handler] of this.pageEvents()) target.addEventListener(type, handler);
    const locks = this.options.locks ?? (globalThis.navigator as Navigator | undefined)?.locks;
    if (locks) {
      const leaderChannel = new BroadcastChannel(`shelf-leader-${this.options.userId}`);
      this.election = new LeaderElection(`shelf-leader-${this.options.userId}`, {
        locks,
        channel: leaderChannel,
        onChange: (isLeader) => (isLeader ? this.follower.start() : this.follower.stop()),
      });
      this.election.start();
      this.broadcast({ type: 'hello' });
    } else {
      this.follower.start();
    }
    void this.requestPersistence();
    void this.sync();
  }

  stop(): void {
    this.stopped = true;
    clearTimeout(this.retryTimer);
    clearTimeout(this.snapshotTimer);
    this.follower.stop();
    this.election?.stop();
    this.channel.close();
    for (const [target, type, handler] of this.pageEvents()) target.removeEventListener(type, handler);
    this.db?.close();
  }

  /** The page events the engine follows: connectivity, focus, visibility, freezing. */
  private pageEvents(): [Pick<EventTarget, 'addEventListener' | 'removeEventListener'>, string, () => void][] {
    const win = this.options.window;
    if (!win) return [];
    return [
      [win, 'online', this.onOnline],
      [win, 'offline', this.onOffline],
      [win, 'focus', this.onFocus],
      [win.document, 'visibilitychange', this.onVisibility],
      [win.document, 'freeze', this.onFreeze],
      [win.document, 'resume', this.onResume],
      [win, 'pagehide', this.onFreeze],
      [win, 'pageshow', this.onResume],
    ];
  }

  get isLeader(): boolean {
    return this.election?.isLeader ?? true;
  }

  // ---- edits (optimistic: outbox first, view at once, then push) ----

  async createMaterial(input: { id?: string; title: string; body?: string; tags?: string[] }): Promise<string> {
    const id = input.id ?? crypto.randomUUID();
    await this.edit([{ type: 'material.create', id, baseVersion: this.baseVersion(), data: { title: input.title, body: input.body ?? '', tags: input.tags ?? [] } }]);
    return id;
  }

  async updateMaterial(id: string, patch: { title?: string; body?: string; tags?: string[] }): Promise<void> {
    await this.edit([{ type: 'material.update', id, baseVersion: this.baseVersionOf(id), data: patch }]);
  }

  async deleteMaterial(id: string): Promise<void> {
    await this.edit([{ type: 'material.delete', id, baseVersion: this.baseVersionOf(id) }]);
  }

  async setProgress(id: string, input: ProgressInput): Promise<void> {
    await this.edit([{ type: 'progress.set', id, baseVersion: this.baseVersionOf(id), data: { ...input } }]);
  }

  /** Through the outbox like any edit, so a conflict can be settled offline too. */
  async resolveConflict(materialId: string, conflictId: string, resolution: 'server' | 'device' | 'custom', value?: string): Promise<void> {
    // `custom` carries its value; the others carry none (the protocol's tagged union).
    const data = resolution === 'custom' ? { conflictId, resolution, value: value ?? '' } : { conflictId, resolution };
    await this.edit([{ type: 'conflict.resolve', id: materialId, baseVersion: this.baseVersionOf(materialId), data }]);
  }

  /** Attaches a file already uploaded (tus); the attachment id is chosen here. */
  async attachFile(materialId: string, file: { sha256: string; filename: string; contentType: string; size: number }): Promise<void> {
    await this.edit([{ type: 'attachment.add', id: materialId, baseVersion: this.baseVersionOf(materialId), data: { attachmentId: crypto.randomUUID(), ...file } }]);
  }

  async detachFile(materialId: string, attachmentId: string): Promise<void> {
    await this.edit([{ type: 'attachment.remove', id: materialId, baseVersion: this.baseVersionOf(materialId), data: { attachmentId } }]);
  }

  async dismissProblem(key: string): Promise<void> {
    await deleteProblem(await this.database(), key);
    await this.reload([]);
    this.broadcast({ type: 'changed', ids: [] });
  }

  private async edit(mutations: NewMutation[]): Promise<void> {
    await enqueue(await this.database(), mutations);
    await this.reload(mutations.map((m) => m.id));
    this.broadcast({ type: 'changed', ids: mutations.map((m) => m.id) });
    void this.sync();
  }

  private baseVersion(): number {
    return this.state.currentVersion ?? 0;
  }

  private baseVersionOf(id: string): number {
    // The replica's version, not the item's: the server treats everything up to it as seen.
    return Math.max(this.baseVersion(), this.items.get(id)?.version ?? 0);
  }

  // ---- syncing ----

  /** Push, then pull; one at a time per browser (a Web Lock), coalescing repeated calls. */
  sync(): Promise<void> {
    if (this.syncQueued) {
      this.syncAgain = true;
      return this.syncQueued;
    }
    this.syncQueued = (async () => {
      do {
        this.syncAgain = false;
        await this.withSyncLock(() => this.syncOnce());
      } while (this.syncAgain && !this.stopped);
    })().finally(() => (this.syncQueued = null));
    return this.syncQueued;
  }

  private async withSyncLock(work: () => Promise<void>): Promise<void> {
    const locks = this.options.locks ?? (globalThis.navigator as Navigator | undefined)?.locks;
    if (!locks) return work();
    await locks.request(`shelf-sync-${this.options.userId}`, { mode: 'exclusive' }, work);
  }

  private async syncOnce(): Promise<void> {
    if (this.stopped || this.state.authLost) return;
    if (this.offline()) return this.update({ status: 'offline' });
    this.update({ status: 'syncing' });
    try {
      let [pushed, pulled] = [false, false];
      // A server that lost history puts acknowledged edits back in the outbox: push them too.
      for (let round = 0, requeued = true; requeued && round < 3; round++) {
        pushed = (await this.push()) || pushed;
        const pull = await this.pull();
        [pulled, requeued] = [pull.changed || pulled, pull.requeued];
      }
      this.retryAttempt = 0;
      const pending = await pendingCount(await this.database());
      this.update({ status: 'synced', lastError: null, pendingCount: pending });
      if (pushed || pulled) this.broadcast({ type: 'changed', ids: 'all' });
    } catch (error) {
      this.onSyncError(error);
    }
  }

  /** Sends the outbox in batches until empty. Returns whether anything was sent. */
  private async push(): Promise<boolean> {
    const db = await this.database();
    let sent = false;
    for (;;) {
      const batch = await takeBatch(db);
      if (batch.length === 0) return sent;
      sent = true;
      const titleOf = (id: string) => this.items.get(id)?.title ?? 'a material';
      let answer;
      try {
        answer = await request(this.options.client.POST('/api/library/mutations', { body: { protocolVersion: PROTOCOL_VERSION, mutations: batch.map(toInput) } }));
      } catch (error) {
        const refused = refusedEntry(error, batch);
        if (!refused) throw error;
        // A protocol error names its mutation; resending it unchanged can never succeed.
        await setAside(db, refused, (error as ShelfApiError).message, titleOf(refused.id));
        continue;
      }
      await settle(db, batch, answer.results, titleOf);
    }
  }

  /** Pulls the feed from the replica's cursor, page by page, each page committed with its cursor. */
  private async pull(): Promise<{ changed: boolean; requeued: boolean }> {
    const db = await this.database();
    const cursor = await readCursor(db);
    let since = cursor?.nextSince ?? 0;
    let epoch = cursor?.epoch;
    let startedFrom = cursor?.startedFrom ?? since;
    let [changed, requeued] = [false, false];
    for (;;) {
      let page;
      try {
        page = await request(this.options.client.GET('/api/library/changes', { params: { query: { since, limit: this.options.feedPageSize ?? 500 } } }));
      } catch (error) {
        if (error instanceof ShelfApiError && error.code === 'resync_required') {
          // Behind our cursor in the same epoch: the server lost history (a restored backup).
          const server = since > 0 ? await request(this.options.client.GET('/api/library/version')) : null;
          if (server && server.epoch === epoch && server.libraryVersion < since) requeued = (await requeueJournal(db)) > 0 || requeued;
          await clearLibrary(db);
          [since, epoch, startedFrom] = [0, undefined, 0];
          continue;
        }
        throw error;
      }
      if (epoch !== undefined && page.epoch !== epoch) {
        // The server's database was replaced or restored: what we hold describes another
        // history, and what it acknowledged may be missing from this one.
        requeued = (await requeueJournal(db)) > 0 || requeued;
        await clearLibrary(db);
        [since, epoch, startedFrom] = [0, page.epoch, 0];
        continue;
      }
      epoch = page.epoch;
      const version = { libraryVersion: page.hasMore ? page.nextSince : page.libraryVersion, epoch: page.epoch };
      const next = { nextSince: page.nextSince, epoch: page.epoch, startedFrom, target: page.libraryVersion };
      const touched = await applyPage(db, page.changes, next, version);
      writeLocalVersion(this.versions, this.options.userId, version);
      if (touched.size > 0 || since === 0) changed = true;
      const span = page.libraryVersion - startedFrom;
      const percent = page.hasMore && span > 0 ? Math.floor((100 * (page.nextSince - startedFrom)) / span) : null;
      since = page.nextSince;
      await this.reload(touched, { currentVersion: version.libraryVersion, syncPercent: percent });
      if (!page.hasMore) {
        await applyPage(db, [], { ...next, startedFrom: page.nextSince }, version);
        return { changed, requeued };
      }
    }
  }

  private onSyncError(error: unknown): void {
    if (error instanceof ShelfApiError && error.status === 401) return this.onAuthLost();
    const network = error instanceof ShelfApiError && error.isNetwork;
    if (network && this.offline()) return this.update({ status: 'offline', syncPercent: null });
    const message = describeError(error);
    this.update({ status: 'error', lastError: message, syncPercent: null });
    clearTimeout(this.retryTimer);
    const delay = Math.min(60_000, 1_000 * 2 ** this.retryAttempt++) * (0.5 + Math.random() / 2);
    this.retryTimer = setTimeout(() => void this.sync(), delay);
  }

  private onServerVersion(version: CachedVersion): void {
    const known = this.state.currentVersion === null ? null : { libraryVersion: this.state.currentVersion, epoch: version.epoch };
    if (shouldRefreshCache(known, version) || this.state.pendingCount > 0) void this.sync();
  }

  /** A push relayed by the Service Worker while this tab is open: note it, then check. */
  async onPushedVersion(version: CachedVersion): Promise<void> {
    if (serverIsAhead(this.state.currentVersion === null ? null : { libraryVersion: this.state.currentVersion, epoch: version.epoch }, version)) {
      this.update({ serverAhead: version.libraryVersion });
    }
    await this.checkVersion();
  }

  /** On focus or visibility: compare the cached version with the server's; refresh if behind. */
  async checkVersion(): Promise<void> {
    if (this.offline() || this.state.authLost) return;
    try {
      const server = await request(this.options.client.GET('/api/library/version'));
      const cached = await getLatestCachedVersion(this.versions, this.options.userId);
      if (cached.indexedDbLost) await this.noteStorageLost();
      if (shouldRefreshCache(cached.latest, server) || this.state.pendingCount > 0) await this.sync();
    } catch (error) {
      this.onSyncError(error);
    }
  }

  private onAuthLost(): void {
    this.follower.stop();
    this.update({ authLost: true, status: 'error', lastError: 'Your session has ended. Log in again to keep syncing.' });
  }

  // ---- storage that survives the browser ----

  private async database(): Promise<ReplicaDB> {
    if (this.db) return this.db;
    this.db = await openReplica(this.options.userId, () => {
      // Closed behind our back (Safari background tab, eviction, deletion): reopen on next use
      // and check whether the data survived.
      this.db = undefined;
      if (!this.stopped) void this.afterReopen();
    });
    return this.db;
  }

  private async afterReopen(): Promise<void> {
    const cached = await getLatestCachedVersion(this.versions, this.options.userId);
    if (cached.indexedDbLost) await this.noteStorageLost();
    await this.reload('all');
    void this.sync();
  }

  /** The browser wiped the database: resync from 0 and tell the learner what was lost. */
  private async noteStorageLost(): Promise<void> {
    const db = await this.database();
    const before = readPending(this.options.storage, this.options.userId);
    const now = await pendingCount(db);
    await clearLibrary(db);
    if (before > now) {
      const lost = before - now;
      await putProblem(db, {
        key: `lost-${Date.now()}`,
        kind: 'lost',
        title: `${lost} unsent edit${lost === 1 ? '' : 's'} lost`,
        message: 'Your browser cleared Shelf’s offline storage before these edits reached the server. Shelf has reloaded your library from the server; please redo them.',
        createdAt: Date.now(),
      });
    }
    writePending(this.options.storage, this.options.userId, now);
  }

  private async requestPersistence(): Promise<void> {
    const storage = (globalThis.navigator as Navigator | undefined)?.storage;
    try {
      if (storage?.persist && !(await storage.persisted())) await storage.persist();
    } catch {
      // Not granted or not supported: eviction is then detected and handled (noteStorageLost).
    }
  }

  // ---- view and notifications ----

  private async reload(ids: Iterable<string> | 'all', extra: Partial<EngineState> = {}): Promise<void> {
    const snapshot = await readSnapshot(await this.database());
    this.items = buildView(snapshot.materials, snapshot.progress, snapshot.attachments, snapshot.outbox);
    writePending(this.options.storage, this.options.userId, snapshot.outbox.length);
    this.scheduleListSnapshot();
    const status = this.offline() ? 'offline' : this.state.status;
    this.state = caughtUp({ ...this.state, status, pendingCount: snapshot.outbox.length, problems: snapshot.problems.sort((a, b) => b.createdAt - a.createdAt), currentVersion: snapshot.version?.libraryVersion ?? this.state.currentVersion, ...extra });
    this.emit({ ids: ids === 'all' ? 'all' : new Set(ids) });
  }

  private snapshotTimer: ReturnType<typeof setTimeout> | undefined;

  /** Saves the list's first screen for the next start, off the critical path. */
  private scheduleListSnapshot(): void {
    clearTimeout(this.snapshotTimer);
    this.snapshotTimer = setTimeout(() => saveListSnapshot(this.options.storage, this.options.userId, this.items.values()), 500);
  }

  private update(patch: Partial<EngineState>): void {
    this.state = caughtUp({ ...this.state, ...patch });
    this.emit({ ids: new Set() });
  }

  private emit(change: EngineChange): void {
    for (const listener of this.listeners) listener(change);
  }

  private broadcast(message: Message): void {
    if (!this.stopped) this.channel.postMessage(message);
  }

  private offline(): boolean {
    return this.options.window ? !this.options.window.navigator.onLine : false;
  }

  private readonly onMessage = (event: MessageEvent): void => {
    const message = event.data as Message;
    if (message.type === 'changed') void this.reload(message.ids);
    else if (message.type === 'connection') this.update({ isSSEConnected: message.streaming });
    // The leader pulls and then says `changed`; a follower's `currentVersion` follows its own
    // replica (it is the base version of its edits), so a version alone only matters for edits
    // this tab still has to push.
    else if (message.type === 'version' && this.state.pendingCount > 0) void this.sync();
    else if (message.type === 'hello' && this.isLeader && this.election) this.broadcast({ type: 'connection', streaming: this.follower.streaming });
  };

  private readonly onOnline = (): void => {
    this.follower.wake();
    void this.sync();
  };
  private readonly onOffline = (): void => this.update({ status: 'offline' });
  private readonly onFocus = (): void => void this.checkVersion();
  private readonly onVisibility = (): void => {
    if (this.options.window?.document.visibilityState === 'visible') void this.checkVersion();
  };
  private readonly onFreeze = (): void => this.election?.resign();
  private readonly onResume = (): void => this.election?.rejoin();
}

/** The sync protocol this engine speaks (`protocolVersion` of mutation batches). */
export const PROTOCOL_VERSION = 1;

/** The entry a 400 answer to a batch names (`mutations[i] …`), if it names one. */
export function refusedEntry<T>(error: unknown, batch: T[]): T | undefined {
  if (!(error instanceof ShelfApiError) || error.status !== 400) return undefined;
  const index = /mutations\[(\d+)\]/.exec(error.message)?.[1];
  return index === undefined ? (batch.length === 1 ? batch[0] : undefined) : batch[Number(index)];
}

/** Words a learner understands, for the status line. */
export function describeError(error: unknown): string {
  if (error instanceof ShelfApiError) {
    if (error.isNetwork) return 'Cannot reach the Shelf server. Your edits are kept and will be sent when it is back.';
    if (error.status >= 500) return 'The Shelf server has a problem right now. Your edits are kept; retrying shortly.';
    if (error.status === 429) return 'The server is busy. Retrying shortly.';
    return error.message;
  }
  return 'Something went wrong while syncing. Retrying shortly.';
}

/** A pushed version the replica has reached is no longer news. */
function caughtUp(state: EngineState): EngineState {
  if (state.serverAhead !== null && state.currentVersion !== null && state.currentVersion >= state.serverAhead) return { ...state, serverAhead: null };
  return state;
}
