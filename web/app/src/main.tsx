import { createRoot } from 'react-dom/client';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import { App } from './App';
import { registerServiceWorker } from './update';
import './styles.css';

// offlineFirst: the app runs behind a Service Worker and reads the library from IndexedDB.
const queryClient = new QueryClient({ defaultOptions: { queries: { networkMode: 'offlineFirst', retry: 1 } } });

createRoot(document.getElementById('root')!).render(
  <QueryClientProvider client={queryClient}>
    <App />
  </QueryClientProvider>,
);

void registerServiceWorker().catch((error: unknown) => console.warn('Service Worker not registered', error));
