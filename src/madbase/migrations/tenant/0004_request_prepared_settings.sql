-- madbase.run_prepared (0003) with the request's settings as one JSON object instead of two text arrays.
-- The driver encodes every element of an array parameter on its own (with a type check per element); a
-- dozen settings as one JSON text cost the client a tenth of that, and PostgreSQL reads either as quickly.
-- Keys are setting names, values their text; everything else is as in 0003.
create or replace function madbase.run_prepared(settings text, name text, stmt text, args text[], evict text,
                                                recheck boolean)
returns setof record
language plpgsql
as $$
begin
  if evict is not null and exists (select from pg_prepared_statements p where p.name = evict) then
    execute format('deallocate %I', evict);
  end if;
  perform set_config(g.key, g.value, true) from json_each_text(settings::json) as g;
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

revoke all on function madbase.run_prepared(text, text, text, text[], text, boolean) from public;

drop function if exists madbase.run_prepared(text[], text[], text, text, text[], text, boolean);
