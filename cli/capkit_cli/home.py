"""The capkit home: where the keyring lives. ``--home``, else $CAPKIT_HOME, else the platform config dir.

The home holds the keyring and the state file (who spent what, which tokens
are revoked), so it is guarded like them: created 0700, and an existing one
must be a directory owned by this user (or root) that group and others cannot
write to; otherwise another local user could plant a keyring or a state file.
"""

from __future__ import annotations

import os
from pathlib import Path

import click

from capkit import AgentKey, Keyring, KeyringError
from capkit.core.secretfile import directory_problem

from .errors import InputError

KEYRING_FILE = "keys.json"
STATE_FILE = "state.db"
AUDIT_KEY_FILE = "audit.key"

home_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="CAPKIT_HOME",
    show_envvar=True,
    help="Directory holding the keyring (default: the platform config dir, e.g. ~/.config/capkit).",
)


def resolve_home(home: Path | None) -> Path:
    """The home directory to use (an empty ``--home`` or $CAPKIT_HOME counts as unset; never a relative
    default: an empty or relative $XDG_CONFIG_HOME is ignored, as the XDG specification says)."""
    if home is not None and str(home) not in ("", "."):
        return home
    xdg = os.environ.get("XDG_CONFIG_HOME", "")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "capkit"
    if os.name == "posix" and not os.environ.get("APPDATA"):
        return Path.home() / ".config" / "capkit"
    return Path(click.get_app_dir("capkit"))  # pragma: no cover - other platforms


def check_home(directory: Path) -> Path:
    """``directory`` if it is safe to keep keys and state in (see the module docstring); else ``InputError``."""
    try:
        info = directory.lstat()
    except FileNotFoundError:
        return directory
    except OSError as exc:
        raise InputError(f"cannot read the capkit home {directory}: {exc.strerror}") from None
    problem = directory_problem(directory, info)
    if problem is not None:
        raise InputError(f"the capkit home {directory} {problem}")
    return directory


def make_home(home: Path | None) -> Path:
    """The home directory, created 0700 if missing, checked otherwise."""
    directory = check_home(resolve_home(home))
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {directory}: {exc.strerror}") from None
    return check_home(directory)


def keyring_path(home: Path | None) -> Path:
    """Where the keyring file is."""
    return check_home(resolve_home(home)) / KEYRING_FILE


def load_keyring(home: Path | None) -> Keyring:
    """The keyring of ``home``; a clear error when there is none yet."""
    path = keyring_path(home)
    if not path.exists():
        raise InputError(f"no keyring at {path}; create one with: capkit keys init")
    try:
        return Keyring.load(path)
    except KeyringError as exc:
        raise InputError(exc.message) from None


def save_keyring(keyring: Keyring, home: Path | None, *, overwrite: bool) -> Path:
    """Write the keyring into ``home`` (created with mode 0700 if missing)."""
    directory = make_home(home)
    path = directory / KEYRING_FILE
    keyring.save(path, overwrite=overwrite)
    os.chmod(path, 0o600)
    return path


store_option = click.option(
    "--store", "store_url", metavar="URL", envvar="CAPKIT_STORE", show_envvar=True,
    help="Shared state for budgets, call limits, proof nonces and revocations: sqlite:///path, "
         "postgresql://..., redis://... (default: state.db in the capkit home).",
)


def open_cli_store(home: Path | None, url: str | None):  # type: ignore[no-untyped-def]
    """The store named by ``url``, else the SQLite file in the home."""
    from capkit.state import open_store

    if url is None:
        url = f"sqlite://{make_home(home).resolve() / STATE_FILE}"
    return open_store(url)


def audit_key(home: Path | None, *, create: bool) -> AgentKey:
    """The home's audit key (signs audit checkpoints), created 0600 on first use when ``create``."""
    path = check_home(resolve_home(home)) / AUDIT_KEY_FILE
    if not path.exists():
        if not create:
            raise InputError(f"no audit key at {path}; give the log's audit key with --key capkit_pk_...")
        key = AgentKey.generate()
        key.save(make_home(home) / AUDIT_KEY_FILE)
        return key
    try:
        return AgentKey.load(path)
    except KeyringError as exc:
        raise InputError(exc.message) from None


def open_cli_audit(home: Path | None, path: Path):  # type: ignore[no-untyped-def]
    """The file audit log at ``path``, signed by the home's audit key (origin ``capkit/<fingerprint>``)."""
    from capkit.audit import AuditLog

    key = audit_key(home, create=True)
    return AuditLog(path, key, origin=f"capkit/{key.public_key.fingerprint}")
