-- Projects managed through /admin/v1 (admin/projectroutes.py): where a project's database came from.
--   byo     : a database URL the operator gave (never dropped unless a hard delete asks for it)
--   cluster : a database MadBase created on the default (embedded or DATABASE_URL) cluster
alter table madbase_control.projects
  add column if not exists database_kind text not null default 'byo'
    check (database_kind in ('byo', 'cluster'));

-- Soft-deleted projects waiting for their hard delete (grace period) are found by deleted_at.
create index if not exists projects_deleted_at on madbase_control.projects (deleted_at)
  where deleted_at is not null;
