"""The project's asymmetric signing keys (`auth.madbase_signing_keys`): the statements live in
core/signingkeys.py, shared with the control plane's key rotation; auth's code keeps reaching them here.
"""

from __future__ import annotations

from madbase.core.signingkeys import active, add_active, lock, published, revoke_previous

__all__ = ["active", "add_active", "lock", "published", "revoke_previous"]
