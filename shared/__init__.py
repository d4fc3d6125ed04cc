"""The app's own package: catalog, CloudEvents validation, ingest, routing, processing, handlers."""
