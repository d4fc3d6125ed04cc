"""``dpctl``: one CLI for what an operator does with the app and Altinn.

Adding a command group is two lines: a ``typer.Typer()`` in its own module, then
``app.add_typer(module.app, name="...")`` below. Every command reads ``ctx.obj`` (a
:class:`~devtools.cli.context.Context`) for the environment, settings, storage and tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from devtools.cli import auth, catchup, dialogs, parked, poison, send, status, subscriptions
from devtools.cli.context import ROOT, Context, Credentials, Env

HELP = """\
Operate the Dialogporten events receiver: Altinn tokens and subscriptions, catch-up from
Altinn's events API, queue status, poison replay, dialog state, and test traffic.

--env local talks to the local Altinn simulator (make run ARGS=--altinn-sim);
--env tt02 / --env prod to Altinn. Storage: AzureWebJobsStorage from local.settings.json
or the environment (Azurite locally), or --account NAME with your az login.

Exit codes: 0 ok, 1 failed or refused, 2 usage, 3 status found poisoned or parked
events, 4 timed out waiting.
"""

app = typer.Typer(
    name="dpctl",
    help=HELP,
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    env: Annotated[Env, typer.Option(envvar="DPCTL_ENV", help="local (the simulator), tt02 or prod")] = Env.LOCAL,
    account: Annotated[str | None, typer.Option(help="Azure storage account name (uses your az login)")] = None,
    sim_url: Annotated[
        str | None, typer.Option(envvar="ALTINN_SIM_URL", help="the simulator's URL (--env local)")
    ] = None,
    settings_file: Annotated[Path, typer.Option("--settings", help="local.settings.json to read")] = ROOT
    / "local.settings.json",
    client_id: Annotated[str | None, typer.Option(help="Maskinporten client id [MASKINPORTEN_CLIENT_ID]")] = None,
    kid: Annotated[str | None, typer.Option(help="the key's registered kid [MASKINPORTEN_KID]")] = None,
    key_file: Annotated[
        str | None,
        typer.Option(help="private key, PEM or JWK [MASKINPORTEN_KEY_FILE]; or the text in MASKINPORTEN_KEY"),
    ] = None,
    scope: Annotated[str | None, typer.Option(help="Maskinporten scopes [MASKINPORTEN_SCOPE]")] = None,
) -> None:
    context = Context(
        env=env,
        account=account,
        sim_url=sim_url,
        settings_file=settings_file,
        credentials=Credentials(client_id, kid, key_file, scope),
    )
    context.load_settings()
    ctx.obj = context


app.add_typer(auth.app, name="auth")
app.add_typer(subscriptions.app, name="subscriptions")
app.add_typer(poison.app, name="poison")
app.add_typer(parked.app, name="parked")
app.add_typer(dialogs.app, name="dialogs")
app.command("catch-up")(catchup.catch_up_command)
app.command("status")(status.status)
app.command("send")(send.send)


def main(argv: list[str] | None = None) -> int:
    try:
        app(args=argv, prog_name="dpctl", standalone_mode=True)
    except SystemExit as exit_:
        return int(exit_.code or 0) if isinstance(exit_.code, int | None) else 1
    return 0
