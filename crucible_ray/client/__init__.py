"""The Python client of the crucible-ray HTTP API.

    from crucible_ray import Client

    with Client() as client:  # CRUCIBLE_URL and CRUCIBLE_TOKEN from the environment
        result = client.evaluate("print(6 * 7)")
        for result in client.evaluate_many(items, concurrency=32):
            ...

``AsyncClient`` has the same methods as coroutines. Errors come from ``crucible_ray.errors``.
"""

from crucible_ray.client.aio import AsyncClient
from crucible_ray.client.config import ClientConfig
from crucible_ray.client.retry import Retrier
from crucible_ray.client.sync import Client

__all__ = ["AsyncClient", "Client", "ClientConfig", "Retrier"]
