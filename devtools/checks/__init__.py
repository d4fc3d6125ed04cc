"""Static checks of the code and the templates, run by ``make test``: each proven by a mutant in the tests.

- :mod:`~devtools.checks.layers`: ``shared/`` imports run one way, down its layers, with no circle;
- :mod:`~devtools.checks.error_tree`: every exception the app raises has the one root of ``shared/errors.py``;
- :mod:`~devtools.checks.dialogporten_schema`: the dialog models agree with the pinned OpenAPI document;
- :mod:`~devtools.checks.infra`: the offline Bicep checker (compiler and ARM rules, SDK models).
"""
