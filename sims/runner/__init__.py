"""The runner behind ``run_all.py``: cells from the declared experiments, parallel and
resumable execution, and the rows of ``results/results.csv``."""
