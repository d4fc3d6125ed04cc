"""The outside services: one HTTP client for all of them (:mod:`shared.altinn.http`)."""
