/**
 * One version pair rehearsed the way the README's by-hand flow does it, on real embedded servers:
 * seed (payments) → preflight → schema pre-data → publication/subscription → initial sync →
 * post-data → verify → writes on the old side → switchover (DNS, terminate fence, reverse
 * replication) → a write on the new primary travels back to the old one.
 *
 * Each step is timed (wall clock, for the README's version table; never asserted on) and the
 * preflight findings are kept, so the heavy matrix can print the table it is checked against.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { Resolver } from 'node:dns/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startDnsServer } from '../../lab/dns.ts';
import { seed } from '../../lab/seed.ts';
import { preflight, type Finding } from '../../migration/preflight.ts';
import { copySchema } from '../../migration/schema-copy.ts';
import { startReplication, waitForSync } from '../../migration/replication.ts';
import { verify } from '../../migration/verify.ts';
import { DnsSwitch } from '../../migration/switch/dns.ts';
import { switchover, type SwitchoverResult } from '../../migration/switchover/run.ts';
import { startPair, sql } from './clusters.ts';

const NAME = 'db.lab.internal';

export interface PairOutcome {
  old: number;
  new: number;
  rows: number;
  /** Preflight findings by severity: ids only (the messages name paths and versions). */
  findings: { error: string[]; warning: string[]; info: string[] };
  /** pg_dump the schema copy used ("18.6 /…/pg_dump"). */
  pgDump: string;
  verifyOk: boolean;
  mismatchedTables: string[];
  switchover: Pick<SwitchoverResult, 'outcome' | 'writeUnavailableMs' | 'durationMs'> & { error?: string };
  /** After the switch: DNS answers the new primary's address. */
  dnsOnNew: boolean;
  /** Rows in public.payments on the new primary equal the old side's at the fence. */
  countsMatch: boolean;
  /** A row inserted on the new primary (default id: the sequence moved past the source's values) reached the old one. */
  reverseCarried: boolean;
  ms: { up: number; seed: number; preflight: number; replicate: number; verify: number; switchover: number; total: number };
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t = Date.now();
  const v = await fn();
  return [v, Date.now() - t];
}

async function until(fn: () => Promise<boolean>, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (await fn()) return true;
    await new Promise((r) => setTimeout(r, 200));
  }
  return false;
}

export async function rehearsePair(oldMajor: number, newMajor: number, opts: { scale?: number } = {}): Promise<PairOutcome> {
  const t0 = Date.now();
  const [pair, up] = await timed(() => startPair(oldMajor, newMajor));
  const dir = mkdtempSync(join(tmpdir(), `matrix-${oldMajor}-${newMajor}-`));
  const dns = await startDnsServer({ host: '127.0.0.1', records: { [NAME]: { targets: [{ address: pair.old.record.host, weight: 100 }, { address: pair.new.record.host, weight: 0 }], ttl: 1 } } });
  try {
    const src = pair.old.url;
    const tgt = pair.new.url;
    const [seeded, seedMs] = await timed(() => seed({ url: src, preset: 'payments', scale: opts.scale ?? 2000, progress: 'silent' }));
    const [pf, preflightMs] = await timed(() => preflight({ source: src, target: tgt }));
    const by = (s: Finding['severity']) => pf.findings.filter((f) => f.severity === s).map((f) => f.id);
    const [pre, replicateMs] = await timed(async () => {
      const pre = await copySchema({ source: src, target: tgt, section: 'pre-data' });
      await startReplication({ source: src, target: tgt });
      await waitForSync({ source: src, target: tgt, timeoutMs: 120_000 });
      await copySchema({ source: src, target: tgt, section: 'post-data' });
      return pre;
    });
    const [v, verifyMs] = await timed(() => verify({ source: src, target: tgt }));
    // Writes after the initial sync: the catch-up phase must bring them over before the fence.
    await sql(src, `insert into public.accounts (email, full_name, currency) select 'late' || g || '@example.com', 'late ' || g, 'EUR' from generate_series(1, 25) g`);
    const [sw, switchoverMs] = await timed(() =>
      switchover({ source: src, target: tgt, switch: new DnsSwitch({ adminUrl: dns.adminUrl, name: NAME }), stateFile: join(dir, 'state.json'), reverse: true, appRoles: [], allowUnfenced: ['*'] }),
    );
    const resolver = new Resolver();
    resolver.setServers([`127.0.0.1:${dns.dnsPort}`]);
    const dnsOnNew = (await resolver.resolve4(NAME).catch(() => [] as string[]))[0] === pair.new.record.host;
    const count = async (url: string) => Number((await sql(url, `select count(*)::int as n from public.accounts`))[0].n);
    const countsMatch = (await count(src)) === (await count(tgt));
    let reverseCarried = false;
    if (sw.outcome === 'completed') {
      const [row] = await sql(tgt, `insert into public.accounts (email, full_name, currency) values ('on-new@example.com', 'written on new', 'EUR') returning id`);
      reverseCarried = await until(async () => (await sql(src, `select 1 from public.accounts where id = $1`, [row.id])).length === 1, 30_000);
    }
    return {
      old: oldMajor,
      new: newMajor,
      rows: seeded.rows,
      findings: { error: by('error'), warning: by('warning'), info: by('info') },
      pgDump: `${pre.tool.version} ${pre.tool.path}`,
      verifyOk: v.ok,
      mismatchedTables: v.tables.filter((t: any) => !t.ok).map((t: any) => t.table),
      switchover: { outcome: sw.outcome, writeUnavailableMs: sw.writeUnavailableMs, durationMs: sw.durationMs, error: sw.error?.message },
      dnsOnNew,
      countsMatch,
      reverseCarried,
      ms: { up, seed: seedMs, preflight: preflightMs, replicate: replicateMs, verify: verifyMs, switchover: switchoverMs, total: Date.now() - t0 },
    };
  } finally {
    await dns.close();
    await pair.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** One line of the README's version table. */
export function tableRow(o: PairOutcome): string {
  const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
  const warn = o.findings.warning.length ? o.findings.warning.join(', ') : '—';
  const info = o.findings.info.filter((i) => i !== 'tool.pg_dump').join(', ');
  return `| ${o.old} → ${o.new} | ${o.findings.error.length ? o.findings.error.join(', ') : 'none'} | ${warn} | ${info} | ${s(o.ms.replicate)} | ${s(o.ms.verify)} | ${s(o.ms.switchover)} (fenced ${o.switchover.writeUnavailableMs ?? '?'} ms) | ${s(o.ms.total)} |`;
}

export const TABLE_HEADER = [
  '| pair | preflight errors | warnings | info (besides tool.pg_dump) | replicate start → all r + post-data | verify | switchover (dns, reverse) | whole pair incl. up/seed/down |',
  '|---|---|---|---|---|---|---|---|',
];
