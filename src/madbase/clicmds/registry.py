"""Mount the control-plane commands on the `madbase` Typer app (cli.py calls `register` once)."""

from __future__ import annotations

from typing import Any

import typer

from madbase.clicmds import db, functions, gen, keys, login, projects, secrets, settings, users

GROUPS = (("projects", projects.app), ("keys", keys.app), ("config", settings.app), ("users", users.app),
          ("functions", functions.app), ("secrets", secrets.app), ("db", db.app), ("gen", gen.app))


def _with_classes(sub: typer.Typer, group_cls: Any, command_cls: Any) -> None:
    for info in sub.registered_commands:
        info.cls = info.cls or command_cls
    for group in sub.registered_groups:
        group.cls = group.cls or group_cls
        if group.typer_instance is not None:
            _with_classes(group.typer_instance, group_cls, command_cls)


def register(app: typer.Typer, group_cls: Any, command_cls: Any) -> None:
    app.command("login", cls=command_cls)(login.login)
    app.command("logout", cls=command_cls)(login.logout)
    for name, sub in GROUPS:
        _with_classes(sub, group_cls, command_cls)
        app.add_typer(sub, name=name, cls=group_cls)
