"""``dpctl auth``: a Maskinporten token from a JWT grant, then the Altinn exchange; ``auth keygen``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from devtools.cli import output
from devtools.cli.context import Context
from devtools.cli.output import JsonFlag, console, echo, emit, fail
from shared.altinn.maskinporten import AuthError, SigningKey, public_jwk, unverified_claims

app = typer.Typer(help="Maskinporten and Altinn tokens.", no_args_is_help=False)


@app.callback(invoke_without_command=True)
def auth(
    ctx: typer.Context,
    exchange: Annotated[bool, typer.Option(help="exchange the Maskinporten token for an Altinn token")] = True,
    print_token: Annotated[bool, typer.Option("--print-token", help="print only the token (for scripts)")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Get a Maskinporten token (JWT grant, RS256 with kid) and exchange it for an Altinn token."""
    if ctx.invoked_subcommand is not None:
        return
    context: Context = ctx.obj
    env = context.environment
    try:
        provider = context.altinn()
        mp = provider.maskinporten.token()
        altinn = provider.token() if exchange else None
    except AuthError as exc:
        fail(str(exc), hint=_hint(exc.status))
    now = time.time()
    token = altinn or mp
    if print_token:
        echo(token.access_token)
        return
    claims = unverified_claims(altinn.access_token) if altinn else {}
    result = {
        "environment": context.env.value,
        "tokenUrl": env.token_url,
        "clientId": provider.maskinporten.client_id,
        "scope": mp.scope,
        "maskinportenExpiresIn": round(mp.expires_in(now)),
        "exchangeUrl": env.exchange_url if altinn else None,
        "altinnExpiresIn": round(altinn.expires_in(now)) if altinn else None,
        "org": claims.get("urn:altinn:org"),
        "orgNumber": claims.get("urn:altinn:orgNumber"),
    }

    def draw(found: dict[str, Any]) -> None:
        table = output.table(show_header=False, box=None)
        for name, value in found.items():
            if value is not None:
                table.add_row(f"[bold]{name}[/]", str(value))
        console.print(table)

    emit(result, draw, as_json=as_json)


def _hint(status: int | None) -> str | None:
    if status == 400:
        return (
            "Maskinporten refused the grant: check the client id, that the kid is the one registered for the "
            "key, that the client may use every scope asked for, and the machine's clock (±10 s)."
        )
    if status == 401:
        return "The exchange refused the Maskinporten token: is it for the same environment (test vs prod)?"
    return None


#: Where docs/cli.md suggests keys be kept; git-ignored (with every ``*.pem``) and left out of the deploy package.
KEY_FOLDER = ".keys"

#: Create, never replace, never follow a link: ``O_EXCL`` fails on any existing name, ``O_NOFOLLOW`` on a link.
_NEW_FILE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def _unwritable(path: Path) -> str | None:
    """Why a new key may not be written at ``path``; None when nothing is there."""
    if path.is_symlink():
        dangling = "" if path.exists() else ", which does not exist"
        return f"is a symbolic link (to {os.readlink(path)}{dangling}); refusing to write a key through a link"
    if path.exists():
        return "exists; refusing to overwrite a key"
    return None


def _write_new(files: dict[Path, tuple[bytes, int]]) -> None:
    """Create every file with its mode from the first byte (``open(2)``'s mode, before any content), or none of them.

    Every file is created before any is written: when one cannot be created (a name that appeared since the
    check, a link), those created so far are removed again.
    """
    opened: list[tuple[Path, int]] = []
    try:
        for path, (_, mode) in files.items():
            opened.append((path, os.open(path, _NEW_FILE, mode)))
        for path, fd in opened:
            data = files[path][0]
            with os.fdopen(fd, "wb", closefd=False) as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
    except BaseException:
        for path, _ in opened:
            path.unlink(missing_ok=True)
        raise
    finally:
        for _, fd in opened:
            os.close(fd)


@app.command()
def keygen(
    out: Annotated[
        Path,
        typer.Option(
            help="file prefix: writes PREFIX.pem (private) and PREFIX.jwk.json (public); "
            f"keep keys in {KEY_FOLDER}/ (git-ignored), e.g. --out {KEY_FOLDER}/maskinporten-tt02"
        ),
    ],
    kid: Annotated[str, typer.Option(help="the key id to register the public key under")],
) -> None:
    """Create an RSA key pair for a Maskinporten client; register the public JWK in Samarbeidsportalen.

    The private key is created owner-only (0600) from its first byte; an existing file or a symbolic
    link at either path is refused (exit 1) and then nothing is written.
    """
    private, public = out.with_suffix(".pem"), out.with_suffix(".jwk.json")
    for path in (private, public):
        if problem := _unwritable(path):
            fail(f"{path} {problem} (nothing was written)")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    try:
        jwk = public_jwk(SigningKey(key, kid))
    except AuthError as exc:  # pragma: no cover - the key was just made
        fail(str(exc))
    try:
        if not private.parent.exists():
            private.parent.mkdir(mode=0o700, parents=True)  # the key folder: owner only
        _write_new({private: (pem, 0o600), public: ((json.dumps(jwk, indent=2) + "\n").encode(), 0o644)})
    except OSError as exc:
        fail(f"{exc.filename or out}: {exc.strerror or exc}; no key was written")
    console.print(
        f"private key: {private} (keep it secret; MASKINPORTEN_KEY_FILE)\npublic JWK:  {public} (register it)"
    )
