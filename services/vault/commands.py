"""Subcommands of the vault: ``vault`` (init, run, rotate, retire, backup, restore, purge,
dev-bootstrap), ``keys`` (add, list, revoke) and ``service register``.

Credential values never come from argv: ``keys add`` prompts without echo, or reads
one JSON object from stdin (``--stdin``)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import sys
from pathlib import Path
from typing import Any

import msgspec

from services.config import config_for_command

DEFAULT_KEY_FILE = ".exbus/vault/master.key"
DEFAULT_SERVICE_DIR = ".exbus/vault"


def register(sub: Any) -> None:
    """Add this package's subcommands to the ``exbus`` parser."""
    vault = sub.add_parser("vault", help="the key vault: run it, manage its master key")
    vs = vault.add_subparsers(dest="vault_command", required=True)
    p = vs.add_parser("init", help="create a new master key file (mode 0600)")
    p.add_argument("--key-file", help=f"where (default: vault.master_key_file, else {DEFAULT_KEY_FILE})")
    p.set_defaults(handler=cmd_vault_init)
    p = vs.add_parser("run", help="serve vault.credentials.get")
    p.set_defaults(handler=cmd_vault_run)
    p = vs.add_parser("rotate", help="add a master key version and re-wrap every record under it")
    p.set_defaults(handler=cmd_vault_rotate)
    p = vs.add_parser("retire", help="drop master key versions no record uses any more")
    p.set_defaults(handler=cmd_vault_retire)
    p = vs.add_parser("backup", help="write every record (ciphertext only) to FILE")
    p.add_argument("file")
    p.set_defaults(handler=cmd_vault_backup)
    p = vs.add_parser("restore", help="restore records from FILE (refused unless the master key opens them)")
    p.add_argument("file")
    p.set_defaults(handler=cmd_vault_restore)
    p = vs.add_parser("purge", help="apply the retention: drop old key versions (vault.retain_versions, "
                      "retain_version_age_s) and audit entries older than streams.vault_audit_max_age_s")
    p.add_argument("--dry-run", action="store_true", help="list what would go; change nothing")
    p.set_defaults(handler=cmd_vault_purge)
    p = vs.add_parser("dev-bootstrap", help="DEV ONLY: dev master key, dev executor, simulator paper keys")
    p.set_defaults(handler=cmd_vault_dev_bootstrap)

    keys = sub.add_parser("keys", help="exchange credentials held by the vault")
    ks = keys.add_subparsers(dest="keys_command", required=True)
    p = ks.add_parser("add", help="add or replace VENUE ACCOUNT credentials (prompted, or JSON on stdin)")
    p.add_argument("venue")
    p.add_argument("account")
    p.add_argument("--stdin", action="store_true",
                   help='read {"api_key": ..., "secret": ..., "passphrase": ...} from stdin')
    p.add_argument("--environment", choices=["live", "testnet"],
                   help="endpoints the key was issued for (default: live)")
    p.add_argument("--allowed-ip", action="append", default=[], metavar="IP[,IP...]",
                   help="an address or CIDR network the key is allowed from at the venue (repeatable)")
    p.add_argument("--no-allowed-ip", action="store_true",
                   help="the key has no IP allow-list at the venue (needed to add an upbit or korbit key without one)")
    p.set_defaults(handler=cmd_keys_add)
    p = ks.add_parser("list", help="list accounts (never secrets)")
    p.set_defaults(handler=cmd_keys_list)
    p = ks.add_parser("revoke", help="revoke VENUE ACCOUNT credentials now")
    p.add_argument("venue")
    p.add_argument("account")
    p.add_argument("--reason", default="revoked by operator")
    p.set_defaults(handler=cmd_keys_revoke)

    service = sub.add_parser("service", help="service identities known to the vault")
    ss = service.add_subparsers(dest="service_command", required=True)
    p = ss.add_parser("register", help="create an Ed25519 key pair for NAME and register its public key")
    p.add_argument("name")
    p.add_argument("--key-file", help=f"private key file (default: {DEFAULT_SERVICE_DIR}/NAME.key)")
    p.set_defaults(handler=cmd_service_register)


def _fail(message: str) -> int:
    print(f"exbus: {message}", file=sys.stderr)
    return 1


def _ring(config: Any) -> Any:
    from services.vault.crypto import load_master_keys

    return load_master_keys(config.vault.master_key_file or None, config.vault.master_key_env)


def _bad_input(message: str) -> int:
    from services.errors import CommandError

    raise CommandError(message)  # one line `exbus <command>: message`, exit 2 (services.cli)


def _run(config: Any, name: str, action: Any, *, ensure: bool = True) -> int:
    """Run ``action(nc, store)`` on the bus (NATS_URL, else the embedded server);
    ``ensure=False`` leaves streams and buckets as they are."""
    from nats.js.errors import NotFoundError

    from services.bus.lifecycle import Bus, run_until_signal
    from services.vault.crypto import VaultCryptoError
    from services.vault.store import StoreError, VaultStore
    from services.vault.audit import AuditUnavailable

    async def main(stop: asyncio.Event) -> int:
        async with Bus(config, name=name, ensure=ensure, one_shot=True) as bus:
            try:
                store = await VaultStore.open(bus.js, jti_ttl_s=config.vault.token_max_age_s + 2 * config.vault.clock_skew_s)
                return int(await action(bus.nc, store) or 0)
            except (VaultCryptoError, StoreError, AuditUnavailable) as e:
                return _fail(str(e))
            except NotFoundError:  # only without ensure: nothing was ever stored here
                return _fail("this server holds no vault yet (bucket vault or stream VAULT_AUDIT missing)")

    return run_until_signal(main)


def cmd_vault_init(args: argparse.Namespace) -> int:
    from services.vault.crypto import MasterKeyError, MasterKeyRing, write_master_keys

    config = config_for_command(args)
    path = Path(args.key_file or config.vault.master_key_file or DEFAULT_KEY_FILE)
    try:
        write_master_keys(MasterKeyRing.generate(), path)
    except MasterKeyError as e:
        return _fail(str(e))
    print(f"master key written to {path} (mode 0600); set vault.master_key_file = \"{path}\"")
    return 0


def cmd_vault_run(args: argparse.Namespace) -> int:
    from services.bus.lifecycle import Bus, run_until_signal
    from services.vault.crypto import MasterKeyError
    from services.vault.service import run_vault

    config = config_for_command(args)
    try:
        _ring(config)
    except MasterKeyError as e:
        return _bad_input(str(e))

    async def main(stop: asyncio.Event) -> int:
        from services.observability.runtime import Observability

        serving = asyncio.Event()
        async with Bus(config, name="exbus-vault") as bus, \
                Observability("vault", config.observability, ready=serving) as observability:
            await observability.register(bus.nc)
            await run_vault(bus.nc, config, stop, ready=serving)
        return 0

    return run_until_signal(main)


def cmd_vault_rotate(args: argparse.Namespace) -> int:
    from services.vault import admin
    from services.vault.crypto import MasterKeyError, write_master_keys

    config = config_for_command(args)
    if not config.vault.master_key_file:
        return _bad_input("rotation writes the new key version to vault.master_key_file; set it "
                     "(a key from the environment is rotated by the secret manager that sets it)")
    try:
        ring = _ring(config).with_new_version()
    except MasterKeyError as e:
        return _fail(str(e))
    write_master_keys(ring, config.vault.master_key_file, overwrite=True)

    async def action(nc: Any, store: Any) -> int:
        changed = await admin.rotate_master_key(nc, store, ring)
        print(f"master key version {ring.current_version}: re-wrapped {len(changed)} records; "
              "older versions stay loadable until `exbus vault retire`")
        return 0

    return _run(config, "exbus-vault-rotate", action)


def cmd_vault_retire(args: argparse.Namespace) -> int:
    from services.vault import admin
    from services.vault.crypto import write_master_keys

    config = config_for_command(args)
    if not config.vault.master_key_file:
        return _bad_input("retire rewrites vault.master_key_file; set it")

    async def action(nc: Any, store: Any) -> int:
        ring = _ring(config)
        kept = await admin.retire_old_versions(nc, store, ring)
        write_master_keys(kept, config.vault.master_key_file, overwrite=True)
        print(f"master key versions kept: {kept.versions}")
        return 0

    return _run(config, "exbus-vault-retire", action)


def cmd_vault_backup(args: argparse.Namespace) -> int:
    from services.vault import admin

    config = config_for_command(args)

    async def action(nc: Any, store: Any) -> int:
        data = await admin.backup_vault(nc, store, _ring(config))
        Path(args.file).write_bytes(data)
        print(f"backup written to {args.file} (ciphertext only)")
        return 0

    return _run(config, "exbus-vault-backup", action)


def cmd_vault_restore(args: argparse.Namespace) -> int:
    from services.vault import admin

    config = config_for_command(args)
    data = Path(args.file).read_bytes()

    async def action(nc: Any, store: Any) -> int:
        backup = await admin.restore_vault(nc, store, _ring(config), data)
        print(f"restored {len(backup.secrets)} credentials and {len(backup.services)} service keys")
        return 0

    return _run(config, "exbus-vault-restore", action)


def cmd_vault_purge(args: argparse.Namespace) -> int:
    from services.vault import admin

    config = config_for_command(args)
    settings, audit_age = config.vault, config.streams.vault_audit_max_age_s

    async def action(nc: Any, store: Any) -> int:
        report = await admin.purge_vault(nc, store, settings, audit_age, dry_run=args.dry_run)
        verb = "would purge" if args.dry_run else "purged"
        for rev in report.revisions:
            print(json.dumps({"key": rev.key, "revision": rev.revision, "created_ns": rev.created_ns}))
        print(f"{verb} {len(report.revisions)} old key versions (keeping {settings.retain_versions} per key"
              + (f", none older than {settings.retain_version_age_s:g} s" if settings.retain_version_age_s else "")
              + f") and {report.audit_entries} audit entries older than {audit_age:g} s")
        return 0

    # the streams are left as they are: a dry run must not apply a shortened audit age
    return _run(config, "exbus-vault-purge", action, ensure=False)


def cmd_vault_dev_bootstrap(args: argparse.Namespace) -> int:
    from services.vault.dev import dev_bootstrap

    config = config_for_command(args)

    async def action(nc: Any, store: Any) -> int:
        identity = await dev_bootstrap(nc, config)
        patterns = json.dumps(config.vault.policy[identity.service_id])
        print(f"dev identity {identity.service_id} in {DEFAULT_SERVICE_DIR}/; the vault needs "
              f"[vault.policy] {identity.service_id} = {patterns} and master_key_file = "
              f"\"{config.vault.master_key_file}\"")
        return 0

    return _run(config, "exbus-vault-dev", action)


def read_credentials(from_stdin: bool) -> Any:
    """Credentials from stdin JSON or no-echo prompts (never from argv)."""
    from schemas.vault import Credentials

    if from_stdin:
        try:
            return msgspec.json.decode(sys.stdin.buffer.read(), type=Credentials)
        except (msgspec.DecodeError, msgspec.ValidationError) as e:
            raise ValueError(f"stdin is not a credentials object: {e}") from None
    api_key = getpass.getpass("API key: ")
    secret = getpass.getpass("API secret: ")
    passphrase = getpass.getpass("Passphrase (empty if none): ") or None
    if not api_key or not secret:
        raise ValueError("API key and secret are required")
    return Credentials(api_key=api_key, secret=secret, passphrase=passphrase)


def _check_account(venue: str, account: str) -> str | None:
    from schemas.subjects import SubjectError, vault_revoked

    try:
        vault_revoked(venue, account)
    except SubjectError as e:
        return str(e)
    return None


def _key_metadata(args: argparse.Namespace) -> tuple[str | None, tuple[str, ...] | None]:
    """Environment and allowed IPs from the flags (None: not given); ValueError for bad
    input, e.g. an allow-list entry that is no IP address or CIDR network."""
    from services.vault.allowlist import parse_allowed_ips

    ips = parse_allowed_ips(args.allowed_ip) if args.allowed_ip else None
    if args.no_allowed_ip and ips:
        raise ValueError("--allowed-ip and --no-allowed-ip contradict each other")
    if not args.stdin:  # refuse before prompting for the secret
        _require_allow_list(args, ips or ())
    return args.environment, () if args.no_allowed_ip else ips


def _require_allow_list(args: argparse.Namespace, allowed_ips: tuple[str, ...]) -> None:
    """ValueError for a key of a venue that binds every key to IPs, given none."""
    from services.vault.allowlist import ALLOW_LIST_REQUIRED

    if args.venue in ALLOW_LIST_REQUIRED and not allowed_ips and not args.no_allowed_ip:
        raise ValueError(f"{ALLOW_LIST_REQUIRED[args.venue]}: give them with --allowed-ip "
                         "(or --no-allowed-ip for an older key without a list)")


def cmd_keys_add(args: argparse.Namespace) -> int:
    from services.vault import admin
    from services.vault.allowlist import parse_allowed_ips

    config = config_for_command(args)
    if (error := _check_account(args.venue, args.account)):
        return _bad_input(error)
    try:
        environment, allowed_ips = _key_metadata(args)
    except ValueError as e:
        return _bad_input(str(e))
    try:
        credentials = read_credentials(args.stdin)
        changes: dict[str, Any] = {}
        if environment is not None:
            changes["environment"] = environment
        changes["allowed_ips"] = parse_allowed_ips(credentials.allowed_ips) if allowed_ips is None else allowed_ips
        credentials = msgspec.structs.replace(credentials, **changes)
        _require_allow_list(args, credentials.allowed_ips)
    except ValueError as e:
        return _bad_input(str(e))

    async def action(nc: Any, store: Any) -> int:
        record = await admin.add_credentials(nc, store, _ring(config), args.venue, args.account, credentials)
        ips = ", ".join(record.allowed_ips) or "none recorded"
        print(f"{args.venue}/{args.account} ({record.environment}) stored under master key version "
              f"{record.secret.key_version}; allowed IPs: {ips}")
        return 0

    return _run(config, "exbus-keys", action)


def cmd_keys_list(args: argparse.Namespace) -> int:
    config = config_for_command(args)

    async def action(nc: Any, store: Any) -> int:
        for record in await store.list_secrets():
            version = record.secret.key_version if record.secret else "-"
            print(json.dumps({"venue": record.venue, "account": record.account, "state": record.state,
                              "key_version": version, "updated_ns": record.updated_ns, "reason": record.reason,
                              "environment": record.environment, "allowed_ips": list(record.allowed_ips)}))
        return 0

    return _run(config, "exbus-keys", action)


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from services.vault import admin

    config = config_for_command(args)
    if (error := _check_account(args.venue, args.account)):
        return _bad_input(error)

    async def action(nc: Any, store: Any) -> int:
        if not await admin.revoke_credentials(nc, store, args.venue, args.account, args.reason):
            return _fail(f"no credentials for {args.venue}/{args.account}")
        print(f"{args.venue}/{args.account} revoked")
        return 0

    return _run(config, "exbus-keys", action)


def cmd_service_register(args: argparse.Namespace) -> int:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from services.vault import admin
    from services.vault.tokens import public_key_pem, write_service_key

    config = config_for_command(args)
    path = Path(args.key_file or f"{DEFAULT_SERVICE_DIR}/{args.name}.key")
    key = Ed25519PrivateKey.generate()
    try:
        write_service_key(key, path)
    except FileExistsError:
        return _fail(f"{path} already exists; refusing to overwrite a service key")

    async def action(nc: Any, store: Any) -> int:
        await admin.register_service(nc, store, args.name, public_key_pem(key))
        print(f"service {args.name} registered; private key in {path} (mode 0600)")
        return 0

    status = 1
    try:
        status = _run(config, "exbus-service", action)
    finally:
        if status != 0:  # not registered (no bus, refused): no key file left to block a retry
            path.unlink(missing_ok=True)
    return status
