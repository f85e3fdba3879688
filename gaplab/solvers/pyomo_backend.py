"""placeholder"""


def register() -> None:
    pass
