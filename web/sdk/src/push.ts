/**
 * Web Push in the browser (spec PU1–PU7, ADR 0006): subscribing this device, and what the Service
 * Worker records when a push arrives.
 *
 * A push carries `{libraryVersion, epoch}`: the server's version, not data. The Service Worker
 * writes it into the user's replica database under `meta.pushedVersion` — never `meta.version`,
 * which says what the replica holds and only the feed may move — so the version manager sees at
 * the next start (even offline) that the server is ahead. The Service Worker knows whose database
 * to write from the small `shelf-push` database, which the page fills when it subscribes.
 */
import { openDB } from 'idb';
import { request, type ShelfClient } from './api/client';
import { openReplica } from './replica';
import type { CachedVersion } from './types';

const PUSH_DB = 'shelf-push';
/** The replica's `meta` key the Service Worker writes. */
export const PUSHED_VERSION_KEY = 'pushedVersion';
/** The notification tag: one notification per library, replaced by the next. */
export const PUSH_TAG = 'shelf-library';
/** Periodic Background Sync's tag (installed apps in Chromium). */
export const PERIODIC_SYNC_TAG = 'shelf-library-check';

const optInKey = (userId: string) => `shelf.push.${userId}`;

function openPushState() {
  return openDB(PUSH_DB, 1, {
    upgrade(db) {
      db.createObjectStore('state');
    },
  });
}

/** Remembers (or, with null, forgets) whose replica the Service Worker writes pushes into. */
export async function rememberPushUser(userId: string | null): Promise<void> {
  const db = await openPushState();
  try {
    if (userId) await db.put('state', userId, 'user');
    else await db.delete('state', 'user');
  } finally {
    db.close();
  }
}

export async function pushUser(): Promise<string | null> {
  const db = await openPushState();
  try {
    const user = await db.get('state', 'user');
    return typeof user === 'string' ? user : null;
  } finally {
    db.close();
  }
}

/** What the Service Worker needs for its notification and its message to open windows. */
export interface PushRecord {
  userId: string;
  pushed: CachedVersion;
  /** What the replica holds (null before the first sync). */
  replica: CachedVersion | null;
}

/**
 * Records a version the server announced (a push, or a periodic check) in the user's replica
 * database. Keeps the highest of one epoch; a new epoch replaces it. Null when no user is known.
 */
export async function recordPushedVersion(version: CachedVersion): Promise<PushRecord | null> {
  const userId = await pushUser();
  if (!userId) return null;
  const db = await openReplica(userId, () => {});
  try {
    const tx = db.transaction('meta', 'readwrite');
    const current = (await tx.store.get(PUSHED_VERSION_KEY)) as CachedVersion | undefined;
    const replica = ((await tx.store.get('version')) as CachedVersion | undefined) ?? null;
    const pushed = current && current.epoch === version.epoch && current.libraryVersion >= version.libraryVersion ? current : version;
    if (pushed !== current) await tx.store.put({ libraryVersion: pushed.libraryVersion, epoch: pushed.epoch }, PUSHED_VERSION_KEY);
    await tx.done;
    return { userId, pushed, replica };
  } finally {
    db.close();
  }
}

/** The notification's words: how many changes, when the replica's version says so. */
export function pushNotificationText(record: Pick<PushRecord, 'pushed' | 'replica'>): string {
  const { pushed, replica } = record;
  const behind = replica && replica.epoch === pushed.epoch ? pushed.libraryVersion - replica.libraryVersion : null;
  if (behind !== null && behind > 0) return `${behind} ${behind === 1 ? 'change' : 'changes'} on another device (version ${pushed.libraryVersion})`;
  return `Library updated on another device (version ${pushed.libraryVersion})`;
}

/** Whether this browser can get pushes, and if not, why. */
export type PushSupport = 'supported' | 'unsupported' | 'needs-home-screen';

export function pushSupport(win: Window & typeof globalThis): PushSupport {
  const ios = /iPhone|iPad|iPod/.test(win.navigator.userAgent) || (win.navigator.platform === 'MacIntel' && win.navigator.maxTouchPoints > 1);
  const standalone = win.matchMedia?.('(display-mode: standalone)').matches || (win.navigator as Navigator & { standalone?: boolean }).standalone === true;
  // iOS and iPadOS offer Web Push only to apps added to the Home Screen.
  if (ios && !standalone) return 'needs-home-screen';
  if (!('serviceWorker' in win.navigator) || !('PushManager' in win) || !('Notification' in win)) return 'unsupported';
  return 'supported';
}

/** Whether the learner turned notifications on for this user on this browser. */
export function pushOptedIn(storage: Pick<Storage, 'getItem'>, userId: string): boolean {
  return storage.getItem(optInKey(userId)) === 'on';
}

function base64UrlToBytes(text: string): Uint8Array<ArrayBuffer> {
  const base64 = text.replace(/-/g, '+').replace(/_/g, '/').padEnd(Math.ceil(text.length / 4) * 4, '=');
  const binary = atob(base64);
  const bytes = new Uint8Array(new ArrayBuffer(binary.length));
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

function sameKey(subscription: PushSubscription, key: Uint8Array): boolean {
  const current = subscription.options.applicationServerKey;
  if (!current) return false;
  const bytes = new Uint8Array(current);
  return bytes.length === key.length && bytes.every((b, i) => b === key[i]);
}

/**
 * Subscribes this device (reusing the browser's subscription when it was made with the server's
 * current key) and hands it to the server. Call after the learner allowed notifications; on
 * every start while opted in (subscriptions get renewed); and on `pushsubscriptionchange`.
 */
export async function subscribePush(client: ShelfClient, registration: ServiceWorkerRegistration, userId: string): Promise<void> {
  const { publicKey } = await request(client.GET('/api/push/vapid-public-key'));
  const key = base64UrlToBytes(publicKey);
  let subscription = await registration.pushManager.getSubscription();
  if (subscription && !sameKey(subscription, key)) {
    await subscription.unsubscribe();
    subscription = null;
  }
  // Browsers allow only visible pushes: every push shows a notification (see sw.ts).
  subscription ??= await registration.pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: key });
  const json = subscription.toJSON();
  await rememberPushUser(userId);
  await request(
    client.POST('/api/push/subscriptions', {
      body: { endpoint: json.endpoint ?? '', keys: { p256dh: json.keys?.p256dh ?? '', auth: json.keys?.auth ?? '' } },
    }),
  );
}

/** Turns notifications on (after `Notification.requestPermission()` said granted). */
export async function enablePush(client: ShelfClient, registration: ServiceWorkerRegistration, storage: Pick<Storage, 'setItem'>, userId: string): Promise<void> {
  await subscribePush(client, registration, userId);
  storage.setItem(optInKey(userId), 'on');
}

/** Turns notifications off: the server forgets the subscription, the browser drops it. */
export async function disablePush(client: ShelfClient, registration: ServiceWorkerRegistration | undefined, storage: Pick<Storage, 'removeItem'>, userId: string): Promise<void> {
  storage.removeItem(optInKey(userId));
  await request(client.DELETE('/api/push/subscriptions'));
  await (await registration?.pushManager.getSubscription())?.unsubscribe();
  await rememberPushUser(null);
}
