"""Dev-only tooling, never deployed (``.funcignore`` keeps ``devtools/`` out of the package).

- ``cli/``        the operator CLI, ``dpctl`` (``cli/parking.py``: the operations behind ``dpctl parked``);
- ``runner/``     the local Functions host that serves ``function_app.py`` without Core Tools;
- ``dev.py``      ``make run``: Azurite, the runner and (``--altinn-sim``) the simulator together;
- ``altinn_sim/`` the local Altinn simulator: Maskinporten, the exchange, Events, Dialogporten (a fake);
- ``bench/``      ``make bench``: throughput and cost beside the raw SDKs;
- ``checks/``     static checks run by ``make test``: layering, the error tree, the dialog models'
                  drift, and the offline Bicep checker (``make infracheck``);
- ``export_catalog.py``, ``docs.py``: ``make catalog`` (the queues Bicep creates, the docs' tables);
- ``verify_deploy.py``: ``make verify-deploy``, after the first deploy;
- ``azurite.py``, ``samples.py``: Azurite on free ports, sample events; used by all of the above.
- ``poison.py``, ``parked.py``: the old ``python -m devtools.poison|parked`` entry points, now ``dpctl``.
"""
