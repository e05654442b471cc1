-- The order service's own schema (a user's tables, not the sample app's).
create table customers (
  id bigserial primary key,
  email text not null unique,
  created_at timestamptz not null default now()
);
create table orders (
  id bigserial primary key,
  ref text not null,
  customer_id bigint references customers (id),
  amount_cents integer not null check (amount_cents > 0),
  created_at timestamptz not null default now()
);
create index orders_ref_idx on orders (ref);
