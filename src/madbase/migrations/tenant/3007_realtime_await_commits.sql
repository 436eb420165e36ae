-- A change can reach the consumer before its transaction is visible to other sessions: PostgreSQL flushes the
-- commit record (and wakes the walsender) before it removes the transaction from the proc array. A visibility
-- check in that window does not see the new row, and the change was dropped for RLS subscribers (measured:
-- 20 of 10,000 with synchronous_commit=on on a busy 2-core machine). The checks therefore first wait (at most
-- 2 s) until every transaction of the batch has left the "in progress" state; the checks that follow run
-- EXECUTE statements in this volatile function, so each takes a fresh snapshot that includes those commits.
-- xids are pgoutput's 32-bit transaction ids, widened to xid8 with the current epoch.
create or replace function realtime.madbase_await_commits(xids bigint[]) returns void
language plpgsql as $$
declare
  top bigint := pg_snapshot_xmax(pg_current_snapshot())::text::bigint;
  epoch bigint := top >> 32;
  low bigint := top & 4294967295;
  x bigint;
  wide bigint;
  deadline timestamptz := clock_timestamp() + interval '2 seconds';
begin
  foreach x in array coalesce(xids, '{}') loop
    wide := ((case when x >= low and epoch > 0 then epoch - 1 else epoch end) << 32) | x;
    begin
      while coalesce(pg_xact_status(wide::text::xid8), '') = 'in progress' and clock_timestamp() < deadline loop
        perform pg_sleep(0.0002);
      end loop;
    exception when others then
      null;  -- an xid too old for the commit log is long committed or aborted
    end;
  end loop;
end $$;
revoke all on function realtime.madbase_await_commits(bigint[]) from public;

create or replace function realtime.madbase_visible_sets(
  pos int[], grp int[], ent oid[], keyv text[], roles text[], claims text[], xids bigint[]
) returns boolean[]
language plpgsql as $$
begin
  perform realtime.madbase_await_commits(xids);
  return realtime.madbase_visible_sets(pos, grp, ent, keyv, roles, claims);
end $$;
revoke all on function realtime.madbase_visible_sets(int[], int[], oid[], text[], text[], text[], bigint[]) from public;
