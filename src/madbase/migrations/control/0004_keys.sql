-- API keys beside the legacy anon/service_role JWTs, and the grace window of rotated keys (docs/keys.md).
--
-- api_keys: the new key style (sb_publishable_…, sb_secret_…: several per project, named, revocable one by
-- one) and the legacy JWT keys a rotation retired (type 'legacy', accepted until expires_at). Every key is
-- found by its SHA-256 digest; only keys that may be shown again (publishable) or must keep verifying as a
-- JWT during their grace window (legacy) also keep a sealed copy (SecretBox). A secret key's clear value is
-- shown once, at creation.
-- jwt_secrets: a project's previous HS256 secrets, verifying until grace_until (the current one stays in
-- projects.jwt_secret_enc).
-- Every change notifies madbase_projects: each server process reloads the project's keys at once.

create table madbase_control.api_keys (
  id           uuid primary key default gen_random_uuid(),
  project_ref  text not null references madbase_control.projects (ref) on delete cascade,
  type         text not null check (type in ('publishable', 'secret', 'legacy')),
  name         text not null check (name ~ '^[a-z_][a-z0-9_]{0,63}$'),
  role         text not null check (role in ('anon', 'service_role')),
  digest       bytea not null unique,
  hint         text not null,        -- the masked form shown in lists
  key_enc      bytea,                -- sealed clear value (publishable, retired legacy); null for secret keys
  created_at   timestamptz not null default now(),
  expires_at   timestamptz,          -- end of the grace window of a rotated legacy key
  revoked_at   timestamptz,
  check ((type = 'legacy') = (expires_at is not null)),
  check (type = 'secret' or key_enc is not null)
);
create unique index api_keys_name on madbase_control.api_keys (project_ref, name)
  where revoked_at is null and type <> 'legacy';
create index api_keys_project on madbase_control.api_keys (project_ref);

create table madbase_control.jwt_secrets (
  id           text primary key,
  project_ref  text not null references madbase_control.projects (ref) on delete cascade,
  secret_enc   bytea not null,
  retired_at   timestamptz not null default now(),
  grace_until  timestamptz not null
);
create index jwt_secrets_project on madbase_control.jwt_secrets (project_ref, grace_until);

create function madbase_control.notify_key_change() returns trigger
language plpgsql as $$
begin
  perform pg_notify('madbase_projects', coalesce(new.project_ref, old.project_ref));
  return null;
end $$;

create trigger api_keys_notify after insert or update or delete on madbase_control.api_keys
  for each row execute function madbase_control.notify_key_change();
create trigger jwt_secrets_notify after insert or update or delete on madbase_control.jwt_secrets
  for each row execute function madbase_control.notify_key_change();
