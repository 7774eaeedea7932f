// The HTTP client of `scripts/bench-pouchdb`: the same Node client against Shelf and against
// pouchdb-server, so both pay the same client costs. Node's own `http` with one keep-alive agent.
//
//   node scripts/bench-pouchdb.mjs '<json config>'
//
// Config: {"kind": "shelf"|"pouchdb", "base": "http://127.0.0.1:PORT", "token": "..." (shelf),
//          "db": "name" (pouchdb), "pid": server pid, "connections": 16, "seconds": 5, "seed": 50000}
// Seeds the library to `seed` documents, then measures version checks and creates for `seconds`
// each, and prints one JSON line per phase: requests/s, latency p50/p99 (ms), and the server's
// CPU time per request (µs, from /proc/PID/stat, so only the server's own process counts).
import http from 'node:http';
import fs from 'node:fs';

const config = JSON.parse(process.argv[2]);
const connections = config.connections ?? 16;
const seconds = config.seconds ?? 5;
const agent = new http.Agent({ keepAlive: true, maxSockets: connections });
const url = new URL(config.base);

function request(method, path, body) {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const headers = { accept: 'application/json' };
    if (data) headers['content-type'] = 'application/json';
    if (config.token) headers.authorization = `Bearer ${config.token}`;
    const req = http.request({ host: url.hostname, port: url.port, method, path, headers, agent }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString();
        if (res.statusCode >= 300) reject(new Error(`${method} ${path}: ${res.statusCode} ${text}`));
        else resolve(text ? JSON.parse(text) : null);
      });
    });
    req.on('error', reject);
    if (data) req.end(data);
    else req.end();
  });
}

/** The server's CPU seconds so far (user + system), from /proc. */
function cpuSeconds() {
  const stat = fs.readFileSync(`/proc/${config.pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks (USER_HZ = 100)
}

let created = 0;
const material = () => {
  created += 1;
  return { title: `bench ${created}`, body: 'text', tags: ['bench'], progress: { studySecondsDelta: 1 } };
};

const ops = {
  shelf: {
    check: () => request('GET', '/api/library/version'),
    create: () => request('POST', '/api/materials', material()),
    seedBatch: async (n) => {
      // Shelf has no bulk create outside the sync protocol; 16 writers at a time.
      await Promise.all(Array.from({ length: n }, () => request('POST', '/api/materials', material())));
    },
  },
  pouchdb: {
    check: () => request('GET', `/${config.db}`),
    create: () => request('POST', `/${config.db}`, material()),
    seedBatch: (n) => request('POST', `/${config.db}/_bulk_docs`, { docs: Array.from({ length: n }, material) }),
  },
}[config.kind];

async function seed(total) {
  const batch = config.kind === 'pouchdb' ? 500 : connections;
  const started = performance.now();
  for (let done = 0; done < total; done += batch) await ops.seedBatch(Math.min(batch, total - done));
  return (performance.now() - started) / 1000;
}

async function measure(name, op) {
  const latencies = [];
  const cpuBefore = cpuSeconds();
  const started = performance.now();
  const deadline = started + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const t = performance.now();
      await op();
      latencies.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: connections }, worker));
  const elapsed = (performance.now() - started) / 1000;
  const cpu = cpuSeconds() - cpuBefore;
  latencies.sort((a, b) => a - b);
  const at = (q) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  const line = {
    target: config.label ?? config.kind,
    phase: name,
    requests: latencies.length,
    perSecond: Math.round(latencies.length / elapsed),
    p50ms: +at(0.5).toFixed(2),
    p99ms: +at(0.99).toFixed(2),
    serverCpuUsPerRequest: Math.round((cpu * 1e6) / latencies.length),
  };
  console.log(JSON.stringify(line));
}

const seedSeconds = await seed(config.seed ?? 50000);
console.log(JSON.stringify({ target: config.label ?? config.kind, phase: 'seed', documents: config.seed ?? 50000, seconds: +seedSeconds.toFixed(1) }));
await measure('version checks', ops.check);
await measure('creates', ops.create);
agent.destroy();
