"""opencomposer, the user's side: the API client (`opencomposer.client`), the `opencomposer`
command (`opencomposer.cli`), and the local stack that runs the whole pipeline on one machine
(`opencomposer.local`)."""

from opencomposer.client import ApiError, Client

__all__ = ["ApiError", "Client"]
__version__ = "0.1.0"
