"""Run reports for CI: SLO thresholds, the JSON summary, JUnit XML, capacity reports.

Nothing here imports Locust (which monkey-patches with gevent on import): the CLI
process builds these reports from the numbers the Locust child writes out.
"""
