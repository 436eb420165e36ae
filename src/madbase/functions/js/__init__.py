"""Supabase's JavaScript/TypeScript edge functions on QuickJS-NG (WASI) in Wasmtime (docs/functions-js.md)."""
