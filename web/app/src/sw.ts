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

/** Web Push (when the server sends one): tell open tabs to check the library version. */
self.addEventListener('push', (event) => {
  event.waitUntil(
    self.clients.matchAll({ type: 'window' }).then((clients) => {
      for (const client of clients) client.postMessage({ type: 'shelf-push' });
    }),
  );
});
