"""The embedded broker (kombu's filesystem transport): a message is seen whole or not at all.

kombu's own ``_put`` created the message file before writing it; a worker listing the folder in that
window took the empty file, died on JSONDecodeError and the message was lost (CI, 2026-11-21).
"""
import multiprocessing
import os
from queue import Empty

from kombu import Connection
from kombu.transport import filesystem

from opitios import filesystem_transport
from opitios.filesystem_transport import Transport


def _channel(folder):
    options = {"data_folder_in": str(folder), "data_folder_out": str(folder)}
    return Connection(transport=Transport, transport_options=options).default_channel


def test_no_message_file_is_visible_before_its_content_is_written(tmp_path, monkeypatch):
    seen_while_writing = []
    real_dumps = filesystem_transport.dumps

    def dumps_and_look(payload):
        seen_while_writing.extend(n for n in os.listdir(tmp_path) if n.endswith(".msg"))
        return real_dumps(payload)

    # kombu's own _put serialises through its module's name: patched too, so a return to it fails here.
    monkeypatch.setattr(filesystem_transport, "dumps", dumps_and_look)
    monkeypatch.setattr(filesystem, "dumps", dumps_and_look)
    channel = _channel(tmp_path)
    channel._put("celery", {"n": 1})

    assert seen_while_writing == []
    assert [n.endswith(".celery.msg") for n in os.listdir(tmp_path)] == [True]
    assert channel._get("celery") == {"n": 1}


def _write(folder, count):
    channel = _channel(folder)
    for n in range(count):
        channel._put("celery", {"n": n})


def test_a_reader_racing_a_writer_in_another_process_gets_every_message(tmp_path):
    count = 2000
    writer = multiprocessing.get_context("spawn").Process(target=_write, args=(tmp_path, count))
    writer.start()
    reader = _channel(tmp_path)
    got, errors = [], []
    while True:
        try:
            got.append(reader._get("celery")["n"])
        except Empty:
            if not writer.is_alive() and not any(n.endswith(".msg") for n in os.listdir(tmp_path)):
                break
        except Exception as exc:  # noqa: BLE001 -- the failure under test is any error from a read
            errors.append(repr(exc))
    writer.join()

    assert errors == [] and writer.exitcode == 0
    assert sorted(got) == list(range(count))
