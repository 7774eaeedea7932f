/**
 * Registers the Service Worker and applies app updates safely: a new build is announced to
 * every open tab ("A new version of Shelf is ready"), and each tab reloads once, when that
 * loses no typing — right away if nothing is being edited, else when the tab is hidden or the
 * edit is saved. Drafts survive in sessionStorage either way.
 */
import { hasUnsavedTyping } from './drafts';

type Listener = (ready: boolean) => void;
const listeners = new Set<Listener>();
let updateReady = false;
/** The learner clicked "Reload now": drafts are in sessionStorage, so reload even mid-edit. */
let askedForReload = false;

export function onUpdateReady(listener: Listener): () => void {
  listeners.add(listener);
  listener(updateReady);
  return () => listeners.delete(listener);
}

export async function registerServiceWorker(): Promise<void> {
  if (!('serviceWorker' in navigator) || import.meta.env.DEV) return;
  const registration = await navigator.serviceWorker.register('/sw.js', { scope: '/' });
  // Controlled pages get updates; the very first install (clientsClaim) only takes control.
  let controlled = Boolean(navigator.serviceWorker.controller);
  const announce = () => {
    if (!registration.waiting || !navigator.serviceWorker.controller) return;
    updateReady = true;
    listeners.forEach((l) => l(true));
    applyWhenSafe(registration);
  };
  registration.addEventListener('updatefound', () => {
    registration.installing?.addEventListener('statechange', announce);
  });
  announce();
  let reloading = false;
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    if (!controlled) {
      controlled = true;
      return;
    }
    if (reloading) return;
    reloading = true;
    reloadWhenSafe();
  });
  // Long-lived tabs look for a new build when they come back to the foreground.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') void registration.update().catch(() => undefined);
  });
}

/** Called by the "Reload now" button, and automatically once safe. */
export function applyUpdateNow(): void {
  askedForReload = true;
  void navigator.serviceWorker.getRegistration().then((registration) => registration?.waiting?.postMessage({ type: 'SKIP_WAITING' }));
}

function applyWhenSafe(registration: ServiceWorkerRegistration): void {
  whenSafe(() => registration.waiting?.postMessage({ type: 'SKIP_WAITING' }));
}

function reloadWhenSafe(): void {
  whenSafe(() => location.reload());
}

function whenSafe(action: () => void): void {
  const attempt = () => {
    if (askedForReload || document.visibilityState === 'hidden' || !hasUnsavedTyping()) {
      document.removeEventListener('visibilitychange', attempt);
      clearInterval(timer);
      action();
    }
  };
  const timer = setInterval(attempt, 1_000);
  document.addEventListener('visibilitychange', attempt);
  attempt();
}
