"""OpenAI-compatible CSA proxy: assess -> solve -> steer -> generate -> (refine) -> answer.

    from pearlpoint.serve import load_config, Proxy, ServerThread
    with ServerThread(Proxy(load_config("serve.yaml"))) as srv:
        print(srv.base_url)     # point any OpenAI client here
"""

from pearlpoint.serve.auth import generate_key, hash_key, verify_key
from pearlpoint.serve.config import ServeConfig, load_config

__all__ = ["Proxy", "ServeConfig", "ServerThread", "generate_key", "hash_key", "load_config", "verify_key"]


def __getattr__(name: str):  # keep fastapi/uvicorn out of `import pearlpoint.serve`
    if name == "Proxy":
        from pearlpoint.serve.app import Proxy

        return Proxy
    if name == "ServerThread":
        from pearlpoint.serve.server import ServerThread

        return ServerThread
    raise AttributeError(name)
