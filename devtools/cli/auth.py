"""``dpctl auth``: a Maskinporten token from a JWT grant, then the Altinn exchange; ``auth keygen``."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from rich.table import Table

from devtools.cli.context import Context
from devtools.cli.output import console, emit_json, fail
from shared.maskinporten import AuthError, SigningKey, public_jwk, unverified_claims

app = typer.Typer(help="Maskinporten and Altinn tokens.", no_args_is_help=False)


@app.callback(invoke_without_command=True)
def auth(
    ctx: typer.Context,
    exchange: Annotated[bool, typer.Option(help="exchange the Maskinporten token for an Altinn token")] = True,
    print_token: Annotated[bool, typer.Option("--print-token", help="print only the token (for scripts)")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable output")] = False,
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
        typer.echo(token.access_token)
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
    if as_json:
        emit_json(result)
        return
    table = Table(show_header=False, box=None)
    for name, value in result.items():
        if value is not None:
            table.add_row(f"[bold]{name}[/]", str(value))
    console.print(table)


def _hint(status: int | None) -> str | None:
    if status == 400:
        return (
            "Maskinporten refused the grant: check the client id, that the kid is the one registered for the "
            "key, that the client may use every scope asked for, and the machine's clock (±10 s)."
        )
    if status == 401:
        return "The exchange refused the Maskinporten token: is it for the same environment (test vs prod)?"
    return None


@app.command()
def keygen(
    out: Annotated[Path, typer.Option(help="file prefix: writes PREFIX.pem (private) and PREFIX.jwk.json (public)")],
    kid: Annotated[str, typer.Option(help="the key id to register the public key under")],
) -> None:
    """Create an RSA key pair for a Maskinporten client; register the public JWK in Samarbeidsportalen."""
    private, public = out.with_suffix(".pem"), out.with_suffix(".jwk.json")
    if private.exists():
        fail(f"{private} exists; refusing to overwrite a key")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    private.write_bytes(pem)
    private.chmod(0o600)
    try:
        jwk = public_jwk(SigningKey(key, kid))
    except AuthError as exc:  # pragma: no cover - the key was just made
        fail(str(exc))
    public.write_text(json.dumps(jwk, indent=2) + "\n", encoding="utf-8")
    console.print(
        f"private key: {private} (keep it secret; MASKINPORTEN_KEY_FILE)\npublic JWK:  {public} (register it)"
    )
