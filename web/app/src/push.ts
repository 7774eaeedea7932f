/**
 * Background updates for closed apps (ADR 0006): the Web Push subscription, renewed at every start
 * while the learner has opted in, and Periodic Background Sync where the browser offers it (an
 * installed app in Chromium). Both let the Service Worker record the server's version in IndexedDB
 * for the next start; permission is only ever asked from the Settings screen's click.
 */
import { pushOptedIn, pushSupport, rememberPushUser, subscribePush, PERIODIC_SYNC_TAG } from '@shelf/sdk';
import { client } from './session';

interface PeriodicSyncManager {
  register(tag: string, options: { minInterval: number }): Promise<void>;
}

/** Called once per start of a signed-in app. Never asks for a permission. */
export async function startBackgroundUpdates(userId: string): Promise<void> {
  if (!('serviceWorker' in navigator) || import.meta.env.DEV) return;
  const registration = await navigator.serviceWorker.ready;
  await rememberPushUser(userId);
  if (pushSupport(window) === 'supported' && pushOptedIn(localStorage, userId) && Notification.permission === 'granted') {
    // Subscriptions expire and push services rotate them: hand the current one over each start.
    await subscribePush(client, registration, userId).catch((error: unknown) => console.warn('Shelf: could not renew notifications', error));
  }
  const periodic = (registration as ServiceWorkerRegistration & { periodicSync?: PeriodicSyncManager }).periodicSync;
  if (!periodic) return;
  const permission = await navigator.permissions.query({ name: 'periodic-background-sync' as PermissionName }).catch(() => null);
  if (permission?.state === 'granted') await periodic.register(PERIODIC_SYNC_TAG, { minInterval: 12 * 60 * 60 * 1000 });
}

/** At logout: the browser drops the subscription (the server dropped it with the session). */
export async function stopBackgroundUpdates(): Promise<void> {
  if (!('serviceWorker' in navigator)) return;
  const registration = await navigator.serviceWorker.getRegistration();
  await (await registration?.pushManager?.getSubscription())?.unsubscribe();
  await rememberPushUser(null);
}
