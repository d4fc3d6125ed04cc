"""The intake (layer 2): events in, durable on their queues out.

- :mod:`~shared.intake.binding`: the HTTP content modes (structured, batch, binary);
- :mod:`~shared.intake.problems`: every refusal as an RFC 9457 problem;
- :mod:`~shared.intake.plan`: validate, allow, route, and :func:`~shared.intake.plan.accept`, the core the
  webhook and catch-up both call;
- :mod:`~shared.intake.catchup`: Altinn's events API read page by page and handed to that core.
"""
