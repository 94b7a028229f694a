"""aigc-audit: a signed, replayable compliance audit log for generative-AI services.

Everything installs under this one name, so a service that has its own ``schemas`` or
``producers`` package never finds ours in its place. The repository keeps the design card's
top-level folders; ``pyproject.toml`` maps each onto a subpackage of this one:
``aigc_audit.producers`` (the client library services install), ``aigc_audit.consumers`` (the
platform), ``aigc_audit.schemas``, ``aigc_audit.queries``, ``aigc_audit.dashboards`` and
``aigc_audit.infra``.
"""
