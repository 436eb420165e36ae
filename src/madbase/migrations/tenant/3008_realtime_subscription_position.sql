-- Multi-process realtime (Redis transaction log): a subscription whose socket went away records how far it
-- had been served (`position`, the commit LSN of the last transaction handed to its socket) and when
-- (`detached_at`), so a re-join on ANY process can replay the log from there. Live rows keep both null; the
-- position of a live row of a crashed process is that process's cursor, kept in Redis.
alter table realtime.subscription add column if not exists position bigint;
alter table realtime.subscription add column if not exists detached_at timestamptz;
create index if not exists subscription_topic_idx on realtime.subscription (topic, binding_id);

-- Single process: while some subscription is held for its grace window (the slot is not confirmed past its
-- oldest buffered change), the server records before each hand-off how far its live subscribers were served,
-- so after a crash the replayed changes are skipped for them (no duplicates) and kept for the held ones.
create table if not exists realtime.node_position (
  node       text primary key,
  position   bigint not null,
  updated_at timestamptz not null default now()
);
