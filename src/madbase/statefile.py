"""The running server's facts in the data folder (`state.json`, mode 0600), read by `madbase status`."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

STATE_FILE = "state.json"


@dataclass
class ServerState:
    pid: int
    api_url: str
    db_url: str
    embedded_db: bool
    project_ref: str
    anon_key: str
    service_role_key: str
    jwt_secret: str
    started_at: str

    def write(self, data_dir: Path) -> None:
        path = data_dir / STATE_FILE
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(asdict(self), fh, indent=2)
        tmp.replace(path)

    @classmethod
    def read(cls, data_dir: Path) -> ServerState | None:
        try:
            raw = json.loads((data_dir / STATE_FILE).read_text())
            return cls(**raw)
        except (OSError, ValueError, TypeError):
            return None


def rows(state: ServerState) -> list[tuple[str, str]]:
    """The facts `madbase start` prints and `madbase status` shows, with the same labels."""
    return [
        ("API URL", state.api_url),
        ("REST URL", state.api_url + "/rest/v1"),
        ("Realtime URL", state.api_url.replace("http", "ws", 1) + "/realtime/v1"),
        ("DB URL", state.db_url),
        ("Project ref", state.project_ref),
        ("JWT secret", state.jwt_secret),
        ("Anon key", state.anon_key),
        ("Service role key", state.service_role_key),
        # the mail catcher (Inbucket/Mailpit in `supabase start`): auth mails of a project without SMTP
        ("Mail inbox", f"{state.api_url}/admin/v1/projects/{state.project_ref}/inbox "
                       "(with the admin token: admin.token in the data folder)"),
    ]


def remove(data_dir: Path) -> None:
    (data_dir / STATE_FILE).unlink(missing_ok=True)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not running any more
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[-1].split()[0] != "Z"
    except (OSError, IndexError):
        return True
