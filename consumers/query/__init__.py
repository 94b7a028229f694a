"""Query: the named inspection queries of ``queries/`` (``pack``) and the selection of events an
export, a report or a query covers (``selection``). May import ``store`` and the client library.
"""
