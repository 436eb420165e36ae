"""The shared core every service stands on: config-free building blocks (errors, JWT, pools, tenancy)."""
