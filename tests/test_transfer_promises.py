"""Import/export promises as a user sees them: the lines written, the rows stored,
the errors named. Written to kill the mutants of memory/transfer*.py that the
other tests let live (bench/mutation.py)."""
