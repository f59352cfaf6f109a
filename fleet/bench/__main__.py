"""``python -m fleet.bench`` is ``fleet bench``."""

from fleet.bench.benchmark import main

main()
