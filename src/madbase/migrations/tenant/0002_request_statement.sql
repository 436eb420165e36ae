-- One round trip per single-statement request: the request's GUCs (role, claims, request.*) are set and its
-- statement runs inside one call, so the whole request is one implicit transaction with SET LOCAL semantics.
-- The statement text comes from MadBase's planner (identifiers from its schema cache) and every value is a
-- bind parameter: `args` is the statement's $1, referenced as $1[n]. Only the login role may call it; the
-- roles a request switches to (anon, authenticated, service_role) cannot.
create schema if not exists madbase;
revoke all on schema madbase from public;

create or replace function madbase.run_request(names text[], vals text[], stmt text, args text[])
returns setof record
language plpgsql
as $$
begin
  perform set_config(g.k, g.v, true) from unnest(names, vals) as g(k, v);
  return query execute stmt using args;
end
$$;

revoke all on function madbase.run_request(text[], text[], text, text[]) from public;
