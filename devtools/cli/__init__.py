"""``dpctl``: the operator CLI (dev tool, never deployed). Entry point: :mod:`devtools.cli.app`."""
