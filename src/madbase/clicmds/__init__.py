"""The `madbase` CLI's control-plane commands (login, projects, keys, config, users, functions, secrets,
db push, gen types), each a small module speaking /admin/v1 through `clicmds.client`. See docs/cli.md."""
