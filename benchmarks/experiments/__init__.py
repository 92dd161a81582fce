"""One-off experiments behind figures quoted in the docs, docstrings and README (settings that were tried
and compared, not the course's models). Each module's docstring gives its command and what it measured
on the 2-core CPU, one core per run (``OMP_NUM_THREADS=1``) unless it says otherwise."""
