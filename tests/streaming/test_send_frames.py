"""streaming/serve.py's FramesProtocol: the ``opitios.websocket.send_frames`` extension sends each text of one
ASGI event as its own frame (the one-object-per-frame protocol's wire is unchanged; a real client parses them,
any payload length), and is offered in the scope."""
from __future__ import annotations

import asyncio

import uvicorn
from websockets.asyncio.client import connect

from streaming.serve import SEND_FRAMES, FramesProtocol, listening_socket
from tests.streaming.wsclient import run


async def app(scope, receive, send) -> None:
    if scope["type"] != "websocket":
        return
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    offered = SEND_FRAMES in scope.get("extensions", {})
    await send({"type": "websocket.send", "text": f"offered={offered}"})
    await send({"type": "websocket.send", "texts": ['{"n":1}', '{"n":2}', '{"n":3}', "é" * 100, "x" * 70_000]})
    await send({"type": "websocket.send", "text": "after"})
    await receive()  # the client's close


def test_each_text_is_its_own_frame():
    async def main() -> list:
        sock = listening_socket("127.0.0.1", 0)
        port = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, ws=FramesProtocol, lifespan="off", log_config=None,
                                               ws_per_message_deflate=False))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            while not server.started:
                await asyncio.sleep(0.01)
            async with connect(f"ws://127.0.0.1:{port}/") as ws:
                return [await ws.recv() for _ in range(7)]
        finally:
            server.should_exit = True
            await task

    # the last two: a 16-bit and a 64-bit length in the frame's header
    assert run(main(), timeout=30) == ["offered=True", '{"n":1}', '{"n":2}', '{"n":3}', "é" * 100, "x" * 70_000, "after"]
