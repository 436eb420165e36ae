-- The control plane: projects and their (encrypted) secrets.
create schema if not exists madbase_control;

create table if not exists madbase_control.projects (
  ref               text primary key check (ref ~ '^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$'),
  name              text not null,
  status            text not null default 'active' check (status in ('active', 'disabled', 'deleted')),
  db_url_enc        bytea not null,
  jwt_secret_enc    bytea not null,
  service_key_enc   bytea not null,
  anon_key          text not null,
  login_role        text not null default 'authenticator',
  login_password_enc bytea not null,
  secrets_enc       bytea,
  config            jsonb not null default '{}'::jsonb,
  created_at        timestamptz not null default now(),
  updated_at        timestamptz not null default now(),
  deleted_at        timestamptz
);

create or replace function madbase_control.notify_project_change() returns trigger
language plpgsql as $$
begin
  perform pg_notify('madbase_projects', coalesce(new.ref, old.ref));
  return null;
end $$;

drop trigger if exists projects_notify on madbase_control.projects;
create trigger projects_notify after insert or update or delete on madbase_control.projects
  for each row execute function madbase_control.notify_project_change();

-- Shared fixed-window counters for gateway rate limits (every server process syncs into these).
create unlogged table if not exists madbase_control.rate_counters (
  key          text not null,
  window_start bigint not null,
  count        bigint not null,
  primary key (key, window_start)
);
