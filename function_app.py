"""Composition root: the FunctionApp the Functions host (or the local runner) indexes.

No logic lives here. Each blueprint is a thin adapter from Azure Functions
types to the pure core in ``shared``.
"""

import azure.functions as func

from shared.functions import catchup, dialogs_api, housekeeping, queues, webhook

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(webhook.bp)
app.register_functions(queues.bp)
app.register_functions(dialogs_api.bp)
app.register_functions(housekeeping.bp)
app.register_functions(catchup.bp)
