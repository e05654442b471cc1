/**
 * The lab DNS server: a real UDP DNS server answering A records for names with weights (one
 * address per answer, chosen by weight for each query) and a TTL (1 s by default) — the way a
 * managed DNS record with weights 100/0 → 0/100 behaves — plus a small HTTP admin API that the
 * `dns` switch strategy talks to:
 *
 *   GET  /records              → { "<name>": {targets, ttl}, … }
 *   GET  /records/<name>       → {targets: [{address, weight}], ttl}   (404 if unknown)
 *   PUT  /records/<name>       ← {targets: [{address, weight}], ttl?}
 *   DELETE /records/<name>
 *
 * Unknown names get NXDOMAIN; a known name whose weights are all 0 gets an empty answer.
 */
import { createSocket, type Socket } from 'node:dgram';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import dnsPacket from 'dns-packet';

const MAX_BODY = 64 * 1024;

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export interface DnsTarget {
  address: string;
  weight: number;
}

export interface DnsRecord {
  targets: DnsTarget[];
  /** Seconds (default 1). */
  ttl: number;
}

export interface DnsServerOptions {
  host: string;
  /** UDP port (default: any free one). */
  port?: number;
  /** HTTP admin port (default: any free one), on the same host. */
  adminPort?: number;
  records?: Record<string, Partial<DnsRecord> & { targets: DnsTarget[] }>;
  /** Random source for the weighted choice (tests inject one). */
  random?: () => number;
}

export interface StartedDnsServer {
  host: string;
  dnsPort: number;
  adminUrl: string;
  setRecord(name: string, record: Partial<DnsRecord> & { targets: DnsTarget[] }): void;
  getRecord(name: string): DnsRecord | undefined;
  /** Queries answered per name and address (for tests and reports). */
  stats(): Record<string, Record<string, number>>;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const norm = (name: string) => name.toLowerCase().replace(/\.$/, '');

/** Validate an admin-API record (parse once at the edge). Pure. */
export function parseRecord(body: unknown): DnsRecord {
  const b = body as any;
  if (!b || typeof b !== 'object' || !Array.isArray(b.targets)) throw new Error('body must be {targets: [{address, weight}], ttl?}');
  const targets: DnsTarget[] = b.targets.map((t: any, i: number) => {
    if (!t || typeof t.address !== 'string' || !/^(\d{1,3}\.){3}\d{1,3}$/.test(t.address)) throw new Error(`targets[${i}].address must be an IPv4 address`);
    const weight = t.weight === undefined ? 1 : Number(t.weight);
    if (!Number.isFinite(weight) || weight < 0) throw new Error(`targets[${i}].weight must be a number ≥ 0`);
    return { address: t.address, weight };
  });
  const ttl = b.ttl === undefined ? 1 : Number(b.ttl);
  if (!Number.isInteger(ttl) || ttl < 0) throw new Error('ttl must be a whole number of seconds ≥ 0');
  for (const k of Object.keys(b)) if (k !== 'targets' && k !== 'ttl') throw new Error(`unknown key ${k}`);
  return { targets, ttl };
}

/** Weighted choice of one address (undefined when every weight is 0). Pure given `random`. */
export function pickTarget(targets: DnsTarget[], random: () => number = Math.random): string | undefined {
  const total = targets.reduce((a, t) => a + t.weight, 0);
  if (total <= 0) return undefined;
  let x = random() * total;
  for (const t of targets) {
    if (t.weight <= 0) continue;
    if (x < t.weight) return t.address;
    x -= t.weight;
  }
  return targets.filter((t) => t.weight > 0).at(-1)!.address;
}

export async function startDnsServer(opts: DnsServerOptions): Promise<StartedDnsServer> {
  const records = new Map<string, DnsRecord>();
  const counts = new Map<string, Map<string, number>>();
  const random = opts.random ?? Math.random;
  const setRecord = (name: string, rec: Partial<DnsRecord> & { targets: DnsTarget[] }) => records.set(norm(name), parseRecord(rec));
  for (const [n, rec] of Object.entries(opts.records ?? {})) setRecord(n, rec);

  const udp: Socket = createSocket('udp4');
  udp.on('message', (msg, rinfo) => {
    let q: dnsPacket.Packet;
    try {
      q = dnsPacket.decode(msg);
    } catch {
      return; // not DNS: ignore
    }
    const question = q.questions?.[0];
    const answers: dnsPacket.Answer[] = [];
    let rcode: 'NOERROR' | 'NXDOMAIN' = 'NOERROR';
    if (question) {
      const rec = records.get(norm(question.name));
      if (!rec) rcode = 'NXDOMAIN';
      else if (question.type === 'A' || (question.type as string) === 'ANY') {
        const address = pickTarget(rec.targets, random);
        if (address) {
          answers.push({ type: 'A', name: question.name, class: 'IN', ttl: rec.ttl, data: address });
          const per = counts.get(norm(question.name)) ?? new Map<string, number>();
          per.set(address, (per.get(address) ?? 0) + 1);
          counts.set(norm(question.name), per);
        }
      }
    }
    const res = dnsPacket.encode({
      type: 'response',
      id: q.id,
      flags: dnsPacket.AUTHORITATIVE_ANSWER | ((q.flags ?? 0) & dnsPacket.RECURSION_DESIRED) | (rcode === 'NXDOMAIN' ? 3 : 0),
      questions: q.questions,
      answers,
    });
    udp.send(res, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve, reject) => {
    udp.once('error', reject);
    udp.bind({ address: opts.host, port: opts.port ?? 0 }, () => {
      udp.off('error', reject);
      resolve();
    });
  });

  const send = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  // The admin API moves production-like traffic: a local web page must not be able to drive it.
  // Bodies are bounded, writes must be JSON (a browser cannot send that cross-origin without a
  // CORS preflight, which this server never approves), and the Host header must be ours (DNS rebinding).
  const readBody = (req: IncomingMessage) =>
    new Promise<string>((resolve, reject) => {
      let s = '';
      let n = 0;
      req.on('data', (d: Buffer) => {
        n += d.length;
        if (n > MAX_BODY) {
          reject(new HttpError(413, `request body larger than ${MAX_BODY} bytes`));
          req.destroy();
          return;
        }
        s += d;
      });
      req.on('end', () => resolve(s));
      req.on('error', reject);
    });
  let adminPort = 0;
  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const hostHeader = (req.headers.host ?? '').toLowerCase();
    const okHosts = [opts.host, 'localhost', '127.0.0.1', '[::1]'].map((h) => `${h.toLowerCase()}:${adminPort}`);
    if (!okHosts.includes(hostHeader)) throw new HttpError(421, `unexpected Host header ${JSON.stringify(hostHeader)}: use ${opts.host}:${adminPort}`);
    if (req.headers.origin) throw new HttpError(403, 'cross-origin requests are not accepted');
    const url = new URL(req.url ?? '/', 'http://x');
    const m = /^\/records(?:\/([^/]+))?$/.exec(url.pathname);
    if (!m) return send(res, 404, { error: 'unknown path: use /records/<name>' });
    let name: string | undefined;
    if (m[1]) {
      try {
        name = norm(decodeURIComponent(m[1]));
      } catch {
        throw new HttpError(400, `malformed percent-escape in the record name ${JSON.stringify(m[1])}`);
      }
      if (!name || name.length > 253 || !/^[a-z0-9_.-]+$/.test(name)) throw new HttpError(400, `invalid DNS name ${JSON.stringify(name)}: letters, digits, -, _ and dots, at most 253`);
    }
    if (!name) {
      if (req.method !== 'GET') return send(res, 405, { error: 'GET /records only' });
      return send(res, 200, Object.fromEntries(records));
    }
    if (req.method === 'GET') {
      const rec = records.get(name);
      return rec ? send(res, 200, rec) : send(res, 404, { error: `no record for ${name}` });
    }
    if (req.method === 'PUT' || req.method === 'POST') {
      const type = String(req.headers['content-type'] ?? '').split(';')[0].trim().toLowerCase();
      if (type !== 'application/json') throw new HttpError(415, `Content-Type must be application/json (got ${JSON.stringify(type || 'none')})`);
      let body: unknown;
      try {
        body = JSON.parse((await readBody(req)) || '{}');
      } catch (e) {
        if (e instanceof HttpError) throw e;
        throw new HttpError(400, `body is not JSON: ${(e as Error).message}`);
      }
      try {
        const rec = parseRecord(body as any);
        records.set(name, rec);
        return send(res, 200, rec);
      } catch (e: any) {
        throw new HttpError(400, e?.message ?? String(e));
      }
    }
    if (req.method === 'DELETE') {
      records.delete(name);
      return send(res, 200, { deleted: name });
    }
    return send(res, 405, { error: `${req.method} not allowed` });
  };
  const http: Server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (res.headersSent) return res.destroy();
      send(res, e instanceof HttpError ? e.status : 500, { error: e instanceof Error ? e.message : String(e) });
    });
  });
  await new Promise<void>((resolve, reject) => {
    http.once('error', reject);
    http.listen({ host: opts.host, port: opts.adminPort ?? 0 }, () => {
      http.off('error', reject);
      resolve();
    });
  });
  const addr = http.address();
  adminPort = typeof addr === 'object' && addr ? addr.port : 0;
  const close = async () => {
    await new Promise<void>((r) => udp.close(() => r()));
    http.closeAllConnections?.();
    await new Promise<void>((r) => http.close(() => r()));
  };
  return {
    host: opts.host,
    dnsPort: udp.address().port,
    adminUrl: `http://${opts.host}:${adminPort}`,
    setRecord,
    getRecord: (n) => records.get(norm(n)),
    stats: () => Object.fromEntries([...counts].map(([n, m]) => [n, Object.fromEntries(m)])),
    close,
    [Symbol.asyncDispose]: close,
  };
}
