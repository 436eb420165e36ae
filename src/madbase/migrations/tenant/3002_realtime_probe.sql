-- Private channel authorisation inserts a probe row (then rolls back) that the caller's SELECT policies
-- must see; the insert itself must not be subject to RLS, so it runs as the table owner.
create or replace function realtime.madbase_probe(p_topic text, p_extension text) returns void
language sql security definer set search_path = '' as $$
  insert into realtime.messages (topic, extension, private) values (p_topic, p_extension, true)
$$;
revoke all on function realtime.madbase_probe(text, text) from public;
grant execute on function realtime.madbase_probe(text, text) to supabase_realtime_admin;
