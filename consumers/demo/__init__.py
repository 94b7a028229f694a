"""``aigc-audit demo`` and ``emit``: a simulated provider's month of traffic (``simulation``)
run through the whole product (``run``). Outside the product's path: it may import ``app`` and
every stage, and no stage imports it.
"""
