"""Fixture for tests/test_code_scripts.py: functions to make infilling tasks from."""
import functools


def add(a, b):
    """Add two numbers."""
    total = a + b
    return total


def no_body_but_docstring():
    """Nothing else here: no task."""


@functools.lru_cache(maxsize=None)
def fib(n):
    # a comment-only line is never masked
    if n < 2:
        return n

    text = """not
code"""
    return fib(n - 1) + fib(n - 2)


class Box:
    def __init__(self, items):
        self.items = list(items)
        self.count = len(self.items)

    def largest(self):
        def key(x):
            return abs(x)
        best = max(self.items, key=key)
        return best


def one_liner(x): return x + 1  # body on the signature's line: no task
