-- Realtime: the publication users add tables to (as on Supabase), the persisted subscriptions that let a
-- restarted server know whom pending changes are for, realtime.messages + realtime.topic() for private
-- channel authorisation by RLS, and the batched visibility check used for every change.
do $$
begin
  if not exists (select 1 from pg_publication where pubname = 'supabase_realtime') then
    create publication supabase_realtime;
  end if;
end $$;

create table if not exists realtime.subscription (
  id           uuid primary key,
  node         text not null,
  topic        text not null,
  binding_id   bigint not null,
  schema_name  text not null,
  table_name   text,
  event        text not null,
  filter       text,
  claims       jsonb not null,
  claims_role  text not null,
  created_at   timestamptz not null default now(),
  last_seen    timestamptz not null default now()
);
create index if not exists subscription_node_idx on realtime.subscription (node);

create table if not exists realtime.messages (
  id          bigint generated always as identity primary key,
  topic       text not null,
  extension   text not null,
  payload     jsonb,
  event       text,
  private     boolean default false,
  inserted_at timestamptz not null default now(),
  updated_at  timestamptz not null default now()
);
alter table realtime.messages enable row level security;
grant select, insert on realtime.messages to anon, authenticated, service_role, supabase_realtime_admin;
grant usage on schema realtime to supabase_realtime_admin;

create or replace function realtime.topic() returns text
language sql stable as $$
  select nullif(current_setting('realtime.topic', true), '')::text
$$;
grant execute on function realtime.topic() to public, anon, authenticated, service_role;

-- For one row of `entity` (located by its primary key values, as text) and several (role, claims) groups:
-- may each group SELECT that row right now? One call per change, whatever the number of subscribers.
create or replace function realtime.madbase_visible(
  entity regclass, pk_cols text[], pk_vals text[], roles text[], claims text[]
) returns boolean[]
language plpgsql as $$
declare
  cond text;
  ok boolean;
  result boolean[] := '{}';
  i int;
begin
  select string_agg(format('%I = ($1)[%s]::%s', a.attname, u.n, format_type(a.atttypid, a.atttypmod)), ' and ')
    into cond
    from unnest(pk_cols) with ordinality as u(c, n)
    join pg_attribute a on a.attrelid = entity and a.attname = u.c and not a.attisdropped;
  if cond is null then
    return array_fill(false, array[coalesce(array_length(roles, 1), 0)]);
  end if;
  for i in 1 .. coalesce(array_length(roles, 1), 0) loop
    perform set_config('role', roles[i], true);
    perform set_config('request.jwt.claims', claims[i], true);
    perform set_config('request.jwt.claim.sub', coalesce(claims[i]::jsonb ->> 'sub', ''), true);
    perform set_config('request.jwt.claim.role', coalesce(claims[i]::jsonb ->> 'role', ''), true);
    perform set_config('request.jwt.claim.email', coalesce(claims[i]::jsonb ->> 'email', ''), true);
    begin
      execute format('select exists(select 1 from %s where %s)', entity, cond) into ok using pk_vals;
    exception when insufficient_privilege then
      ok := false;
    end;
    result := result || ok;
  end loop;
  return result;
end $$;
revoke all on function realtime.madbase_visible(regclass, text[], text[], text[], text[]) from public;
grant execute on function realtime.madbase_visible(regclass, text[], text[], text[], text[])
  to supabase_realtime_admin;
