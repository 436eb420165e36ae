-- MadBase: asymmetric JWT signing keys (RS256/ES256). The private key is sealed with the server's master
-- key; the public half is also published in the project's config for the gateway and /.well-known/jwks.json.
create table if not exists auth.madbase_signing_keys (
  kid text primary key,
  alg text not null check (alg in ('RS256', 'ES256')),
  private_key bytea not null,
  public_jwk jsonb not null,
  status text not null default 'active' check (status in ('active', 'previous', 'revoked')),
  created_at timestamptz not null default now()
);
grant select, insert, update, delete on auth.madbase_signing_keys to supabase_auth_admin;
