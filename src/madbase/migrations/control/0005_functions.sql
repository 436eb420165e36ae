-- Edge functions (docs/functions.md): each project's functions, every deploy a numbered version (the artifact
-- kept, so a rollback is a pointer move), the project's secrets (sealed by the server's SecretBox, bound to
-- project + name) and per-invocation logs (pruned by age). Changes notify `madbase_functions` with
-- '<ref>/<slug>' (or '<ref>/*' for secrets) so every server process drops its cached copy within a second.

create table madbase_control.functions (
  project_ref     text not null references madbase_control.projects (ref) on delete cascade,
  slug            text not null check (slug ~ '^[A-Za-z][A-Za-z0-9_-]{0,63}$'),
  name            text not null check (length(name) between 1 and 200),
  status          text not null default 'active' check (status in ('active', 'paused')),
  active_version  integer,
  verify_jwt      boolean not null default true,
  limits          jsonb not null default '{}'::jsonb,   -- cpu_time_ms, memory_mb, wall_clock_ms, max_body_bytes,
                                                        -- max_concurrency, queue
  allowed_hosts   text[] not null default '{}',
  env             jsonb not null default '{}'::jsonb,   -- plain variables of the manifest (secrets: below)
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now(),
  primary key (project_ref, slug)
);

create table madbase_control.function_versions (
  project_ref  text not null,
  slug         text not null,
  version      integer not null check (version > 0),
  kind         text not null check (kind in ('wasm', 'js')),
  artifact     bytea not null,                          -- the .wasm, or the bundled JavaScript
  sha256       text not null,
  entrypoint   text,
  size_bytes   integer not null,
  created_by   text,
  created_at   timestamptz not null default now(),
  primary key (project_ref, slug, version),
  foreign key (project_ref, slug) references madbase_control.functions (project_ref, slug) on delete cascade
);

create table madbase_control.secrets (
  project_ref  text not null references madbase_control.projects (ref) on delete cascade,
  name         text not null check (name ~ '^[A-Za-z_][A-Za-z0-9_]{0,255}$'),
  value_enc    bytea not null,                          -- SecretBox, context '<ref>:secret:<name>'
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now(),
  primary key (project_ref, name)
);

create table madbase_control.function_logs (
  id            bigserial primary key,
  project_ref   text not null,
  slug          text not null,
  version       integer,
  request_id    text,
  method        text not null,
  path          text not null,
  status        integer not null,
  error         text,
  duration_ms   double precision not null,
  fuel          bigint not null default 0,
  memory_bytes  bigint not null default 0,
  logs          text not null default '',
  at            timestamptz not null default now()
);
create index function_logs_recent on madbase_control.function_logs (project_ref, slug, at desc);
create index function_logs_at on madbase_control.function_logs (at);

create or replace function madbase_control.notify_function_change() returns trigger
language plpgsql as $$
declare
  row_ref text := coalesce(new.project_ref, old.project_ref);
begin
  if tg_table_name = 'secrets' then
    perform pg_notify('madbase_functions', row_ref || '/*');
  else
    perform pg_notify('madbase_functions', row_ref || '/' || coalesce(new.slug, old.slug));
  end if;
  return null;
end $$;

create trigger functions_notify after insert or update or delete on madbase_control.functions
  for each row execute function madbase_control.notify_function_change();
create trigger secrets_notify after insert or update or delete on madbase_control.secrets
  for each row execute function madbase_control.notify_function_change();
