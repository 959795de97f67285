"""The capkit home: where the keyring lives. ``--home``, else $CAPKIT_HOME, else the platform config dir."""

from __future__ import annotations

import os
from pathlib import Path

import click

from capkit import Keyring, KeyringError

from .errors import InputError

KEYRING_FILE = "keys.json"
STATE_FILE = "state.db"

home_option = click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="CAPKIT_HOME",
    show_envvar=True,
    help="Directory holding the keyring (default: the platform config dir, e.g. ~/.config/capkit).",
)


def resolve_home(home: Path | None) -> Path:
    """The home directory to use."""
    return home if home is not None else Path(click.get_app_dir("capkit"))


def keyring_path(home: Path | None) -> Path:
    """Where the keyring file is."""
    return resolve_home(home) / KEYRING_FILE


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
    directory = resolve_home(home)
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create {directory}: {exc.strerror}") from None
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
        directory = resolve_home(home)
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        url = f"sqlite://{directory.resolve() / STATE_FILE}"
    return open_store(url)
