/** A tiny history router: five screens do not need a routing library. */
import { useSyncExternalStore } from 'react';

export type Route =
  | { screen: 'library' }
  | { screen: 'new' }
  | { screen: 'material'; id: string }
  | { screen: 'devices' }
  | { screen: 'settings' };

export function parseRoute(path: string): Route {
  const material = /^\/materials\/([0-9a-f-]{36})$/i.exec(path);
  if (material?.[1]) return { screen: 'material', id: material[1] };
  if (path === '/new') return { screen: 'new' };
  if (path === '/devices') return { screen: 'devices' };
  if (path === '/settings') return { screen: 'settings' };
  return { screen: 'library' };
}

const listeners = new Set<() => void>();
window.addEventListener('popstate', () => listeners.forEach((l) => l()));

export function navigate(path: string, options: { replace?: boolean; state?: unknown } = {}): void {
  if (options.replace) history.replaceState(options.state ?? null, '', path);
  else history.pushState(options.state ?? null, '', path);
  listeners.forEach((l) => l());
  window.scrollTo(0, 0);
}

export function useRoute(): Route {
  const path = useSyncExternalStore(
    (listener) => {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    () => location.pathname,
  );
  return parseRoute(path);
}

/** An `<a>` click handler that navigates without a reload. */
export function linkTo(path: string) {
  return (event: React.MouseEvent) => {
    if (event.metaKey || event.ctrlKey || event.shiftKey || event.button !== 0) return;
    event.preventDefault();
    navigate(path);
  };
}
