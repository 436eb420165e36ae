-- Database broadcasts as on Supabase: realtime.send() and realtime.broadcast_changes() insert into
-- realtime.messages; the replication consumer turns each inserted row into a broadcast on its topic.
-- Rows are only needed in the WAL, so the server deletes them after a day.
do $$
begin
  if not exists (select 1 from pg_publication_tables
                 where pubname = 'supabase_realtime' and schemaname = 'realtime' and tablename = 'messages') then
    alter publication supabase_realtime add table realtime.messages;
  end if;
end $$;

create or replace function realtime.send(payload jsonb, event text, topic text, private boolean default true)
returns void
language sql security definer set search_path = '' as $$
  insert into realtime.messages (topic, extension, event, payload, private)
  values (topic, 'broadcast', event, payload, private)
$$;
grant execute on function realtime.send(jsonb, text, text, boolean)
  to anon, authenticated, service_role, supabase_realtime_admin;

create or replace function realtime.broadcast_changes(
  topic_name text, event_name text, operation text, table_name text, table_schema text, new record,
  old record, level text default 'ROW'
) returns void
language plpgsql as $$
begin
  if level = 'STATEMENT' then
    raise exception 'function can only be triggered for each row, not for each statement';
  end if;
  if operation not in ('INSERT', 'UPDATE', 'DELETE') then
    raise exception 'Unexpected operation type: %', operation;
  end if;
  perform realtime.send(
    jsonb_build_object('schema', table_schema, 'table', table_name, 'operation', operation,
                       'record', case when new is null then null else to_jsonb(new) end,
                       'old_record', case when old is null then null else to_jsonb(old) end),
    event_name, topic_name);
end $$;
grant execute on function realtime.broadcast_changes(text, text, text, text, text, record, record, text)
  to anon, authenticated, service_role, supabase_realtime_admin;
