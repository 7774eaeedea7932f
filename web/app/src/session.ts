/**
 * Who is signed in on this browser. The session itself is the HttpOnly `shelf_session` cookie;
 * localStorage only remembers whose library to open, so the app can show it before the network
 * answers (and while offline).
 */
import { createShelfClient, databaseName, forgetCachedVersion, request, ShelfApiError } from '@shelf/sdk';
import { stopBackgroundUpdates } from './push';

export interface Session {
  userId: string;
  deviceId: string;
  email: string;
}

const KEY = 'shelf.session';
export const client = createShelfClient();

export function loadSession(): Session | null {
  try {
    const value = JSON.parse(localStorage.getItem(KEY) ?? 'null') as Session | null;
    return value && typeof value.userId === 'string' ? value : null;
  } catch {
    return null;
  }
}

function deviceName(): string {
  const ua = navigator.userAgent;
  const browser = /Edg\//.test(ua) ? 'Edge' : /Firefox\//.test(ua) ? 'Firefox' : /Chrom(e|ium)\//.test(ua) ? 'Chrome' : /Safari\//.test(ua) ? 'Safari' : 'Browser';
  const system = /Android/.test(ua) ? 'Android' : /iPhone|iPad/.test(ua) ? 'iOS' : /Mac OS X/.test(ua) ? 'macOS' : /Windows/.test(ua) ? 'Windows' : /Linux/.test(ua) ? 'Linux' : 'a device';
  return `${browser} on ${system}`;
}

export async function logIn(email: string, password: string): Promise<Session> {
  const answer = await request(client.POST('/api/auth/login', { body: { email, password, deviceName: deviceName() } }));
  const session = { userId: answer.userId, deviceId: answer.deviceId, email };
  localStorage.setItem(KEY, JSON.stringify(session));
  return session;
}

export async function register(email: string, password: string): Promise<Session> {
  await request(client.POST('/api/auth/register', { body: { email, password } }));
  return logIn(email, password);
}

/** Forgets who is signed in, keeping the offline library and outbox for the next login. */
export function forgetSession(): void {
  localStorage.removeItem(KEY);
}

/** Ends the device session and removes this user's offline copy from the browser. */
export async function logOut(session: Session): Promise<void> {
  try {
    await request(client.POST('/api/auth/logout'));
  } catch (error) {
    // Offline or already revoked: the local copy is removed anyway; the session expires or
    // can be revoked from another device's Devices screen.
    if (!(error instanceof ShelfApiError)) throw error;
  }
  localStorage.removeItem(KEY);
  // The server dropped this device's push subscription with its session; the browser drops its own.
  await stopBackgroundUpdates().catch((error: unknown) => console.warn('Shelf: could not drop the push subscription', error));
  forgetCachedVersion({ local: localStorage, readIndexedDb: async () => null, writeIndexedDb: async () => {} }, session.userId);
  for (const key of Object.keys(localStorage)) if (key.endsWith(`.${session.userId}`)) localStorage.removeItem(key);
  indexedDB.deleteDatabase(databaseName(session.userId));
  if ('caches' in window) await caches.delete('shelf-attachments');
}

/** Words for the errors the login form can meet, next to the form. */
export function loginErrorText(error: unknown): string {
  if (!(error instanceof ShelfApiError)) return 'Something went wrong. Please try again.';
  switch (error.code) {
    case 'invalid_credentials': return 'Wrong e-mail address or password.';
    case 'email_taken': return 'This e-mail address already has an account. Log in instead.';
    case 'network': return 'Cannot reach the Shelf server. Check your connection and try again.';
    case 'rate_limited': return 'Too many attempts. Wait a minute and try again.';
    default: return error.message;
  }
}
