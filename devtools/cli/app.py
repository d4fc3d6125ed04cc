"""``dpctl``: one CLI for what an operator does with the app and Altinn.

Adding a command group is two lines: a ``typer.Typer()`` in its own module, then
``app.add_typer(module.app, name="...")`` below. Every command reads ``ctx.obj`` (a
:class:`~devtools.cli.context.Context`) for the environment, settings, storage and tokens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from devtools.cli import auth, catchup, dialogs, output, parked, poison, send, status, subscriptions
from devtools.cli.context import ROOT, Context, Credentials, Env
from devtools.cli.output import Format

HELP = """\
Operate the Dialogporten events receiver: Altinn tokens and subscriptions, catch-up from
Altinn's events API, queue status, poison replay, dialog state, and test traffic.

--env local talks to the local Altinn simulator (make run ARGS=--altinn-sim);
--env tt02 / --env prod to Altinn. Storage: AzureWebJobsStorage from local.settings.json
or the environment (Azurite locally), or --account NAME with your az login.

Output, as az: -o/--output json|jsonc|table|tsv|yaml|none and --query JMESPATH, given
anywhere on the line (--json is -o json). Times are ISO 8601 in UTC.

Exit codes: 0 ok, 1 failed or refused (a typo'd queue, a resource that is not one,
nothing listening), 2 usage (an unknown option or format, a query that is not JMESPath),
3 status found poisoned or parked events, 4 timed out waiting.
"""

#: The global options that take a value, and may stand anywhere on the line (as az's).
_GLOBAL_VALUE_OPTIONS = ("--output", "-o", "--query")


def hoist_global_options(args: list[str]) -> list[str]:
    """``args`` with ``-o/--output`` and ``--query`` (and their values) moved before the command.

    So ``dpctl status -o json`` is ``dpctl -o json status``, as in az. Nothing after ``--`` is moved.
    """
    front: list[str] = []
    rest: list[str] = []
    index = 0
    while index < len(args):
        word = args[index]
        if word == "--":
            rest += args[index:]
            break
        if word in _GLOBAL_VALUE_OPTIONS and index + 1 < len(args):
            front += [word, args[index + 1]]
            index += 2
            continue
        if word.startswith(("--output=", "--query=")) or (word.startswith("-o") and len(word) > 2 and word[2] != "-"):
            front.append(word)
        else:
            rest.append(word)
        index += 1
    return front + rest


class _Group(TyperGroup):
    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))


app = typer.Typer(
    name="dpctl",
    help=HELP,
    no_args_is_help=True,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
    pretty_exceptions_enable=False,
    cls=_Group,
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
    output_format: Annotated[
        Format, typer.Option("--output", "-o", help="json, jsonc, table, tsv, yaml or none (exit code only)")
    ] = Format.TABLE,
    query: Annotated[str | None, typer.Option(help="a JMESPath query on the result, as az's --query")] = None,
) -> None:
    output.configure(output_format, query)
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
