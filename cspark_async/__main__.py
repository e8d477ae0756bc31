"""`python -m cspark_async`: the `cspark-async` command (needs the `cli` extra)."""

from .cli import main

main()
