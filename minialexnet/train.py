"""``python -m minialexnet.train``: train AlexNet (the training issue builds this).

The layer library (minialexnet.functional, minialexnet.layers) is in place;
the models, the optimizer, the data pipeline and this command come next.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print(
        "minialexnet.train: not available yet -- the layer library is ready "
        "(python -m minialexnet.bench layers, make test); the model, data and training "
        "loop are the next milestone."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
