-- Batched visibility: many (row, subscriber group) checks in ONE call. For each (role, claims) group the
-- role and claims are set once (transaction-local), then each of that group's rows is looked up by primary
-- key under RLS. `checks` = [{"g": group index (1-based), "e": table oid, "pk": [cols], "v": [values]}].
-- Result[i] answers checks[i]; a group whose checks raise an error gets false for all of them.
create or replace function realtime.madbase_visible_batch(checks jsonb, roles text[], claims text[])
returns boolean[]
language plpgsql as $$
declare
  n int := jsonb_array_length(checks);
  result boolean[] := array_fill(false, array[n]);
  conds jsonb := '{}';
  g int;
  i int;
  c jsonb;
  cond text;
  ok boolean;
begin
  for g in 1 .. coalesce(array_length(roles, 1), 0) loop
    perform set_config('role', roles[g], true);
    perform set_config('request.jwt.claims', claims[g], true);
    begin
      for i in 0 .. n - 1 loop
        c := checks -> i;
        continue when (c ->> 'g')::int <> g;
        cond := conds ->> (c ->> 'e');
        if cond is null then
          select string_agg(format('%I = ($1)[%s]::%s', a.attname, u.n, format_type(a.atttypid, a.atttypmod)),
                            ' and ')
            into cond
            from jsonb_array_elements_text(c -> 'pk') with ordinality as u(col, n)
            join pg_attribute a on a.attrelid = (c ->> 'e')::oid and a.attname = u.col and not a.attisdropped;
          cond := format('select exists(select 1 from %s where %s)', (c ->> 'e')::oid::regclass, cond);
          conds := conds || jsonb_build_object(c ->> 'e', cond);
        end if;
        execute cond into ok using array(select jsonb_array_elements_text(c -> 'v'));
        result[i + 1] := ok;
      end loop;
    exception when others then
      raise warning 'realtime visibility check failed for role %: %', roles[g], sqlerrm;
    end;
  end loop;
  return result;
end $$;
revoke all on function realtime.madbase_visible_batch(jsonb, text[], text[]) from public;
