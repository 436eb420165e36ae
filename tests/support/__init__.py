"""Test helpers shared by every service's tests: a real PostgreSQL cluster and real server processes."""
