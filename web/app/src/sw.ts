/// <reference lib="webworker" />
/**
 * Shelf's Service Worker: Workbox precaches the app shell (the list is injected at build time),
 * so the app opens offline; the library itself comes from IndexedDB. Attachment downloads are
 * answered from the cache that `warmAttachments` fills (content never changes for an id).
 *
 * Updates: a new worker waits until the page says SKIP_WAITING, which the page does at a moment
 * that loses no typing (see update.ts). Outdated precaches are dropped on activation, but the
 * server keeps earlier builds' hashed files, so a tab of the old build never hits a missing chunk.
 */
import { clientsClaim } from 'workbox-core';
import { cleanupOutdatedCaches, createHandlerBoundToURL, precacheAndRoute } from 'workbox-precaching';
import { NavigationRoute, registerRoute } from 'workbox-routing';
import { CacheFirst } from 'workbox-strategies';
import { createShelfClient, pushNotificationText, pushUser, recordPushedVersion, request, subscribePush, PERIODIC_SYNC_TAG, PUSH_TAG } from '@shelf/sdk';

declare const self: ServiceWorkerGlobalScope;

// The first install takes control of open pages at once (there is no older build to protect);
// later builds wait for SKIP_WAITING.
clientsClaim();
precacheAndRoute(self.__WB_MANIFEST);
cleanupOutdatedCaches();

registerRoute(new NavigationRoute(createHandlerBoundToURL('/index.html'), { denylist: [/^\/api\//, /^\/healthz/, /^\/readyz/] }));

registerRoute(({ url, request }) => request.method === 'GET' && /^\/api\/materials\/[^/]+\/attachments\/[^/]+\/content$/.test(url.pathname), new CacheFirst({ cacheName: 'shelf-attachments' }));

self.addEventListener('message', (event) => {
  if ((event.data as { type?: string } | null)?.type === 'SKIP_WAITING') void self.skipWaiting();
});

/**
 * Web Push (ADR 0006). Browsers allow no silent pushes, so every push shows one notification
 * (grouped by tag: the next replaces it) and records the server's version in the user's replica
 * database, where the version manager finds it at the next start; open tabs are told at once.
 */
interface PushedVersion {
  libraryVersion: number;
  epoch: string;
}

function readPayload(data: PushMessageData | null): PushedVersion | null {
  try {
    const body = data?.json() as Partial<PushedVersion> | undefined;
    return typeof body?.libraryVersion === 'number' && typeof body.epoch === 'string' ? { libraryVersion: body.libraryVersion, epoch: body.epoch } : null;
  } catch {
    return null; // Not ours (or not JSON): still show a notification, as the browser requires.
  }
}

async function announce(version: PushedVersion | null): Promise<void> {
  const record = version
    ? await recordPushedVersion(version).catch((error: unknown) => {
        console.warn('Shelf: could not record the pushed version', error);
        return null;
      })
    : null;
  const body = record ? pushNotificationText(record) : 'Your library changed on another device';
  await self.registration.showNotification('Shelf', { body, tag: PUSH_TAG, icon: '/icon-192.png', badge: '/icon-192.png', data: { url: '/' } });
  const windows = await self.clients.matchAll({ type: 'window' });
  for (const client of windows) client.postMessage({ type: 'shelf-push', version, notification: body });
}

self.addEventListener('push', (event) => {
  event.waitUntil(announce(readPayload(event.data)));
});

self.addEventListener('notificationclick', (event) => {
  event.notification.close();
  event.waitUntil(
    self.clients.matchAll({ type: 'window', includeUncontrolled: true }).then((windows) => {
      const open = windows.find((client) => new URL(client.url).origin === self.location.origin);
      return open ? open.focus().then(() => undefined) : self.clients.openWindow('/').then(() => undefined);
    }),
  );
});

/** The push service replaced the subscription: subscribe again and tell the server (cookie). */
self.addEventListener('pushsubscriptionchange', (event) => {
  const change = event as Event & { waitUntil(promise: Promise<unknown>): void };
  change.waitUntil(
    pushUser()
      .then((userId) => (userId ? subscribePush(createShelfClient(), self.registration, userId) : undefined))
      .catch((error: unknown) => console.warn('Shelf: could not renew the push subscription; the app renews it at its next start', error)),
  );
});

/** Periodic Background Sync (installed apps in Chromium): note a newer version without a push. */
self.addEventListener('periodicsync', (event) => {
  const sync = event as Event & { tag?: string; waitUntil(promise: Promise<unknown>): void };
  if (sync.tag !== PERIODIC_SYNC_TAG) return;
  sync.waitUntil(
    request(createShelfClient().GET('/api/library/version'))
      .then((version) => recordPushedVersion(version))
      .catch((error: unknown) => console.warn('Shelf: periodic version check failed', error)),
  );
});
