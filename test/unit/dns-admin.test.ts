/** The lab DNS admin API refuses what a local web page or a malformed request could send (issue 20). */
import { request } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDnsServer, type StartedDnsServer } from '../../lab/dns.ts';

let dns: StartedDnsServer;
let port: number;
beforeAll(async () => {
  dns = await startDnsServer({ host: '127.0.0.1', records: { 'db.lab': { targets: [{ address: '127.0.0.2', weight: 100 }] } } });
  port = Number(new URL(dns.adminUrl).port);
});
afterAll(async () => dns?.close());

function raw(method: string, path: string, headers: Record<string, string>, body?: string | Buffer): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, headers }, (res) => {
      let s = '';
      res.on('data', (d) => (s += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: s }));
    });
    req.on('error', (e: any) => (e.code === 'ECONNRESET' || e.code === 'EPIPE' ? resolve({ status: 413, body: 'reset' }) : reject(e)));
    if (body !== undefined) req.write(body);
    req.end();
  });
}
const json = { 'content-type': 'application/json' };
const moved = JSON.stringify({ targets: [{ address: '127.0.0.3', weight: 100 }] });

describe('lab DNS admin API', () => {
  it('a malformed percent-escape is a 400, and the server keeps answering', async () => {
    const r = await raw('GET', '/records/%E0%A4%A', {});
    expect(r.status).toBe(400);
    expect(r.body).toMatch(/malformed percent-escape/);
    expect((await raw('GET', '/records/db.lab', {})).status).toBe(200);
  });

  it('a text/plain POST (what a web page can send without a preflight) does not move the record', async () => {
    const r = await raw('POST', '/records/db.lab', { 'content-type': 'text/plain' }, moved);
    expect(r.status).toBe(415);
    expect((await raw('PUT', '/records/db.lab', {}, moved)).status).toBe(415);
    expect(dns.getRecord('db.lab')!.targets[0].address).toBe('127.0.0.2');
  });

  it('cross-origin requests and foreign Host headers (DNS rebinding) are refused', async () => {
    expect((await raw('PUT', '/records/db.lab', { ...json, origin: 'http://evil.example' }, moved)).status).toBe(403);
    expect((await raw('PUT', '/records/db.lab', { ...json, host: `evil.example:${port}` }, moved)).status).toBe(421);
    expect(dns.getRecord('db.lab')!.targets[0].address).toBe('127.0.0.2');
  });

  it('bodies are bounded; bad JSON and bad names are 400', async () => {
    const big = await raw('PUT', '/records/db.lab', json, Buffer.alloc(200 * 1024, 'x'));
    expect(big.status).toBe(413);
    expect((await raw('PUT', '/records/db.lab', json, '{not json')).status).toBe(400);
    expect((await raw('PUT', '/records/a%20b', json, moved)).status).toBe(400);
    expect(dns.getRecord('db.lab')!.targets[0].address).toBe('127.0.0.2');
  });

  it('a JSON PUT from the switch strategy still works', async () => {
    const r = await fetch(`${dns.adminUrl}/records/db.lab`, { method: 'PUT', headers: json, body: moved });
    expect(r.status).toBe(200);
    expect(dns.getRecord('db.lab')!.targets[0].address).toBe('127.0.0.3');
  });
});
