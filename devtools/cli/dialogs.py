"""``dpctl dialogs show ID``: the dialog state row the default handlers keep."""

from __future__ import annotations

import uuid

import typer

from devtools.cli.context import Context
from devtools.cli.output import JsonFlag, emit, fail

app = typer.Typer(help="The dialog state (the 'dialogs' table).", no_args_is_help=True)


@app.command()
def show(ctx: typer.Context, dialog_id: str, as_json: JsonFlag = False) -> None:
    """What every event applied so far says about one dialog (as GET /api/dialogs/{id})."""
    from shared.stores.dialogs import DialogStore

    try:
        canonical = str(uuid.UUID(dialog_id))
    except ValueError:
        fail(f"{dialog_id!r} is not a dialog id (a GUID)")
    context: Context = ctx.obj
    state = DialogStore(context.storage.tables).get(canonical)
    if state is None:
        fail(f"no event has been applied for dialog {canonical}")

    emit(state.to_json(), as_json=as_json)  # a table of name and value by default
