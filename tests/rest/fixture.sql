-- The REST test fixture: relations, relationships, functions, RLS and data every REST test reads.
create table authors (id serial primary key, name text not null, bio text);
create table posts (
  id serial primary key, title text not null, body text,
  author_id int references authors(id), editor_id int references authors(id),
  published boolean default false, rating numeric, tags text[], meta jsonb,
  created_at timestamptz default now(),
  search tsvector generated always as (to_tsvector('english', title || ' ' || coalesce(body, ''))) stored
);
create table comments (id serial primary key, post_id int not null references posts(id) on delete cascade,
                       body text not null, votes int default 0);
create table tags (id serial primary key, name text unique not null);
create table post_tags (post_id int references posts(id) on delete cascade,
                        tag_id int references tags(id) on delete cascade, primary key (post_id, tag_id));
create table profiles (id int primary key references authors(id), website text);
create table reservations (id serial primary key, room text, during int4range, seats int[]);
create table todos (id serial primary key, title text not null, done boolean not null default false,
                    priority int default 3, owner text);
create table kv (k text primary key, v text, n int default 7);
create view published_posts as select id, title, author_id, rating from posts where published;

create table notes (id serial primary key, owner uuid, body text);
alter table notes enable row level security;
create policy notes_own on notes for all to authenticated using (owner = auth.uid()) with check (owner = auth.uid());
create policy notes_public on notes for select to anon using (owner is null);
create table feedback (id serial primary key, msg text);
alter table feedback enable row level security;
create policy feedback_anon_insert on feedback for insert to anon with check (true);
create table secrets (id int primary key, v text);
revoke all on secrets from anon, authenticated;

insert into authors (name, bio) values ('Ann', 'writes a lot'), ('Bob', null), ('Cid', 'quiet');
insert into posts (title, body, author_id, editor_id, published, rating, tags, meta) values
  ('Hello World', 'the first post about cats', 1, 2, true, 4.5, '{a,b}', '{"k": "v", "n": 1, "arr": [1, 2]}'),
  ('Second post', 'dogs are great', 1, null, false, 3, '{b}', '{"k": "w", "n": 2}'),
  ('Bob writes', 'cats and dogs', 2, 1, true, null, '{}', null),
  ('Draft, with comma', 'nothing yet', 2, null, false, 2, '{c}', '{"k": "v"}');
insert into comments (post_id, body, votes) values (1, 'Nice', 0), (1, 'Great', 5), (3, 'Hmm', 1);
insert into tags (name) values ('news'), ('tech'), ('misc');
insert into post_tags values (1, 1), (1, 2), (2, 2), (3, 3);
insert into profiles values (1, 'ann.dev');
insert into reservations (room, during, seats) values ('A', '[1,5)', '{1,2}'), ('B', '[10,20)', '{3}');
insert into notes (owner, body) values (null, 'public note'),
  ('00000000-0000-0000-0000-00000000000a', 'note of a'), ('00000000-0000-0000-0000-00000000000b', 'note of b');
insert into secrets values (1, 'hidden');

create function add(a int, b int) returns int language sql immutable as 'select a + b';
create function hello() returns text language sql stable as $$select 'hello'$$;
create function posts_by_author(aid int) returns setof posts language sql stable
  as 'select * from posts where author_id = aid order by id';
create function author_summary(aid int) returns table(name text, post_count bigint) language sql stable
  as 'select a.name, count(p.id) from authors a left join posts p on p.author_id = a.id where a.id = aid group by a.name';
create function get_author(aid int) returns authors language sql stable as 'select * from authors where id = aid';
create function bump(n int) returns int language sql volatile as 'select n + 1';
create function echo_json(jsonb) returns jsonb language sql immutable as 'select $1';
create function do_nothing() returns void language sql volatile as '';
create function raise_it() returns void language plpgsql as $$
begin raise exception 'custom failure' using hint = 'a hint', detail = 'some detail'; end $$;
create function numbers(n int) returns setof int language sql immutable as 'select generate_series(1, n)';
create function arr_len(xs int[]) returns int language sql immutable as 'select coalesce(array_length(xs, 1), 0)';
create function whoami() returns text language sql stable as $$select auth.role() || ':' || coalesce(auth.uid()::text, '')$$;
create function title_upper(posts) returns text language sql stable as 'select upper($1.title)';
create function teapot() returns text language plpgsql volatile as $$
begin
  perform set_config('response.status', '418', true);
  perform set_config('response.headers', '[{"X-Brew": "green"}, {"Cache-Control": "no-store"}]', true);
  return 'short and stout';
end $$;
create view post_cards as select p.id as post_key, p.author_id as writer, p.title from posts p;
create view post_cards2 as select post_key, writer as by_whom from post_cards;
create function check_request() returns void language plpgsql as $$
begin
  if current_setting('request.headers', true)::json->>'x-block' = 'yes' then
    raise sqlstate 'PGRST' using message = '{"code":"BLOCKED","message":"blocked by pre-request"}',
                               detail = '{"status":403,"headers":{"X-Reason":"pre"}}';
  end if;
end $$;
create function top_comment(posts) returns setof comments rows 1 language sql stable
  as 'select * from comments where post_id = $1.id order by votes desc limit 1';
create function recent_posts(authors) returns setof posts language sql stable
  as 'select * from posts where author_id = $1.id order by id desc';
create function main_author(posts) returns authors language sql stable
  as 'select * from authors where id = $1.author_id';
create function my_cookie() returns text language sql stable
  as $$select current_setting('request.cookies', true)::json->>'flavour'$$;
create table codes (code char(5) primary key, flags bit(4));
insert into codes values ('AB', B'1010'), ('XYZ12', B'0001');
create function pad_len(c char) returns int language sql immutable as 'select octet_length(c)';
create function keys_of(payload jsonb) returns text[] language sql immutable
  as 'select array(select jsonb_object_keys(payload) order by 1)';
create table accounts (id serial primary key, name text, secret text default 's3cret');
revoke all on accounts from anon, authenticated;
grant select (id, name), insert (name), update (name) on accounts to authenticated;
grant usage on sequence accounts_id_seq to authenticated;
create function shout(text) returns text language sql immutable as 'select upper($1)';
create function sum_all(variadic xs int[]) returns int language sql immutable as 'select sum(x)::int from unnest(xs) x';

comment on table todos is 'Things to do

Kept short.';
comment on column todos.title is 'What to do';
comment on function add(int, int) is 'Adds two integers';

-- PostgREST fidelity (differences postgrest-js's own suite found; tests/rest/test_fidelity.py)
create function poly_ret(bool) returns int language sql as 'select 1';
create function poly_ret(int) returns int language sql as 'select 2';
create function poly_ret(text) returns text language sql as $$select 'foo'$$;
create function poly_none() returns int language sql as 'select 1';
create function poly_none(text) returns text language sql as $$select 'got ' || $1$$;
create function poly_default() returns int language sql as 'select 1';
create function poly_default(int default 42) returns int language sql as 'select 2';
create function poly_default(text default 'd') returns text language sql as $$select 'foo'$$;
create function unnamed_int(int) returns int language sql as 'select 1';
create function unnamed_json(json) returns json language sql as 'select $1';
create function two_unnamed(text, text) returns text language sql as 'select $1 || $2';
create function mixed_unnamed(a int, text default 'x') returns text language sql as 'select $2';
create function unresolvable() returns void language sql as '';
create function unresolvable(a text) returns int language sql as 'select 1';
create function unresolvable(a int) returns text language sql as $$select 'foo'$$;
create function resolvable() returns void language sql as '';
create function resolvable(a text) returns int language sql as 'select 1';
create function resolvable(b int) returns text language sql as $$select 'foo'$$;
create table fid_channels (id bigint generated by default as identity primary key, data jsonb, slug text);
create table fid_users (username text primary key, status text);
create table fid_profiles (id bigint generated by default as identity primary key,
                           username text references fid_users);
create view fid_active_users as select * from fid_users where status = 'ONLINE';
create table fid_collections (id int primary key, description text,
                              parent_id int constraint fid_collections_parent references fid_collections(id));
insert into fid_users values ('supabot', 'ONLINE'), ('kiwi', 'OFFLINE');
insert into fid_profiles (id, username) values (1, 'supabot'), (2, null);
insert into fid_collections values (1, 'root', null), (2, 'child', 1), (3, 'other child', 1), (4, 'grandchild', 2);
