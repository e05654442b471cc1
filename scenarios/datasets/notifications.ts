/**
 * notifications: shaped like a government notification service — services, API keys, templates,
 * jobs (bulk sends), notifications partitioned by month, and a jsonb event stream. uuid keys
 * generated client-side (gen_random_uuid is core only from 13; the old cluster may be 11).
 *
 * Shares of `scale`: services 0.1 %, api_keys 0.3 %, templates 1 %, jobs 3 %, notifications 80 %,
 * notification_events 15.6 %.
 */
import { DAY_MS, EPOCH_2024, Rng, hashString, isoAt, pools, refIndex, share, type Dataset, type DatasetContext, type Preset } from './gen.ts';

const MONTHS = 6;
const TYPES = ['email', 'email', 'email', 'sms', 'sms', 'letter'];
const STATUS = ['created', 'sending', 'delivered', 'delivered', 'delivered', 'delivered', 'delivered', 'permanent-failure', 'temporary-failure', 'technical-failure'];
const KEY_TYPES = ['normal', 'normal', 'team', 'test'];
const EVENTS = ['queued', 'sent-to-provider', 'provider-callback', 'delivered', 'bounced', 'opened'];

function partitionsDdl(): string {
  const out: string[] = [];
  for (let m = 0; m < MONTHS; m++) {
    const from = new Date(Date.UTC(2024, m, 1)).toISOString().slice(0, 10);
    const to = new Date(Date.UTC(2024, m + 1, 1)).toISOString().slice(0, 10);
    out.push(`create table notifications_2024_${String(m + 1).padStart(2, '0')} partition of notifications for values from ('${from}') to ('${to}');`);
  }
  out.push('create table notifications_default partition of notifications default;');
  return out.join('\n');
}

export const NOTIFICATIONS_DDL = `
create type notification_type as enum ('email', 'sms', 'letter');
create type key_type as enum ('normal', 'team', 'test');

create table services (
  id uuid not null,
  name text not null,
  active boolean not null default true,
  message_limit integer not null,
  restricted boolean not null default false,
  created_at timestamptz not null
);

create table api_keys (
  id uuid not null,
  service_id uuid not null,
  name text not null,
  secret text not null,
  key_type key_type not null,
  expiry_date timestamptz,
  created_at timestamptz not null
);

create table templates (
  id uuid not null,
  service_id uuid not null,
  name text not null,
  template_type notification_type not null,
  subject text,
  content text not null,
  version integer not null default 1,
  created_at timestamptz not null
);

create table jobs (
  id uuid not null,
  service_id uuid not null,
  template_id uuid not null,
  original_file_name text not null,
  notification_count integer not null,
  job_status text not null,
  created_at timestamptz not null,
  processing_started timestamptz
);

create table notifications (
  id uuid not null,
  service_id uuid not null,
  template_id uuid not null,
  job_id uuid,
  api_key_id uuid,
  notification_type notification_type not null,
  "to" text not null,
  status text not null,
  reference text,
  created_at timestamptz not null,
  sent_at timestamptz,
  updated_at timestamptz
) partition by range (created_at);
${partitionsDdl()}

create table notification_events (
  id bigserial,
  notification_id uuid not null,
  event_type text not null,
  data jsonb not null,
  created_at timestamptz not null
);
`;

export const NOTIFICATIONS_POST_DDL = `
alter table services add primary key (id);
alter table services add constraint services_name_key unique (name);
alter table api_keys add primary key (id);
alter table templates add primary key (id);
alter table jobs add primary key (id);
alter table notifications add primary key (id, created_at);
alter table notification_events add primary key (id);
alter table api_keys add constraint api_keys_service_id_fkey foreign key (service_id) references services (id);
alter table templates add constraint templates_service_id_fkey foreign key (service_id) references services (id);
alter table jobs add constraint jobs_service_id_fkey foreign key (service_id) references services (id);
alter table jobs add constraint jobs_template_id_fkey foreign key (template_id) references templates (id);
alter table notifications add constraint notifications_service_id_fkey foreign key (service_id) references services (id);
alter table notifications add constraint notifications_template_id_fkey foreign key (template_id) references templates (id);
alter table notifications add constraint notifications_job_id_fkey foreign key (job_id) references jobs (id);
alter table notifications add constraint notifications_api_key_id_fkey foreign key (api_key_id) references api_keys (id);
create index notifications_service_created_idx on notifications (service_id, created_at);
create index notifications_job_id_idx on notifications (job_id);
create index notification_events_notification_id_idx on notification_events (notification_id);
create index notification_events_data_idx on notification_events using gin (data);
`;

export function buildNotifications(ctx: DatasetContext): Dataset {
  const { seed } = ctx;
  const p = pools(seed);
  const nSvc = share(ctx.scale, 0.001, 2);
  const nKey = share(ctx.scale, 0.003, 2);
  const nTpl = share(ctx.scale, 0.01, 2);
  const nJob = share(ctx.scale, 0.03, 1);
  const nNot = share(ctx.scale, 0.8, 1);
  const nEvt = share(ctx.scale, 0.156, 1);
  const uuidOf = (table: string, i: number) => new Rng(seed, hashString(table + '.id'), i).uuid();
  const serviceOfKey = (k: number) => refIndex(seed, 'api_keys.service_id', k, nSvc);
  const serviceOfTemplate = (t: number) => refIndex(seed, 'templates.service_id', t, nSvc);
  const typeOfTemplate = (t: number) => TYPES[refIndex(seed, 'templates.type', t, TYPES.length)];
  const templateOfJob = (j: number) => refIndex(seed, 'jobs.template_id', j, nTpl);
  const templateOfNotification = (n: number) => refIndex(seed, 'notifications.template_id', n, nTpl, true);
  const createdOfNotification = (n: number) => EPOCH_2024 + refIndex(seed, 'notifications.created_at', n, MONTHS * 30 * DAY_MS);
  const s = (t: string) => hashString(t);

  return {
    name: 'notifications',
    preDdl: NOTIFICATIONS_DDL,
    postDdl: NOTIFICATIONS_POST_DDL,
    tables: [
      {
        schema: 'public',
        name: 'services',
        columns: ['id', 'name', 'active', 'message_limit', 'restricted', 'created_at'],
        rows: nSvc,
        dependsOn: [],
        row(i) {
          const r = new Rng(seed, s('services'), i);
          return [uuidOf('services', i), `${r.pick(p.companies)} (${i + 1})`, r.chance(0.9), r.pick([250000, 1000000, 5000000]), r.chance(0.2), isoAt(EPOCH_2024 - r.int(365 * DAY_MS))];
        },
      },
      {
        schema: 'public',
        name: 'api_keys',
        columns: ['id', 'service_id', 'name', 'secret', 'key_type', 'expiry_date', 'created_at'],
        rows: nKey,
        dependsOn: ['public.services'],
        row(i) {
          const r = new Rng(seed, s('api_keys'), i);
          return [uuidOf('api_keys', i), uuidOf('services', serviceOfKey(i)), `${r.pick(p.words)} key`, r.hex(32), r.pick(KEY_TYPES), r.chance(0.9) ? null : isoAt(EPOCH_2024 + r.int(365 * DAY_MS)), isoAt(EPOCH_2024 - r.int(300 * DAY_MS))];
        },
      },
      {
        schema: 'public',
        name: 'templates',
        columns: ['id', 'service_id', 'name', 'template_type', 'subject', 'content', 'version', 'created_at'],
        rows: nTpl,
        dependsOn: ['public.services'],
        row(i) {
          const r = new Rng(seed, s('templates'), i);
          const type = typeOfTemplate(i);
          return [uuidOf('templates', i), uuidOf('services', serviceOfTemplate(i)), `${r.pick(p.words)} ${r.pick(p.words)}`, type, type === 'sms' ? null : r.pick(p.sentences), `Dear ((name)), ${r.pick(p.sentences)} ${r.pick(p.sentences)}`, 1 + r.int(12), isoAt(EPOCH_2024 - r.int(200 * DAY_MS))];
        },
      },
      {
        schema: 'public',
        name: 'jobs',
        columns: ['id', 'service_id', 'template_id', 'original_file_name', 'notification_count', 'job_status', 'created_at', 'processing_started'],
        rows: nJob,
        dependsOn: ['public.services', 'public.templates'],
        row(i) {
          const r = new Rng(seed, s('jobs'), i);
          const t = templateOfJob(i);
          const created = EPOCH_2024 + r.int(MONTHS * 30 * DAY_MS);
          return [uuidOf('jobs', i), uuidOf('services', serviceOfTemplate(t)), uuidOf('templates', t), `${r.pick(p.words)}-${i}.csv`, 1 + r.int(5000), r.pick(['finished', 'finished', 'finished', 'in progress', 'pending', 'cancelled']), isoAt(created), r.chance(0.85) ? isoAt(created + r.int(600_000)) : null];
        },
      },
      {
        schema: 'public',
        name: 'notifications',
        columns: ['id', 'service_id', 'template_id', 'job_id', 'api_key_id', 'notification_type', 'to', 'status', 'reference', 'created_at', 'sent_at', 'updated_at'],
        rows: nNot,
        dependsOn: ['public.services', 'public.templates', 'public.jobs', 'public.api_keys'],
        row(i) {
          const r = new Rng(seed, s('notifications'), i);
          const t = templateOfNotification(i);
          const type = typeOfTemplate(t);
          const created = createdOfNotification(i);
          // A third of notifications come from bulk jobs, the rest from the API with a key.
          const fromJob = r.chance(0.33);
          const to = type === 'email' ? `${r.pick(p.firstNames)}.${r.pick(p.lastNames)}@${r.pick(p.domains)}`.toLowerCase() : type === 'sms' ? `07${String(r.int(1e9)).padStart(9, '0')}` : `${r.between(1, 200)} ${r.pick(p.lastNames)} Street, ${r.pick(p.cities)}`;
          const status = r.pick(STATUS);
          return [
            uuidOf('notifications', i),
            uuidOf('services', serviceOfTemplate(t)),
            uuidOf('templates', t),
            fromJob ? uuidOf('jobs', refIndex(seed, 'notifications.job_id', i, nJob)) : null,
            fromJob ? null : uuidOf('api_keys', refIndex(seed, 'notifications.api_key_id', i, nKey)),
            type,
            to,
            status,
            r.chance(0.5) ? r.hex(8) : null,
            isoAt(created),
            status === 'created' ? null : isoAt(created + r.int(30_000)),
            status === 'created' ? null : isoAt(created + r.int(3_600_000)),
          ];
        },
      },
      {
        schema: 'public',
        name: 'notification_events',
        columns: ['id', 'notification_id', 'event_type', 'data', 'created_at'],
        rows: nEvt,
        dependsOn: [],
        row(i) {
          const r = new Rng(seed, s('notification_events'), i);
          const n = refIndex(seed, 'notification_events.notification_id', i, nNot);
          const ev = r.pick(EVENTS);
          const data = { event: ev, provider: r.pick(['mmg', 'firetext', 'ses', 'dvla']), attempt: 1 + r.int(3), latency_ms: r.int(5000), tags: [r.pick(p.words), r.pick(p.words)], ok: ev !== 'bounced' };
          return [i + 1, uuidOf('notifications', n), ev, JSON.stringify(data), isoAt(createdOfNotification(n) + r.int(86_400_000))];
        },
      },
    ],
  };
}

export const notifications: Preset = {
  name: 'notifications',
  description: 'services, api keys, templates, jobs, notifications partitioned by month, jsonb events (GOV.UK Notify-like)',
  build: buildNotifications,
};
