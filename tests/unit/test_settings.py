"""Enrichment and catch-up settings: off unless configured, refused precisely when half configured."""

from __future__ import annotations

import pytest

from shared.altinn import clients as enrichment
from shared.altinn import maskinporten as mp
from shared.errors import SettingsError
from shared.settings import STORAGE_CONNECTION, CatchUpSettings, MaskinportenSettings, load

BASE = {STORAGE_CONNECTION: "UseDevelopmentStorage=true"}


def test_with_no_maskinporten_settings_enrichment_and_catch_up_are_off() -> None:
    loaded = load(BASE)
    cfg = loaded.maskinporten
    assert cfg == MaskinportenSettings()
    assert not cfg.enabled
    assert loaded.catchup == CatchUpSettings()
    assert loaded.catchup.resources == ()
    with pytest.raises(mp.AuthError, match="not configured"):
        enrichment.maskinporten(cfg, "digdir:dialogporten.serviceprovider")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ALTINN_ENVIRONMENT": "staging"}, "tt02, prod or a simulator URL"),
        ({"DIALOG_NOT_VISIBLE_MAX_WAIT_SECONDS": "0"}, "must be positive"),
        ({"CATCHUP_INITIAL_LOOKBACK_SECONDS": "two days"}, "whole number"),
    ],
)
def test_malformed_values_are_refused_with_the_setting_named(env: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load({**BASE, **env})


def test_half_configured_stays_off_and_says_what_is_missing() -> None:
    # The operator CLI shares these names and may hold its key in MASKINPORTEN_KEY_FILE: the app still loads.
    cfg = load({**BASE, "MASKINPORTEN_CLIENT_ID": "abc", "CATCHUP_RESOURCES": "urn:altinn:resource:x"}).maskinporten
    assert not cfg.enabled
    assert cfg.missing == "MASKINPORTEN_KEY"
    with pytest.raises(mp.AuthError, match="set MASKINPORTEN_KEY"):
        enrichment.maskinporten(cfg, "digdir:dialogporten.serviceprovider")
    from shared.functions import catchup

    (summary,) = catchup.run(load({**BASE, "CATCHUP_RESOURCES": "urn:altinn:resource:x"}))
    assert summary["outcome"] == "failed"
    assert "set MASKINPORTEN_CLIENT_ID and MASKINPORTEN_KEY" in summary["reason"]


def test_environments_give_the_documented_bases() -> None:
    tt02 = MaskinportenSettings(environment="tt02")
    prod = MaskinportenSettings(environment="prod")
    sim = MaskinportenSettings(environment="http://127.0.0.1:7072")
    assert enrichment.dialogporten_base(tt02) == "https://platform.tt02.altinn.no/dialogporten"
    assert enrichment.dialogporten_base(prod) == "https://platform.altinn.no/dialogporten"
    assert enrichment.environment(prod).token_url == "https://maskinporten.no/token"
    assert enrichment.dialogporten_base(sim) == "http://127.0.0.1:7072/dialogporten"


def test_the_private_key_is_never_in_the_settings_repr() -> None:
    cfg = load({**BASE, "MASKINPORTEN_CLIENT_ID": "abc", "MASKINPORTEN_KEY": "-----BEGIN PRIVATE KEY-----x"})
    assert "PRIVATE KEY" not in repr(cfg)
    assert cfg.maskinporten.enabled
