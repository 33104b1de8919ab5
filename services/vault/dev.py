"""Development bootstrap for the demo (``exbus up --sim``): a dev master key and a dev
executor identity under ``.exbus/vault/``, the simulator's paper API keys loaded into
the vault, and a policy letting the dev executor read them. Never for real keys.

    identity = await dev_bootstrap(nc, config)          # before run_vault
    vault_task = run_vault(nc, config, stop)
    credentials = CredentialsClient(nc, identity.service_id, identity.private_key)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from schemas.vault import Credentials
from services.vault import admin
from services.vault.crypto import MasterKeyRing, load_master_keys, write_master_keys
from services.vault.store import VaultStore
from services.vault.tokens import load_service_key, public_key_pem, write_service_key

DEV_DIR = Path(".exbus/vault")
DEV_SERVICE_ID = "dev-executor"
SIM_ACCOUNT = "demo"

WARNING = """\
*****************************************************************************
*  exbus vault: DEVELOPMENT master key {path}
*  It is stored in plain sight beside the data and protects only the
*  simulator's paper keys. Never put real exchange keys in this vault.
*****************************************************************************"""


@dataclass(frozen=True)
class DevIdentity:
    """The dev executor's identity, for CredentialsClient."""

    service_id: str
    private_key: Ed25519PrivateKey

    def __repr__(self) -> str:
        return f"DevIdentity(service_id={self.service_id!r}, private_key=<redacted>)"


def simulator_paper_keys() -> dict[tuple[str, str], Credentials]:
    """The simulator's ``demo`` paper keys on every venue, as venue/demo."""
    from services.executor.credentials import paper_keys

    return {(venue, SIM_ACCOUNT): creds for (venue, name), creds in paper_keys().items() if name == "demo"}


async def dev_bootstrap(nc: Any, config: Any, *, root: Path = DEV_DIR, out: TextIO | None = None) -> DevIdentity:
    """Create (or reuse) the dev master key and executor identity, load the simulator's
    paper keys and allow the dev executor to read them. Sets ``config.vault``'s key file
    and policy in place. Prints a loud warning."""
    out = out or sys.stderr
    settings = config.vault
    key_file = Path(settings.master_key_file) if settings.master_key_file else root / "dev-master.key"
    if not key_file.exists():
        write_master_keys(MasterKeyRing.generate(), key_file)
    settings.master_key_file = str(key_file)
    print(WARNING.format(path=key_file), file=out, flush=True)
    ring = load_master_keys(key_file, settings.master_key_env)

    identity_file = root / f"{DEV_SERVICE_ID}.key"
    if not identity_file.exists():
        write_service_key(Ed25519PrivateKey.generate(), identity_file)
    private_key = load_service_key(identity_file)

    store = await VaultStore.open(nc.jetstream())
    await admin.register_service(nc, store, DEV_SERVICE_ID, public_key_pem(private_key), actor="dev-bootstrap")
    for (venue, account), credentials in simulator_paper_keys().items():
        await admin.add_credentials(nc, store, ring, venue, account, credentials, actor="dev-bootstrap")
    patterns = settings.policy.setdefault(DEV_SERVICE_ID, [])
    for venue, account in simulator_paper_keys():
        if f"{venue}/{account}" not in patterns:
            patterns.append(f"{venue}/{account}")
    return DevIdentity(DEV_SERVICE_ID, private_key)
