-- Secrets in projects.config are stored sealed ({"$sealed": "<AES-256-GCM box>"}, see core/configsecrets.py).
-- SQL cannot seal, so this migration only gives the server (and operators) a cheap way to find rows that
-- still hold a plain secret: the server seals them with Python at every start and whenever it sees one.
-- Keep the paths in step with configsecrets.SECRET_PATHS (tests/core/test_config_secrets.py checks it).
create or replace function madbase_control.config_secret_paths() returns text[]
language sql immutable parallel safe as $$
  select array['$.auth.smtp.password', '$.auth.external.*.secret', '$.auth.hook_send_sms.secrets',
               '$.auth.hook_send_email.secrets', '$.auth.hook_custom_access_token.secrets',
               '$.storage.s3.secret_access_key', '$.storage.s3.session_token']
$$;

create or replace function madbase_control.config_has_plain_secrets(config jsonb) returns boolean
language sql immutable parallel safe as $$
  select exists (
    select 1 from unnest(madbase_control.config_secret_paths()) as p(path)
    where jsonb_path_exists(config,
            (p.path || ' ? (@.type() == "number" || (@.type() == "string" && @ != ""))')::jsonpath))
$$;

comment on function madbase_control.config_has_plain_secrets(jsonb) is
  'true when a secret field of a project config holds a plain value (MadBase seals it at its next start)';

-- The column secrets_enc of 0001 was never used: every secret of the config is sealed in place instead.
comment on column madbase_control.projects.secrets_enc is 'unused (secrets are sealed inside config)';
