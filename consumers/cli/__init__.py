"""The ``aigc-audit`` command line: thin click commands over ``consumers.app``, one module per
group (``main`` holds the entry point and turns any AuditError into one line and exit 2). The
only package that may import ``demo`` and ``bench``; nothing imports it.
"""
