"""The ``[vault]`` section of the config file."""

from __future__ import annotations

import msgspec


class VaultSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    """The ``[vault]`` section of the config file."""

    master_key_file: str = ""
    """Master key ring file (mode 0600); empty: read ``master_key_env`` instead."""
    master_key_env: str = "EXBUS_MASTER_KEY"
    """Environment variable holding the master key ring when no file is set (not an
    ``EXBUS_VAULT_*`` name: those are config overrides)."""
    lease_ttl_s: int = 300
    """How long a granted credential may be held in memory."""
    token_max_age_s: int = 60
    """Longest lifetime (exp - iat) the vault accepts for a request token."""
    clock_skew_s: int = 5
    policy: dict[str, list[str]] = {}
    """Service -> ``venue/account`` patterns it may read (fnmatch: ``binance/*``)."""
    service_keys: dict[str, str] = {}
    """Service -> Ed25519 public key (PEM), besides those registered in KV ``vault``."""
    request_timeout_s: float = 5.0
    """How long a client waits for the vault's reply."""
    retain_versions: int = 3
    """Versions kept of each vault key (its current one included): older ones are purged
    from the bucket's history by `exbus vault purge` and the vault service (>= 1)."""
    retain_version_age_s: float = 0.0
    """Versions older than this are purged too, whatever their count (0: no age limit).
    The current version of a key always stays. The audit trail's retention is the
    stream's age limit, ``streams.vault_audit_max_age_s`` (the stream refuses deletes)."""
    purge_interval_s: float = 3600.0
    """How often the vault service applies that retention (0: only `exbus vault purge`)."""
