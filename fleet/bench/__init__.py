"""Benchmarks and the soak: they measure the product, they are not the product.

Nothing in ``fleet`` imports this package but the CLI's ``fleet bench`` and
``fleet soak``. Each part runs in its own process, so its numbers are its own:

``benchmark``       ``fleet bench`` (``python -m fleet.bench``): the orchestration, the
                    engine runs and the results table
``sink``            the sink CSMS: a bare ``asyncio.Protocol`` with canned answers
``baseline``        the same workloads the usual way (one ``ocpp`` ChargePoint per station)
``hub``             the gevent-hub check: a real Locust master and worker in a boot storm
``hub_locustfile``  that check's locustfile: the fleet's user plus probes
``soak``            ``fleet soak``: a fleet for a long time, watched for leaks
"""
