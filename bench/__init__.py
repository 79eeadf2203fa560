"""`make bench`: todopy's performance figures, each against a ceiling measured in the same run.

`python -m bench.run` starts its own PostgreSQL, the real `todopy serve` and two
bare gevent servers (the ceilings), drives them with load generators in separate
processes on 127.0.0.1 (wrk, and `bench.streamclient`), and writes a table, a JSON
file and a plot to bench/results/.
"""
