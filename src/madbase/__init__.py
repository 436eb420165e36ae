"""MadBase: the Supabase API (auth, rest, storage, realtime, functions) served by one Python process."""

__version__ = "0.1.0"
