"""Processing (layer 2): a queue message to the user's handlers, exactly once.

- :mod:`~shared.processing.pipeline`: decode, type, claim, run the handlers, poison when it must;
- :mod:`~shared.processing.registry`: which handler runs for which model (``@handles``), and the
  :class:`~shared.processing.registry.HandlerContext` a handler is given;
- :mod:`~shared.processing.hostconfig`: the host.json settings processing must agree with;
- :mod:`~shared.processing.sweep`: the host's own poison copies made permanent.
"""
