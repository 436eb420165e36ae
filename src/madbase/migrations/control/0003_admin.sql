-- The control plane's own identity (docs/admin.md): admins, roles as data (a role is a set of rights),
-- role assignments (platform-wide or per project), browser sessions, personal access tokens, TOTP factors
-- with recovery codes, the append-only audit log and the failed-login record behind the lockout.
-- Every credential is stored as a digest (sessions, tokens, recovery codes: SHA-256 of a random secret;
-- passwords: Argon2id); a TOTP secret, which must be read back, is sealed by the server's SecretBox.

create table madbase_control.admins (
  id               uuid primary key default gen_random_uuid(),
  email            text not null check (length(email) between 3 and 320),
  password_hash    text,                       -- Argon2id (argon2-cffi's encoded form); null: no password login
  builtin          text check (builtin in ('local')),
  disabled         boolean not null default false,
  created_at       timestamptz not null default now(),
  updated_at       timestamptz not null default now()
);
create unique index admins_email on madbase_control.admins (lower(email));
create unique index admins_builtin on madbase_control.admins (builtin) where builtin is not null;

-- Rights: '<area>.<verb>' ('projects.write'), patterns '*', '<area>.*', '*.<verb>', and exclusions
-- '!<pattern>' (an exclusion wins over any grant of the same role).
create table madbase_control.roles (
  name         text primary key check (name ~ '^[a-z][a-z0-9_]{1,62}$'),
  description  text not null default '',
  rights       text[] not null,
  builtin      boolean not null default false,
  created_at   timestamptz not null default now(),
  updated_at   timestamptz not null default now()
);

insert into madbase_control.roles (name, description, rights, builtin) values
  ('platform_admin', 'Everything, on every project and the platform itself', '{*}', true),
  ('owner', 'Everything on the project', '{*}', true),
  ('developer', 'Everything on the project but its admins, key changes and deleting it',
   '{*,!admins.*,!keys.write,!projects.delete}', true),
  ('read_only', 'Read everything on the project', '{*.read}', true);

create table madbase_control.role_assignments (
  id           uuid primary key default gen_random_uuid(),
  admin_id     uuid not null references madbase_control.admins (id) on delete cascade,
  role         text not null references madbase_control.roles (name) on update cascade,
  project_ref  text references madbase_control.projects (ref) on delete cascade,  -- null: platform-wide
  created_at   timestamptz not null default now()
);
create unique index role_assignments_unique
  on madbase_control.role_assignments (admin_id, role, coalesce(project_ref, ''));
create index role_assignments_project on madbase_control.role_assignments (project_ref);

create table madbase_control.sessions (
  id            uuid primary key default gen_random_uuid(),
  admin_id      uuid not null references madbase_control.admins (id) on delete cascade,
  token_digest  bytea not null unique,
  mfa           boolean not null default false,   -- a TOTP code or recovery code was given at login
  ip            text,
  user_agent    text,
  created_at    timestamptz not null default now(),
  last_seen_at  timestamptz not null default now(),
  expires_at    timestamptz not null,
  revoked_at    timestamptz
);
create index sessions_admin on madbase_control.sessions (admin_id);

create table madbase_control.access_tokens (
  id            uuid primary key default gen_random_uuid(),
  admin_id      uuid not null references madbase_control.admins (id) on delete cascade,
  kind          text not null default 'pat' check (kind in ('pat', 'local')),
  name          text not null check (length(name) between 1 and 200),
  token_digest  bytea not null unique,
  hint          text not null,                 -- the first characters, to recognise a token in a list
  rights        text[],                        -- null: every right of the admin
  projects      text[],                        -- null: every project the admin may see (and the platform)
  created_at    timestamptz not null default now(),
  expires_at    timestamptz,
  last_used_at  timestamptz,
  revoked_at    timestamptz
);
create index access_tokens_admin on madbase_control.access_tokens (admin_id);

create table madbase_control.totp_factors (
  admin_id     uuid primary key references madbase_control.admins (id) on delete cascade,
  secret_enc   bytea not null,
  verified_at  timestamptz,                    -- null: enrolment started, not confirmed with a code yet
  last_step    bigint,                         -- the last accepted time step (a code is never accepted twice)
  created_at   timestamptz not null default now()
);

create table madbase_control.recovery_codes (
  id           bigserial primary key,
  admin_id     uuid not null references madbase_control.admins (id) on delete cascade,
  code_digest  bytea not null,
  used_at      timestamptz
);
create index recovery_codes_admin on madbase_control.recovery_codes (admin_id);

-- Failed logins by e-mail (whether or not such an admin exists: the lockout must not tell) for the lockout.
create table madbase_control.login_failures (
  email_key  text not null,
  ip         text,
  at         timestamptz not null default now()
);
create index login_failures_key on madbase_control.login_failures (email_key, at);

-- The audit log: one row per mutation, never a secret. Append-only: updates, deletes and truncation are
-- refused by triggers for every role (the server's included).
create table madbase_control.audit_log (
  id            bigserial primary key,
  at            timestamptz not null default clock_timestamp(),
  actor_id      uuid,                          -- no foreign key: a deleted admin's records stay
  actor_email   text,
  actor_method  text,                          -- session | token | local
  action        text not null,
  target        text,
  project_ref   text,
  request_id    text,
  source_ip     text,
  details       jsonb not null default '{}'::jsonb
);
create index audit_log_actor on madbase_control.audit_log (actor_id, id);
create index audit_log_action on madbase_control.audit_log (action, id);
create index audit_log_project on madbase_control.audit_log (project_ref, id);
create index audit_log_at on madbase_control.audit_log (at);

create function madbase_control.audit_log_append_only() returns trigger
language plpgsql as $$
begin
  raise exception 'the audit log is append-only' using errcode = '42501';
end $$;

create trigger audit_log_no_change before update or delete on madbase_control.audit_log
  for each row execute function madbase_control.audit_log_append_only();
create trigger audit_log_no_truncate before truncate on madbase_control.audit_log
  for each statement execute function madbase_control.audit_log_append_only();

-- The built-in local platform admin: the identity of the token the server writes to <data dir>/admin.token
-- at every start (the local CLI's). It has no password and cannot log in.
insert into madbase_control.admins (id, email, builtin)
  values ('00000000-0000-0000-0000-00000000000a', 'local-admin@madbase.invalid', 'local');
insert into madbase_control.role_assignments (admin_id, role, project_ref)
  values ('00000000-0000-0000-0000-00000000000a', 'platform_admin', null);
