"""The papers' experiments that need only the golden model.

Each experiment is a module exposing a click command named ``command``; the
``neuroharden experiment`` group (:mod:`neuroharden.sim.app.cli`) lists the
modules of this package beside the application layer's RTL experiments. ``common`` holds
the helpers they share.
"""
