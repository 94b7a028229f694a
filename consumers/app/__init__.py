"""The application layer: a ``Deployment`` opens the configured bus, store and keys
(``deployment``, ``settings``, ``data_dir``) and the use cases that span stages live here
(``serve``, ``inspection``). Imports the stages; never ``cli``, ``demo`` or ``bench``.
"""
