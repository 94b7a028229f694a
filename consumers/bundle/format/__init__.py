"""The bundle format: file names, records and their (de)serialisation (``records``), and the
JSON Lines rendering of events (``event_json``, compiled per schema by ``line_compiler``).
Shared by ``bundle.export`` and ``bundle.verify``; imports nothing from the platform's stages.
"""
