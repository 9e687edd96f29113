"""The user cards GetUserDetails shows, kept for every worker process of the host (providers/userinfo.py
looks them up and renders them).

    store.py    CardStore: the cards in SQLite in [server] data_dir (in memory for the demo), bounded
"""

from .store import DATABASE, CardStore, StoredCard

__all__ = ["DATABASE", "CardStore", "StoredCard"]
