-- The mail catcher: an auth mail of a project without SMTP is "delivered" to the project's inbox (kept in
-- the outbox with caught_at set, readable through GET /admin/v1/projects/{ref}/inbox) instead of waiting
-- forever, as the Supabase CLI's local stack hands every mail to Inbucket/Mailpit.
alter table auth.madbase_mail_outbox add column if not exists caught_at timestamptz;
create index if not exists madbase_mail_outbox_caught_idx on auth.madbase_mail_outbox (id)
  where caught_at is not null;
