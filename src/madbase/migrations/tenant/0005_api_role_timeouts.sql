-- Supabase's statement timeouts for the API roles: anon 3 s, authenticated 8 s (service_role has none).
-- Set for this database only (ALTER ROLE ... IN DATABASE): the roles are cluster-wide and several projects may
-- share a cluster. A role setting takes effect at login only, never on SET ROLE, so MadBase reads these back and
-- applies them in each request transaction (core/timeouts.py); change them with the same statement
-- (`alter role anon in database mydb set statement_timeout = '5s'`) or the project config key
-- `statement_timeouts`. An existing setting (role-wide or for this database) is left alone.
do $$
declare
  r record;
begin
  for r in select * from (values ('anon', '3s'), ('authenticated', '8s')) as v(role, timeout) loop
    if not exists (
      select from pg_db_role_setting s join pg_roles ro on ro.oid = s.setrole
      where ro.rolname = r.role
        and s.setdatabase in (0, (select oid from pg_database where datname = current_database()))
        and exists (select from unnest(s.setconfig) c where c like 'statement_timeout=%')
    ) then
      execute format('alter role %I in database %I set statement_timeout = %L', r.role, current_database(),
                     r.timeout);
    end if;
  end loop;
end
$$;
