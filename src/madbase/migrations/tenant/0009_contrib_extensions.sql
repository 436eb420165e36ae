-- pgcrypto and uuid-ossp in the `extensions` schema, as on Supabase, for databases bootstrapped before the
-- embedded PostgreSQL offered them (madbase/pgext); 0001 does the same for new databases.
do $$
begin
  if exists (select 1 from pg_available_extensions where name = 'pgcrypto') then
    create extension if not exists pgcrypto with schema extensions;
  end if;
  if exists (select 1 from pg_available_extensions where name = 'uuid-ossp') then
    create extension if not exists "uuid-ossp" with schema extensions;
  end if;
end $$;
