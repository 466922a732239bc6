"""Small helpers the stages use; editing one re-runs exactly the stages reaching it."""


def normalise_name(name: str) -> str:
    """Trim and title-case a name."""
    return name.strip().title()


def mean(values: list[float]) -> float:
    """Arithmetic mean (0 for no values)."""
    return sum(values) / len(values) if values else 0.0


def bucket(score: float, buckets: int) -> int:
    """Which of ``buckets`` equal slices of [0, 1] holds ``score``."""
    return min(int(score * buckets), buckets - 1)
