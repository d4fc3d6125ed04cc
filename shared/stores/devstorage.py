"""Azurite, the local storage emulator: its public, documented development account.

Only local runs use it: ``UseDevelopmentStorage=true`` in ``local.settings.json``
is the host's shorthand for it, which the Azure SDKs do not understand, so it is
spelled out here. In Azure the app uses its managed identity (:mod:`shared.stores.clients`).
"""

from __future__ import annotations

from typing import Final

__all__ = ["AZURITE_ACCOUNT", "AZURITE_KEY", "azurite_connection_string", "expand_connection_string"]

#: The Functions host and Azure SDKs understand this shorthand differently: the
#: SDKs need it spelled out. These are Azurite's public, documented dev values.
AZURITE_ACCOUNT: Final = "devstoreaccount1"
AZURITE_KEY: Final = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_connection_string(
    host: str = "127.0.0.1", blob: int = 10000, queue: int = 10001, table: int = 10002
) -> str:
    return (
        f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
        f"BlobEndpoint=http://{host}:{blob}/{AZURITE_ACCOUNT};"
        f"QueueEndpoint=http://{host}:{queue}/{AZURITE_ACCOUNT};"
        f"TableEndpoint=http://{host}:{table}/{AZURITE_ACCOUNT};"
    )


def expand_connection_string(connection_string: str) -> str:
    """Spell out `UseDevelopmentStorage=true`, which the host understands and the SDKs do not."""
    if connection_string.replace(" ", "").lower().rstrip(";") == "usedevelopmentstorage=true":
        return azurite_connection_string()
    return connection_string
