// Baseline for benchmarks (d) and (e): the smallest Node.js HTTP server that answers a health
// JSON of the same shape and size as Loop's GET /api/health. Usage: node health-server.js PORT
'use strict';
const http = require('http');
const port = Number(process.argv[2] || 8223);
const started = Date.now();
const server = http.createServer((req, res) => {
  if (req.method === 'GET' && req.url === '/api/health') {
    const body = JSON.stringify({
      status: 'ok', version: '0.1.0', node: 'bench', uptime_seconds: (Date.now() - started) / 1000, runner: 'docker',
      store: { ok: true, kind: 'sqlite', location: '/tmp/loop-bench/loop.db', error: null },
      docker: { reachable: true, endpoint: 'unix:///var/run/docker.sock', api_version: '1.41', error: null, image: 'loop-agent:latest', image_status: 'present' },
      queue: { capacity: 3, running: 0, waiting: 0 }, active_channels: 0, warnings: [], recent_problems: [],
    });
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
    return;
  }
  res.writeHead(404, { 'Content-Type': 'application/json' });
  res.end('{"status":404}');
});
server.listen(port, '127.0.0.1');
process.on('SIGTERM', () => server.close(() => process.exit(0)));
