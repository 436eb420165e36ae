-- One round trip per single-statement request, with the statement's plan kept per connection.
-- madbase.run_request (0002) parsed and planned its dynamic statement at every call, which cost as much
-- PostgreSQL CPU as running it. Here the statement is a SQL-level prepared statement of its session, named by
-- the caller after a digest of its text and prepared on the connection's first use; PostgreSQL then caches its
-- plan as it does for any prepared statement (re-planned after DDL or a role change under RLS). The values
-- stay data: EXECUTE cannot take bind parameters, so `args` reaches it through a transaction-local setting
-- that only this call writes (PostgreSQL converts the array to text and back). `evict` names a statement the
-- caller no longer tracks on this connection, so the number kept per session stays bounded.
-- PREPARE and DEALLOCATE are not transactional: a failing request can leave a prepared statement behind, so
-- both steps look at pg_prepared_statements first (only on those rare calls).
-- A statement the session lost (DEALLOCATE by other code, a transaction-mode pooler behind the pool) fails as
-- "EXECUTE query does not return tuples" (42601); the caller then calls again with `stmt` and `recheck`: if the
-- statement was there after all the first error was the request's own, reported as MB001 without running it
-- a second time.
create or replace function madbase.run_prepared(names text[], vals text[], name text, stmt text, args text[],
                                                evict text, recheck boolean)
returns setof record
language plpgsql
as $$
begin
  -- first, so that whatever fails later the caller's count of this session's statements stays right
  if evict is not null and exists (select from pg_prepared_statements p where p.name = evict) then
    execute format('deallocate %I', evict);
  end if;
  perform set_config(g.k, g.v, true) from unnest(names, vals) as g(k, v);
  perform set_config('madbase.args', args::text, true);
  if stmt is not null then
    if not exists (select from pg_prepared_statements p where p.name = run_prepared.name) then
      execute format('prepare %I(text[]) as %s', name, stmt);
    elsif recheck then
      raise exception using errcode = 'MB001', message = 'the prepared statement was there';
    end if;
  end if;
  return query execute format('execute %I(current_setting(%L)::text[])', name, 'madbase.args');
end
$$;

revoke all on function madbase.run_prepared(text[], text[], text, text, text[], text, boolean) from public;

drop function if exists madbase.run_request(text[], text[], text, text[]);
