"""`python -m cspark_async`: the `cspark-async` command (needs the `cli` extra)."""

from .cli import main

__all__ = ["main"]

if __name__ == "__main__":
    main()
