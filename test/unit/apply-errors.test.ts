import { describe, expect, it } from 'vitest';
import { classifyApplyError, describeApplyError, extractSubscriptionErrors, parseLog } from '../../migration/apply-errors.ts';
import { planTables, RestartTracker, type CatalogTable } from '../../migration/replication.ts';
import { maxFromXml, planSequenceMoves } from '../../migration/sequences.ts';
import { splitKeys, splitSql } from '../../migration/schema-copy.ts';

const ctx17 = { subscription: 'cutover_main', targetMajor: 17 };
const ctx14 = { subscription: 'cutover_main', targetMajor: 14 };

// Lines as a PostgreSQL 17 target wrote them (log_line_prefix '%m [%p] %q%u@%d ').
const LOG17 = `2026-12-02 01:07:01.100 UTC [1001] LOG:  logical replication apply worker for subscription "cutover_main" has started
2026-12-02 01:07:01.200 UTC [1002] LOG:  logical replication table synchronization worker for subscription "cutover_main", table "accounts" has started
2026-12-02 01:07:01.300 UTC [1002] LOG:  logical replication table synchronization worker for subscription "cutover_main", table "accounts" has finished
2026-12-02 01:07:01.400 UTC [1001] ERROR:  logical replication target relation "public.accounts" has neither REPLICA IDENTITY index nor PRIMARY KEY and published relation does not have REPLICA IDENTITY FULL
2026-12-02 01:07:01.400 UTC [1001] CONTEXT:  processing remote data for replication origin "pg_16388" during message type "UPDATE" for replication target relation "public.accounts" in transaction 491, finished at 0/18ADB88
2026-12-02 01:07:01.401 UTC [1001] LOG:  subscription "cutover_main" has been disabled because of an error
2026-12-02 01:07:01.402 UTC [900] LOG:  background worker "logical replication apply worker" (PID 1001) exited with exit code 1
2026-12-02 01:07:02.000 UTC [1500] app@db ERROR:  relation "nope" does not exist at character 15
`;

describe('extractSubscriptionErrors', () => {
  it("finds our apply worker's error with its context, not another session's", () => {
    const errs = extractSubscriptionErrors(LOG17, 'cutover_main', 16388);
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatchObject({ worker: 'apply', level: 'ERROR', pid: 1001, failures: 1 });
    expect(errs[0].message).toContain('has neither REPLICA IDENTITY index nor PRIMARY KEY');
    expect(errs[0].context).toContain('finished at 0/18ADB88');
  });

  it('ignores other subscriptions and a worker that restarted and now runs cleanly', () => {
    expect(extractSubscriptionErrors(LOG17, 'cutover_other')).toEqual([]);
    const healed = LOG17 + `2026-12-02 01:08:00.000 UTC [1600] LOG:  logical replication apply worker for subscription "cutover_main" has started\n`;
    expect(extractSubscriptionErrors(healed, 'cutover_main')).toEqual([]);
  });

  it('counts a table-sync worker in a retry loop (target < 15: it lives milliseconds between retries)', () => {
    const loop = [0, 1, 2]
      .map(
        (i) => `2026-12-02 01:20:3${i}.264 UTC [${2000 + i}] LOG:  logical replication table synchronization worker for subscription "cutover_main", table "accounts" has started
2026-12-02 01:20:3${i}.397 UTC [${2000 + i}] ERROR:  logical replication target relation "public.accounts" has neither REPLICA IDENTITY index nor PRIMARY KEY and published relation does not have REPLICA IDENTITY FULL
2026-12-02 01:20:3${i}.413 UTC [19543] LOG:  background worker "logical replication worker" (PID ${2000 + i}) exited with exit code 1`,
      )
      .join('\n');
    const text = `2026-12-02 01:20:33.213 UTC [1999] LOG:  logical replication apply worker for subscription "cutover_main" has started\n${loop}\n`;
    const errs = extractSubscriptionErrors(text, 'cutover_main', undefined, { applyPid: 1999 });
    expect(errs).toHaveLength(1);
    expect(errs[0]).toMatchObject({ worker: 'sync accounts', failures: 3, pid: 2002 });
    // an older subscription of the same name, before the running apply worker started, is not ours
    const older = `${loop}\n2026-12-02 01:21:00.000 UTC [3000] LOG:  logical replication apply worker for subscription "cutover_main" has started\n`;
    expect(extractSubscriptionErrors(older, 'cutover_main', undefined, { applyPid: 3000 })).toEqual([]);
  });

  it('joins continuation lines and reads the pid from the prefix', () => {
    const r = parseLog('2026-01-01 00:00:00 UTC [42] ERROR:  first\n\tsecond line\n');
    expect(r).toEqual([{ prefix: '2026-01-01 00:00:00 UTC [42]', pid: 42, level: 'ERROR', text: 'first\nsecond line' }]);
  });
});

describe('classifyApplyError', () => {
  it('missing key: says to build the key on the target or use REPLICA IDENTITY FULL', () => {
    const e = classifyApplyError(extractSubscriptionErrors(LOG17, 'cutover_main')[0], ctx17);
    expect(e).toMatchObject({ kind: 'missing-key', relation: 'public.accounts', finishLsn: '0/18ADB88' });
    expect(e.advice.join(' ')).toContain('REPLICA IDENTITY FULL');
    expect(describeApplyError(e)).toContain('apply worker: ERROR:  logical replication target relation "public.accounts"');
  });

  it('duplicate key during apply: delete the row, or SKIP the transaction on 15+ (with its LSN)', () => {
    const err = {
      level: 'ERROR',
      message: 'duplicate key value violates unique constraint "payments_pkey"',
      detail: 'Key (id)=(42) already exists.',
      context: 'processing remote data for replication origin "pg_16390" during message type "INSERT" for replication target relation "public.payments" in transaction 800, finished at 0/3000123',
    };
    const e17 = classifyApplyError(err, ctx17);
    expect(e17.kind).toBe('duplicate-key');
    expect(e17.relation).toBe('public.payments');
    expect(e17.advice[0]).toContain('DELETE FROM public.payments WHERE (id) = (42)');
    expect(e17.advice[1]).toContain("ALTER SUBSCRIPTION cutover_main SKIP (lsn = '0/3000123')");
    expect(classifyApplyError(err, ctx14).advice[1]).toContain('needs a PostgreSQL 15+ target');
  });

  it('duplicate key during the initial copy: the target table must be empty', () => {
    const e = classifyApplyError({ level: 'ERROR', message: 'duplicate key value violates unique constraint "accounts_pkey"', detail: 'Key (id)=(1) already exists.', context: 'COPY accounts, line 1' }, ctx17);
    expect(e.kind).toBe('duplicate-key');
    expect(e.relation).toBe('accounts');
    expect(e.advice[0]).toContain('truncate accounts on the target');
  });

  it('missing table, missing column, permission, constraint, publisher, other', () => {
    expect(classifyApplyError({ level: 'ERROR', message: 'logical replication target relation "public.invoices" does not exist' }, ctx17)).toMatchObject({ kind: 'missing-table', relation: 'public.invoices' });
    expect(classifyApplyError({ level: 'ERROR', message: 'logical replication target relation "public.invoices" does not exist' }, ctx17).advice[0]).toContain('cutover replicate add-table --tables public.invoices');
    expect(classifyApplyError({ level: 'ERROR', message: 'logical replication target relation "public.t" is missing replicated column: "note"' }, ctx17).kind).toBe('missing-column');
    expect(classifyApplyError({ level: 'ERROR', message: 'logical replication target relation "public.t" is missing replicated columns: "a", "b"' }, ctx17).kind).toBe('missing-column');
    const perm = classifyApplyError({ level: 'ERROR', message: 'permission denied for table payments' }, ctx17);
    expect(perm.kind).toBe('permission');
    expect(perm.advice[0]).toContain('run_as_owner');
    expect(classifyApplyError({ level: 'ERROR', message: 'permission denied for table payments' }, ctx14).advice[0]).not.toContain('run_as_owner');
    expect(classifyApplyError({ level: 'ERROR', message: 'user "sub" cannot replicate into relation with row-level security enabled: "t"' }, ctx17).kind).toBe('permission');
    expect(classifyApplyError({ level: 'ERROR', message: 'new row for relation "t" violates check constraint "t_check"' }, ctx17).kind).toBe('constraint');
    expect(classifyApplyError({ level: 'ERROR', message: 'could not receive data from WAL stream: server closed the connection unexpectedly' }, ctx17).kind).toBe('publisher');
    expect(classifyApplyError({ level: 'ERROR', message: 'out of memory' }, ctx17).kind).toBe('other');
  });
});

describe('RestartTracker', () => {
  const snap = (pid: number | null, sync: Array<[string, number]> = [], tables: Array<[string, string]> = [], errors: [number, number] | null = null) => ({
    worker: { pid, receivedLsn: null, lastMessageAt: null },
    syncWorkers: sync.map(([table, p]) => ({ table, pid: p })),
    tables: tables.map(([table, state]) => ({ table, schema: 'public', name: table, state: state as any, stateName: '', rowsCopied: 0, sourceRowsEstimate: 0 })),
    errors: errors ? { applyErrorCount: errors[0], syncErrorCount: errors[1] } : null,
  });
  it('counts apply pid changes and disappearances, not the first start', () => {
    const t = new RestartTracker();
    t.observe(snap(null));
    t.observe(snap(10));
    expect(t.restarts).toBe(0);
    t.observe(snap(null));
    t.observe(snap(11));
    t.observe(snap(12));
    expect(t.restarts).toBe(2);
  });
  it('counts a sync worker vanishing while its table still copies, not when the table is done', () => {
    const t = new RestartTracker();
    t.observe(snap(1, [['a', 5]], [['a', 'd']]));
    t.observe(snap(1, [], [['a', 'd']]));
    expect(t.restarts).toBe(1);
    const u = new RestartTracker();
    u.observe(snap(1, [['a', 5]], [['a', 'd']]));
    u.observe(snap(1, [], [['a', 'r']]));
    expect(u.restarts).toBe(0);
  });
  it('counts rising error counters (15+)', () => {
    const t = new RestartTracker();
    t.observe(snap(1, [], [], [0, 0]));
    t.observe(snap(1, [], [], [2, 1]));
    expect(t.restarts).toBe(3);
  });
});

describe('planSequenceMoves', () => {
  const src = (name: string, lastValue: number | null, increment = 1) => ({ schema: 'public', name, lastValue, increment, maxValue: 2 ** 53 });
  const tgt = (name: string, lastValue: number | null, columnMax: number | null, maxValue = 2 ** 53) => ({ schema: 'public', name, lastValue, increment: 1, maxValue, columnMax });
  it('source + buffer, never below the column max + 1, never backwards, capped at max', () => {
    const m = planSequenceMoves(
      [src('a', 100), src('b', 100), src('c', 100), src('d', null), src('e', 100), src('f', 5, -1), src('g', 100)],
      [tgt('a', 1, 50), tgt('b', 1, 5000), tgt('c', 9000, 10), tgt('d', null, null), tgt('f', 5, null), tgt('g', 1, null, 500)],
      1000,
    );
    const by = Object.fromEntries(m.map((x) => [x.name, x]));
    expect(by.a).toMatchObject({ value: 1100, before: 1, changed: true, sequence: '"public"."a"' });
    expect(by.b).toMatchObject({ value: 5001, columnMax: 5000, changed: true });
    expect(by.c).toMatchObject({ value: 9000, changed: false });
    expect(by.d).toMatchObject({ changed: false, note: 'never used on either side' });
    expect(by.e).toMatchObject({ changed: false, note: 'missing on the target' });
    expect(by.f).toMatchObject({ changed: false, note: 'descending sequence: left as is' });
    expect(by.g).toMatchObject({ value: 500, changed: true });
  });
  it('reads query_to_xml output', () => {
    expect(maxFromXml('<row xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">\n  <m>42</m>\n</row>\n')).toBe(42);
    expect(maxFromXml('')).toBeNull();
    expect(maxFromXml('<row><m>-7</m></row>')).toBe(-7);
  });
});

describe('keys before the copy', () => {
  it('splits the replication keys (PK, replica-identity index, partition attach) from the rest of post-data', () => {
    const post = splitSql(`-- Name: accounts accounts_pkey; Type: CONSTRAINT; Schema: public; Owner: -
ALTER TABLE ONLY public.accounts ADD CONSTRAINT accounts_pkey PRIMARY KEY (id);
-- Name: u_a; Type: INDEX; Schema: public; Owner: -
CREATE UNIQUE INDEX u_a ON public.u USING btree (a);
ALTER TABLE ONLY public.u REPLICA IDENTITY USING INDEX u_a;
-- Name: other_idx; Type: INDEX; Schema: public; Owner: -
CREATE INDEX other_idx ON public.accounts USING btree (name);
-- Name: p1_pkey; Type: INDEX ATTACH; Schema: public; Owner: -
ALTER INDEX public.p_pkey ATTACH PARTITION public.p1_pkey;
-- Name: child child_fk; Type: FK CONSTRAINT; Schema: public; Owner: -
ALTER TABLE ONLY public.child ADD CONSTRAINT child_fk FOREIGN KEY (a) REFERENCES public.accounts(id);
`);
    const keys = new Set(['CONSTRAINT\u0000public\u0000accounts accounts_pkey', 'INDEX\u0000public\u0000u_a', 'INDEX ATTACH\u0000public\u0000p1_pkey']);
    const { keys: k, rest } = splitKeys(post, keys);
    expect(k.map((s) => s.sql.split(' ').slice(0, 3).join(' '))).toEqual(['ALTER TABLE ONLY', 'CREATE UNIQUE INDEX', 'ALTER TABLE ONLY', 'ALTER INDEX public.p_pkey']);
    expect(k[2].sql).toContain('REPLICA IDENTITY USING INDEX u_a');
    expect(rest.map((s) => s.entry?.name)).toEqual(['other_idx', 'child child_fk']);
  });

  it('refuses REPLICA IDENTITY NOTHING even with a primary key', () => {
    const t: CatalogTable = { oid: 1, schema: 'public', name: 'n', relkind: 'r', partitioned: false, isPartition: false, hasPk: true, replicaIdentity: 'n', estimatedRows: 0 };
    expect(planTables([t], undefined, { sourceMajor: 13, copyData: true }).problems[0]).toContain('REPLICA IDENTITY NOTHING');
  });
});
