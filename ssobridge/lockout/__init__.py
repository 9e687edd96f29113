"""The lockout shield: no employee locked out of the directory by strangers typing passwords at the portal.

    rules.py    thresholds, windows, account keys, the decision for one attempt (pure functions)
    store.py    the state in SQLite and the secret key, in the [server] data_dir (shared by workers, commands)
    shield.py   Shield: decide before the bind, record after; lockouts and unlock for the commands
    commands.py `ssobridge lockouts` and `ssobridge unlock USER`

The choices and their trade-offs are in docs/security.md.
"""

from .rules import is_blank_password
from .shield import LOCKOUT, Account, Attempt, Shield
from .store import LeaseTimeout, Store

__all__ = ["LOCKOUT", "Account", "Attempt", "LeaseTimeout", "Shield", "Store", "is_blank_password"]
